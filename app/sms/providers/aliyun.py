"""Alibaba Cloud SMS (dysmsapi 2017-05-25) through the official SDK: SendSms, and QuerySendDetails to reconcile.

Settings (environment variables, read in app/config.py), selected by SMS_BACKEND=aliyun:

    ALIYUN_SMS_ACCESS_KEY_ID, ALIYUN_SMS_ACCESS_KEY_SECRET   a RAM user's key allowed to use dysmsapi
    ALIYUN_SMS_SIGN_NAME      the approved signature (签名)
    ALIYUN_SMS_ENDPOINT       dysmsapi.aliyuncs.com (https); "http://host:port" for a local stand-in
    ALIYUN_SMS_TIMEOUT        seconds for connecting and for reading the answer (default 10)
    ALIYUN_SMS_TEMPLATE_ACCOUNT_ISSUED, _ACCOUNT_RESET, _REVIEW_APPROVED, _REVIEW_REJECTED, _DRAFTS_EXPIRED
                              a fallback only: the TemplateCode of a national template whose registry entry has none

The approved TemplateCode of each template is kept in the template registry (短信模板, "服务商模板编号"), and a
message carries the code of the template as it was when the message was queued. Register each Aliyun template
with the placeholders of our template (${school}, ${username}, ${password}, ...): TemplateParam carries exactly
those variables (the message's params), as strings. Each send carries OutId "xpilot-<message id>"
(plus "-r<n>" after the n-th resend by hand), which QuerySendDetails reports back: that is how an attempt
with an unknown outcome is reconciled. The SDK's own retries stay off; whether to send again is decided
in app.sms.services.

The password never reaches a log: TemplateParam travels in the signed form body, not in the URL (HTTP
libraries log URLs at DEBUG and repeat them in error texts), and transport errors are reduced to our own
codes. Do not run workers with DEBUG=sdk, which makes the SDK print whole requests.
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import utils_models as openapi_models
from darabonba.exceptions import ResponseException
from darabonba.runtime import RuntimeOptions

from app import clock
from app.sms.models import SmsMessage
from app.sms.services import DeliveryResult, delivery_ref

log = logging.getLogger(__name__)
BEIJING = ZoneInfo("Asia/Shanghai")  # the provider's calendar for SendDate
# Codes worth another attempt later (flow control, throttling, the provider's own faults).
RETRYABLE_CODES = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "ServiceUnavailable", "InternalError"})
RETRYABLE_PREFIXES = ("Throttling", "isp.")
SEND_SMS = openapi_models.Params(action="SendSms", version="2017-05-25", protocol="HTTPS", pathname="/", method="POST",
                                 auth_type="AK", style="RPC", req_body_type="formData", body_type="json")
LOOKUP_DAYS = 7  # a round of attempts spans minutes; a week covers a worker that was down for days
LOOKUP_PAGES = 10
PAGE_SIZE = 50


class AliyunBackend:
    """Send through Alibaba Cloud SMS; ask it about earlier sends by OutId."""

    name = "aliyun"
    two_phase = True
    can_lookup = True

    def __init__(self, client: Client, sign_name: str, template_codes: dict[str, str]) -> None:
        self.client = client
        self.sign_name = sign_name
        self.template_codes = template_codes

    @classmethod
    def from_settings(cls, settings: Any) -> AliyunBackend:
        """Build the backend from settings.aliyun_sms; refuse a configuration that cannot send anything."""
        conf: dict[str, str] = settings.aliyun_sms
        missing = [name for name in ("access_key_id", "access_key_secret", "sign_name") if not conf.get(name)]
        if missing:
            raise ValueError("阿里云短信未配置：" + "、".join(f"ALIYUN_SMS_{m.upper()}" for m in missing))
        endpoint = conf.get("endpoint") or "dysmsapi.aliyuncs.com"
        protocol, _, host = endpoint.rpartition("://")
        timeout_ms = int(float(conf.get("timeout") or 10) * 1000)
        client = _client(conf["access_key_id"], conf["access_key_secret"], host, protocol or "https", timeout_ms)
        codes = {key.removeprefix("template_"): code for key, code in conf.items() if key.startswith("template_")}
        return cls(client, conf["sign_name"], codes)

    def send(self, message: SmsMessage) -> DeliveryResult:
        """Call SendSms once."""
        code = message.provider_template or self.template_codes.get(message.template)
        if not code:
            return DeliveryResult(ok=False, retryable=False, code="TEMPLATE_NOT_CONFIGURED",
                                  error=f"短信模板 {message.template} 未填写服务商模板编号（在“短信模板”页面填写）")
        # The official SendSms call, made through the SDK's generic call_api so that TemplateParam (which can
        # hold a password) travels in the signed form body rather than in the URL that HTTP libraries log.
        query = {"PhoneNumbers": message.phone, "SignName": self.sign_name, "TemplateCode": code,
                 "OutId": out_id(message)}
        form = {"TemplateParam": json.dumps(template_params(message), ensure_ascii=False)}
        try:
            answer = self.client.call_api(SEND_SMS, openapi_models.OpenApiRequest(query=query, body=form),
                                          RuntimeOptions())
            body = sms_models.SendSmsResponse().from_map(answer).body
        except ResponseException as exc:
            return _refused(message, _code(exc), _message(exc), int(getattr(exc, "status_code", 0) or 0))
        except Exception as exc:  # transport: timeouts, refused connections (str(exc) repeats the URL: not logged)
            return _transport(message, exc)
        if body.code == "OK":
            log.info("sms %s: accepted by Aliyun (BizId %s)", message.id, body.biz_id)
            return DeliveryResult(ok=True, provider_message_id=body.biz_id or "")
        return _refused(message, body.code or "", body.message or "", 200)

    def lookup(self, message: SmsMessage) -> DeliveryResult | None:
        """Find our OutId among the provider's records for the phone since the message was created."""
        wanted = out_id(message)
        today = clock.now().astimezone(BEIJING).date()
        first = max(message.created_at.astimezone(BEIJING).date(), today - timedelta(days=LOOKUP_DAYS - 1))
        day = today
        while day >= first:
            for page in range(1, LOOKUP_PAGES + 1):
                request = sms_models.QuerySendDetailsRequest(
                    phone_number=message.phone, send_date=day.strftime("%Y%m%d"), page_size=PAGE_SIZE,
                    current_page=page)
                try:
                    body = self.client.query_send_details_with_options(request, RuntimeOptions()).body
                except ResponseException as exc:
                    return _lookup_failed(message, _code(exc))
                except Exception as exc:
                    return _lookup_failed(message, type(exc).__name__)
                if body.code != "OK":
                    return _lookup_failed(message, body.code or "")
                rows = body.sms_send_detail_dtos.sms_send_detail_dto if body.sms_send_detail_dtos else []
                for row in rows or []:
                    if row.out_id == wanted:
                        return _known(message, row)
                if page * PAGE_SIZE >= int(body.total_count or 0):
                    break
            day -= timedelta(days=1)
        log.info("sms %s: Aliyun has no record of OutId %s", message.id, wanted)
        return None


