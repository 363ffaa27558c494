"""The one clock of the system; tests and the demo may move it."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_offset = timedelta(0)
CHINA = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC) + _offset


def move(delta: timedelta) -> None:
    """Shift the clock (tests and demos only)."""
    global _offset
    _offset += delta


def reset() -> None:
    """Put the clock back to real time."""
    global _offset
    _offset = timedelta(0)


def set_zone(name: str) -> None:
    """Use another display time zone (XPILOT_TIMEZONE)."""
    global CHINA
    CHINA = ZoneInfo(name)


def local(value: datetime | None) -> datetime | None:
    """Convert to the display time zone."""
    return value.astimezone(CHINA) if value is not None else None


def format_local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Format a datetime in the display zone, or an empty string."""
    loc = local(value)
    return loc.strftime(fmt) if loc is not None else ""


def parse_local(text: str) -> datetime:
    """Parse 'YYYY-MM-DD HH:MM' or 'YYYY-MM-DDTHH:MM' entered in the display zone."""
    text = text.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=CHINA).astimezone(UTC)
        except ValueError:
            continue
    raise ValueError(text)
