"""Security headers on every response: what the browser may load and run, framing, referrers, HTTPS."""
from __future__ import annotations

from flask import Flask
from werkzeug.wrappers import Response

# Sent in every environment, so that development and the browser tests run under the policy production has.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",  # no inline script: page data reaches the static scripts through data- attributes or JSON
    # Inline styles stay allowed: the templates carry style attributes (every page would report violations
    # without this), and a style cannot run script, so the policy still stops injected script.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",  # bpmn-js's stylesheet draws a few icons as data: images
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


def init_app(app: Flask, *, hsts: bool) -> None:
    """Add the security headers to every response of the app; HSTS only when it is served over HTTPS only."""

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for browsers that predate it
        headers.setdefault("Referrer-Policy", "same-origin")
        if hsts:
            headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        return response
