"""The acting user and the client address of the request being served."""
from __future__ import annotations

from flask import request
from flask_login import current_user

from app.accounts.models import User


def acting_user() -> User:
    """Return the logged-in user as the acting user of a service call."""
    return current_user._get_current_object()  # type: ignore[no-any-return,attr-defined]


def client_ip() -> str:
    """Return the client address (behind a proxy, ProxyFix set remote_addr from X-Forwarded-For; see XPILOT_PROXIES)."""
    return request.remote_addr or "unknown"
