"""The only package that imports SpiffWorkflow."""
from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from flask import current_app
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer

from app import clock

if TYPE_CHECKING:
    from app.engine.runtime import ProcessEngine

ENGINE_KEY = "xpilot_engine"  # app.extensions: the app's ProcessEngine, made when the app is created


def engine() -> ProcessEngine:
    """Return the process engine of the current app."""
    return current_app.extensions[ENGINE_KEY]  # type: ignore[no-any-return]


class _ClockDatetime(datetime):
    """datetime whose now() reads the system clock, so timers follow a moved clock in tests and demos."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _ClockDatetime:  # type: ignore[override]
        current = clock.now()
        value = current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)
        return cls.fromisoformat(value.isoformat())


_timer.datetime = _ClockDatetime  # type: ignore[misc]
