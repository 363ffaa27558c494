"""Errors that stop a whole import (as opposed to rejecting one row)."""
from __future__ import annotations


class ImportFileError(Exception):
    """The file cannot be read at all: missing, unreadable, wrong type or missing columns."""


class UnknownProvinceError(Exception):
    """The province asked for (--province) is not a province-level division."""