def out_id(message: SmsMessage) -> str:
    """The OutId that ties the provider's records to our message (and to this resend of it)."""
    return delivery_ref(message)


def template_params(message: SmsMessage) -> dict[str, str]:
    """The variables our template used when the message was queued (its params), as the strings TemplateParam wants."""
    return {name: "" if value is None else str(value) for name, value in message.params.items()
            if not name.startswith("_")}


def is_retryable(code: str, http_status: int = 200) -> bool:
    """Whether an error code is worth another attempt later."""
    return code in RETRYABLE_CODES or code.startswith(RETRYABLE_PREFIXES) or http_status >= 500


@lru_cache(maxsize=8)
def _client(access_key_id: str, access_key_secret: str, host: str, protocol: str, timeout_ms: int) -> Client:
    config = openapi_models.Config(access_key_id=access_key_id, access_key_secret=access_key_secret, endpoint=host,
                                   protocol=protocol, connect_timeout=timeout_ms, read_timeout=timeout_ms)
    return Client(config)


def _code(exc: Exception) -> str:
    return str(getattr(exc, "code", "") or type(exc).__name__)


def _message(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    return str(data.get("Message") or "") if isinstance(data, dict) else ""


def _refused(message: SmsMessage, code: str, text: str, http_status: int) -> DeliveryResult:
    retryable = is_retryable(code, http_status)
    log.warning("sms %s: Aliyun refused the message: %s (%s)", message.id, code,
                "will retry" if retryable else "permanent")
    return DeliveryResult(ok=False, retryable=retryable, code=code, error=text or "短信服务拒绝发送")


def _transport(message: SmsMessage, exc: Exception) -> DeliveryResult:
    inner = getattr(exc, "inner_exception", None)
    text = str(getattr(inner, "message", "") or "")
    if "Read timed out" in text:
        code, error, uncertain = "TIMEOUT", "等待短信服务应答超时，短信可能已被接收", True
    elif any(s in text for s in ("Failed to establish a new connection", "ConnectTimeout", "connect timeout",
                                 "NameResolutionError")):
        code, error, uncertain = "CONNECTION_FAILED", "无法连接短信服务，短信未发出", False
    else:
        code, error, uncertain = "CONNECTION_LOST", "与短信服务的连接中断，短信可能已被接收", True
    log.warning("sms %s: %s talking to Aliyun (%s)", message.id, code, type(inner or exc).__name__)
    return DeliveryResult(ok=False, retryable=True, code=code, error=error, uncertain=uncertain)


def _lookup_failed(message: SmsMessage, code: str) -> DeliveryResult:
    log.warning("sms %s: could not ask Aliyun about OutId %s (%s)", message.id, out_id(message), code)
    return DeliveryResult(ok=False, retryable=True, uncertain=True, code="LOOKUP_FAILED",
                          error=f"查询短信发送记录失败（{code}），暂不重发")


def _known(message: SmsMessage, row: Any) -> DeliveryResult:
    status = int(row.send_status or 0)
    log.info("sms %s: Aliyun has OutId %s with SendStatus %s", message.id, out_id(message), status)
    if status == 2:  # the carrier reported failure
        return DeliveryResult(ok=False, retryable=False, code=str(row.err_code or "DELIVERY_FAILED"),
                              error="短信服务记录显示发送失败")
    return DeliveryResult(ok=True)  # 1 waiting for the receipt, 3 delivered: either way the provider has it
