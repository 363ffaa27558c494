"""A local stand-in for Alibaba Cloud SMS (dysmsapi 2017-05-25): SendSms and QuerySendDetails over HTTP.

It speaks the RPC API the way the official SDK calls it: parameters in the query string, the action and
version in `x-acs-action`/`x-acs-version`, and the V3 signature (`Authorization: ACS3-HMAC-SHA256 ...`),
which it verifies with the access key secret. The older V2 signature (`Signature`, `SignatureMethod=HMAC-SHA1`
in the parameters, `Action`/`Version` as parameters) is verified too.

Answers: `{"Code": "OK", "BizId": ..., "RequestId": ...}`, or a scripted error code with the HTTP status the
real service uses (business `isv.*` codes come with 200; gateway codes such as `Throttling.User` or
`SignatureDoesNotMatch` with 4xx), or a sleep past the client's timeout (with or without accepting the
message first, to play "the provider got it but the answer was lost").
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from base64 import b64encode
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
# code → (HTTP status, message), as the real service answers them
ERRORS: dict[str, tuple[int, str]] = {
    "isv.BUSINESS_LIMIT_CONTROL": (200, "触发号码天级流控Permits:10"),
    "isv.DAY_LIMIT_CONTROL": (200, "触发日发送限额"),
    "isv.MOBILE_NUMBER_ILLEGAL": (200, "非法手机号"),
    "isv.SMS_TEMPLATE_ILLEGAL": (200, "该账号下找不到对应模板"),
    "isv.SMS_SIGNATURE_ILLEGAL": (200, "该账号下找不到对应签名"),
    "isv.TEMPLATE_MISSING_PARAMETERS": (200, "模板变量中存在未赋值变量"),
    "isv.AMOUNT_NOT_ENOUGH": (200, "账户余额不足"),
    "isv.INVALID_JSON_PARAM": (200, "JSON参数不合法，只接受字符串值"),
    "isp.SYSTEM_ERROR": (200, "系统异常"),
    "Throttling.User": (400, "Request was denied due to user flow control."),
    "MissingParameter": (400, "The input parameter is missing."),
    "SignatureDoesNotMatch": (400, "Specified signature is not matched with our calculation."),
    "SignatureNonceUsed": (400, "Specified signature nonce was used already."),
    "InvalidAccessKeyId.NotFound": (404, "Specified access key is not found."),
    "InvalidTimeStamp.Expired": (400, "Specified time stamp or date value is expired."),
    "ServiceUnavailable": (503, "The request has failed due to a temporary failure of the server."),
}
PHONE = re.compile(r"^1\d{10}$")


@dataclass
class Sleep:
    """Answer only after `seconds`; with `accept`, record the message as sent first (the answer is lost)."""

    seconds: float
    accept: bool = False


@dataclass
class Accepted:
    """A message the stand-in accepted for delivery."""

    biz_id: str
    phone: str
    sign_name: str
    template_code: str
    template_param: dict[str, Any]
    out_id: str
    at: datetime


@dataclass
class StandIn:
    """The provider's state and behaviour knobs, shared with the request handler threads."""

    access_key_id: str
    access_key_secret: str
    sign_name: str
    templates: dict[str, tuple[str, ...]]
    script: deque[str | Sleep] = field(default_factory=deque)
    query_script: deque[str | Sleep] = field(default_factory=deque)
    accepted: list[Accepted] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    # -- control -----------------------------------------------------------------------------------
    def start(self) -> StandIn:
        """Serve on 127.0.0.1 on a free port in a background thread."""
        standin = self

        class Handler(_Handler):
            state = standin

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="sms-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def then(self, *steps: str | Sleep) -> None:
        """Script the answers to the next SendSms calls ("OK", an error code, or a Sleep); then "OK" again."""
        with self.lock:
            self.script.extend(steps)

    def send_calls(self) -> list[dict[str, str]]:
        return [r for r in self.requests if r.get("Action") == "SendSms"]

    def query_calls(self) -> list[dict[str, str]]:
        return [r for r in self.requests if r.get("Action") == "QuerySendDetails"]

    # -- the API -------------------------------------------------------------------------------------
    def send_sms(self, params: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return self._error("MissingParameter", f"{name} is mandatory for this action.")
        with self.lock:
            step = self.script.popleft() if self.script else "OK"
        delay = 0.0
        if isinstance(step, Sleep):
            delay, step = step.seconds, ("OK" if step.accept else "")
            if not step:
                return 200, self._error("isp.SYSTEM_ERROR")[1], delay  # the answer nobody waits for
        if step != "OK":
            return (*self._error(step), delay)
        if params["SignName"] != self.sign_name:
            return (*self._error("isv.SMS_SIGNATURE_ILLEGAL"), delay)
        variables = self.templates.get(params["TemplateCode"])
        if variables is None:
            return (*self._error("isv.SMS_TEMPLATE_ILLEGAL"), delay)
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return (*self._error("isv.INVALID_JSON_PARAM"), delay)
        if not isinstance(values, dict) or any(not isinstance(values.get(v), str) for v in variables):
            return (*self._error("isv.TEMPLATE_MISSING_PARAMETERS"), delay)
        if not PHONE.match(params["PhoneNumbers"]):
            return (*self._error("isv.MOBILE_NUMBER_ILLEGAL"), delay)
        biz_id = f"{int(time.time() * 1000)}^{uuid.uuid4().int % 10**10}"
        with self.lock:
            self.accepted.append(Accepted(biz_id, params["PhoneNumbers"], params["SignName"], params["TemplateCode"],
                                          values, params.get("OutId", ""), datetime.now(UTC)))
        return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": _request_id()}, delay

    def query_send_details(self, params: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            if not params.get(name):
                return (*self._error("MissingParameter", f"{name} is mandatory for this action."), 0.0)
        with self.lock:
            step = self.query_script.popleft() if self.query_script else "OK"
        if isinstance(step, Sleep):
            return (*self._error("isp.SYSTEM_ERROR"), step.seconds)
        if step != "OK":
            return (*self._error(step), 0.0)
        with self.lock:
            rows = [a for a in self.accepted if a.phone == params["PhoneNumber"]
                    and a.at.astimezone(BEIJING).strftime("%Y%m%d") == params["SendDate"]
                    and (not params.get("BizId") or a.biz_id == params["BizId"])]
        size, page = int(params["PageSize"]), int(params["CurrentPage"])
        shown = rows[(page - 1) * size:page * size]
        dtos = [{"PhoneNum": a.phone, "SendStatus": 3, "ErrCode": "DELIVERED", "TemplateCode": a.template_code,
                 "Content": "", "SendDate": a.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                 "ReceiveDate": a.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"), "OutId": a.out_id}
                for a in shown]
        return 200, {"Code": "OK", "Message": "OK", "RequestId": _request_id(), "TotalCount": len(rows),
                     "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos}}, 0.0

    def _error(self, code: str, message: str = "") -> tuple[int, dict[str, Any]]:
        status, text = ERRORS.get(code, (400, code))
        with self.lock:
            self.rejected.append(code)
        return status, {"Code": code, "Message": message or text, "RequestId": _request_id(),
                        "Recommend": "https://api.aliyun.com/troubleshoot"}

    # -- signatures ----------------------------------------------------------------------------------
    def verify(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> str | None:
        """Return an error code if the request is not signed with our access key, else None."""
        auth = headers.get("authorization", "")
        params = dict(parse_qsl(query, keep_blank_values=True))
        if auth.startswith("ACS3-HMAC-SHA256 "):
            return self._verify_v3(method, path, query, headers, body, auth)
        if "Signature" in params:
            return self._verify_v2(method, params, body)
        return "MissingParameter"

    def _fresh(self, nonce: str, stamp: str) -> str | None:
        try:
            at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return "InvalidTimeStamp.Expired"
        if abs((datetime.now(UTC) - at).total_seconds()) > 900:
            return "InvalidTimeStamp.Expired"
        with self.lock:
            if not nonce or nonce in self.nonces:
                return "SignatureNonceUsed"
            self.nonces.add(nonce)
        return None

    def _verify_v3(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes,
                   auth: str) -> str | None:
        fields = dict(part.split("=", 1) for part in auth.split(" ", 1)[1].split(","))
        if fields.get("Credential") != self.access_key_id:
            return "InvalidAccessKeyId.NotFound"
        payload_hash = hashlib.sha256(body).hexdigest()
        if headers.get("x-acs-content-sha256") != payload_hash:
            return "SignatureDoesNotMatch"
        signed = fields.get("SignedHeaders", "").split(";")
        if not {"host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce"} <= set(signed):
            return "SignatureDoesNotMatch"
        pairs = sorted(parse_qsl(query, keep_blank_values=True))
        canonical_query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in pairs)
        canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
        canonical = f"{method}\n{path or '/'}\n{canonical_query}\n{canonical_headers}\n{';'.join(signed)}\n{payload_hash}"
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(self.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields.get("Signature", "")):
            return "SignatureDoesNotMatch"
        return self._fresh(headers.get("x-acs-signature-nonce", ""), headers.get("x-acs-date", ""))

    def _verify_v2(self, method: str, params: dict[str, str], body: bytes) -> str | None:
        params = {**params, **dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))}
        if params.get("AccessKeyId") != self.access_key_id:
            return "InvalidAccessKeyId.NotFound"
        if params.get("SignatureMethod") != "HMAC-SHA1":
            return "SignatureDoesNotMatch"
        signature = params.pop("Signature")

        def enc(text: str) -> str:
            return quote(text, safe="~")

        canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
        to_sign = f"{method}&{enc('/')}&{enc(canonical)}"
        digest = hmac.new((self.access_key_secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(b64encode(digest).decode(), signature):
            return "SignatureDoesNotMatch"
        return self._fresh(params.get("SignatureNonce", ""), params.get("Timestamp", ""))


class _Handler(BaseHTTPRequestHandler):
    state: StandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if body and "x-www-form-urlencoded" in headers.get("content-type", ""):
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        action = headers.get("x-acs-action") or params.get("Action", "")
        version = headers.get("x-acs-version") or params.get("Version", "")
        with self.state.lock:
            self.state.requests.append({**params, "Action": action, "Version": version, "_at": f"{time.time():.3f}"})
        problem = self.state.verify(self.command, url.path, url.query, headers, body)
        delay = 0.0
        if problem is not None:
            status, answer = self.state._error(problem)
        elif version != "2017-05-25":
            status, answer = self.state._error("MissingParameter", "Version is invalid")
        elif action == "SendSms":
            status, answer, delay = self.state.send_sms(params)
        elif action == "QuerySendDetails":
            status, answer, delay = self.state.query_send_details(params)
        else:
            status, answer = 404, {"Code": "InvalidAction.NotFound", "Message": "Specified api is not found"}
        if delay:
            time.sleep(delay)
        data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up waiting (a timeout test)


def _request_id() -> str:
    return str(uuid.uuid4()).upper()
