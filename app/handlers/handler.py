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
    # Run by the request that reaches it, before answering (the national registration activates the account at
    # once, so the registrant is signed in); elsewhere the worker runs it like any other call.
    inline: bool = False
    processes: tuple[str, ...] = ()  # the processes whose diagrams may use it (empty: every process)
