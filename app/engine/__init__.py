"""The only package that imports SpiffWorkflow."""
from __future__ import annotations

from datetime import datetime, tzinfo

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer

from app import clock


class _ClockDatetime(datetime):
    """datetime whose now() reads the system clock, so timers follow a moved clock in tests and demos."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _ClockDatetime:  # type: ignore[override]
        current = clock.now()
        value = current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)
        return cls.fromisoformat(value.isoformat())


_timer.datetime = _ClockDatetime  # type: ignore[misc]
