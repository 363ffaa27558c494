"""URL converters: ids in paths stay within what the database's integer columns hold."""
from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

MAX_ROW_ID = 2**31 - 1  # PostgreSQL's integer; a larger number in a URL names no row


class RowIdConverter(IntegerConverter):
    """`<int:…>` that matches only ids a row can have, so a huge number is a 404, not a database error."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)
