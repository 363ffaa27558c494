"""Settings: the only module that reads environment variables."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Settings:
    """Runtime settings of one application instance."""

    env: str = "dev"
    database_url: str = ""
    redis_url: str = ""
    # Every Redis client: seconds to connect and to wait for an answer; after a timeout or refusal the web
    # process does not ask Redis again for redis_retry_after seconds (what needs Redis falls back meanwhile).
    redis_connect_timeout: float = 1.0
    redis_timeout: float = 2.0
    redis_retry_after: float = 5.0
    secret_key: str = "dev-only-secret"
    sms_backend: str = "outbox"
    timezone: str = "Asia/Shanghai"
    port: int = 5000
    proxies: int = 0
    instance_path: Path = PROJECT_ROOT / "instance"
    bpmn_path: Path = PROJECT_ROOT / "bpmn"
    testing: bool = False
    # Rate limits: (count, seconds)
    # Logins: (failed passwords before waits start, seconds the failures are remembered) of one account from one
    # address, and of one address over all accounts; then (first wait, longest wait) in seconds (doubling).
    login_limit: tuple[int, int] = (5, 900)
    login_limit_per_ip: tuple[int, int] = (50, 900)
    login_wait: tuple[int, int] = (30, 900)
    register_limit_per_ip: tuple[int, int] = (20, 3600)
    # Texts to one phone: self-service (registration) and staff actions (officer's issue or reset) count apart,
    # so that anyone's attempts cannot use up what the province needs to reach a school.
    sms_limit_per_phone: tuple[int, int] = (5, 3600)
    sms_staff_limit_per_phone: tuple[int, int] = (5, 3600)
    sms_limit_per_ip: tuple[int, int] = (30, 3600)
    # Registration codes (获取验证码): seconds a code is valid, wrong tries before it is void, and seconds before the
    # same phone may ask for another (each code sent also counts against the phone's and the address's texts above).
    registration_code_ttl: int = 300
    registration_code_attempts: int = 5
    registration_code_gap: int = 60
    # Run service-task jobs synchronously in-process (tests without a worker)
    sync_jobs: bool = False
    # Seconds a drain job of service calls waits for more calls before it ends (0: end at once)
    service_drain_linger: float = 0.25
    aliyun_sms: dict[str, str] = field(default_factory=dict)
    # Text message delivery: attempts per message, the waits between them (seconds; the last one repeats),
    # and how long a claimed ('sending') message may go unanswered before it counts as 状态未知.
    sms_max_attempts: int = 3
    sms_retry_backoff: tuple[int, ...] = (30, 120, 600)
    sms_sending_timeout: int = 300
    sms_bulk_per_minute: int = 300
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def https_only(self) -> bool:
        """Whether the app is served over HTTPS only (production): Secure cookies and HSTS."""
        return self.env == "production"


def load_settings(overrides: dict[str, object] | None = None) -> Settings:
    """Build settings from the environment, then apply explicit overrides."""
    env = os.environ.get("XPILOT_ENV", "dev")
    settings = Settings(env=env)
    instance = Path(os.environ.get("XPILOT_INSTANCE", str(PROJECT_ROOT / "instance")))
    settings.instance_path = instance
    settings.database_url = os.environ.get("DATABASE_URL", "") or f"sqlite:///{instance / 'xpilot.sqlite3'}"
    settings.redis_url = os.environ.get("REDIS_URL", "")
    settings.redis_connect_timeout = float(os.environ.get("REDIS_CONNECT_TIMEOUT", "1") or 1)
    settings.redis_timeout = float(os.environ.get("REDIS_TIMEOUT", "2") or 2)
    settings.redis_retry_after = float(os.environ.get("REDIS_RETRY_AFTER", "5") or 5)
    settings.sms_backend = os.environ.get("SMS_BACKEND", "outbox")
    settings.timezone = os.environ.get("XPILOT_TIMEZONE", "Asia/Shanghai")
    settings.port = int(os.environ.get("PORT", "5000"))
    # How many reverse proxies in front of the app may set X-Forwarded-For (0: trust none).
    settings.proxies = int(os.environ.get("XPILOT_PROXIES", "0") or 0)
    secret = os.environ.get("SECRET_KEY", "")
    if secret:
        settings.secret_key = secret
    elif env not in ("dev", "test"):
        raise RuntimeError("SECRET_KEY must be set outside dev/test (XPILOT_ENV=%s)" % env)
    settings.aliyun_sms = {
        "access_key_id": os.environ.get("ALIYUN_SMS_ACCESS_KEY_ID", ""),
        "access_key_secret": os.environ.get("ALIYUN_SMS_ACCESS_KEY_SECRET", ""),
        "sign_name": os.environ.get("ALIYUN_SMS_SIGN_NAME", ""),
        "endpoint": os.environ.get("ALIYUN_SMS_ENDPOINT", "dysmsapi.aliyuncs.com"),
        "timeout": os.environ.get("ALIYUN_SMS_TIMEOUT", "10"),  # seconds, connect and read each
    }
    for template in ("account_issued", "account_reset", "review_approved", "review_rejected", "drafts_expired",
                     "registration_code", "account_refused"):
        # ALIYUN_SMS_TEMPLATE_ACCOUNT_ISSUED=SMS_123456789 ...: the approved TemplateCode of each message template
        settings.aliyun_sms[f"template_{template}"] = os.environ.get(f"ALIYUN_SMS_TEMPLATE_{template.upper()}", "")
    settings.sms_max_attempts = int(os.environ.get("SMS_MAX_ATTEMPTS", "3"))
    backoff = os.environ.get("SMS_RETRY_BACKOFF", "")
    if backoff:
        settings.sms_retry_backoff = tuple(int(part) for part in backoff.split(",") if part.strip())
    settings.sms_sending_timeout = int(os.environ.get("SMS_SENDING_TIMEOUT", "300"))
    # Messages to many (sms_many) are delivered at most this many a minute, within the provider's rate limit.
    settings.sms_bulk_per_minute = int(os.environ.get("SMS_BULK_PER_MINUTE", "300"))
    settings.service_drain_linger = float(os.environ.get("XPILOT_DRAIN_LINGER", "0.25"))
    outbox_delay = os.environ.get("XPILOT_OUTBOX_DELAY", "")
    if outbox_delay:
        settings.extra["outbox_delay"] = float(outbox_delay)  # a slow outbox, for crash tests and demos
    for key, value in (overrides or {}).items():
        setattr(settings, key, value)
    return settings
