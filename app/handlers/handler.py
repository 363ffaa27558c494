"""What a service-task handler is: a function of the call and the parameters a diagram must pass."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.processes.models import ServiceCall

HANDLERS_KEY = "xpilot_handlers"  # app.extensions: the operations the app's diagrams may name


@dataclass(frozen=True)
class Handler:
    """A service operation: the function and the parameters a diagram must pass."""

    func: Callable[[Session, ServiceCall], dict[str, Any]]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    description: str = ""
