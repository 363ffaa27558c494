"""Errors that services raise with a message for the user."""
from __future__ import annotations


class ServiceError(Exception):
    """A use case refused; the message is shown to the user as is."""

    def __init__(self, message: str, field_errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}


class NotFound(ServiceError):
    """The record does not exist or is outside the user's scope."""


class Forbidden(ServiceError):
    """The user may not do this."""
