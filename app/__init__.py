"""X-Pilot: the 1+X certificate pilot declaration system."""
from __future__ import annotations

import gc
from typing import Any

from flask import Flask

from app import clock
from app.config import load_settings
from app.extensions import csrf, db, login_manager
from app.queue import embedded_redis_url, jobs
from app.web import security_headers


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask application."""
    settings = load_settings(test_config)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        XPILOT=settings,
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https_only,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.https_only,
        MAX_CONTENT_LENGTH=60 * 1024 * 1024,
        JSON_AS_ASCII=False,
    )
    clock.set_zone(settings.timezone)
    if settings.proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxies, x_proto=settings.proxies)  # type: ignore[method-assign]
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    db.init_app(app, settings.database_url)
    jobs.init_app(settings.redis_url or embedded_redis_url(settings.instance_path),
                  connect_timeout=settings.redis_connect_timeout, timeout=settings.redis_timeout,
                  retry_after=settings.redis_retry_after)
    csrf.init_app(app)
    security_headers.init_app(app, hsts=settings.https_only)
    from app.web import static_assets
    static_assets.init_app(app)
    login_manager.init_app(app)

    # The app's modules import this package (app.clock, app.extensions ...): they are loaded when an app is built,
    # not when the package is imported.
    from app import refcache
    refcache.init_app(app)

    from app.processes.services import init_engine
    init_engine(app)

    from app.web.setup import register_blueprints
    register_blueprints(app)

    from app.cli import register_commands
    register_commands(app)
    if settings.env == "production":
        # What the app holds for its whole life (modules, parsed specs, the forms ...) is left out of the collector's
        # full passes, which otherwise stop a request for some 90 ms every few seconds under load.
        gc.freeze()
    return app
