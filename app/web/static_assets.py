"""Weight: static files under content-versioned URLs cached for a year, and gzip for text responses.

url_for('static', filename=...) gets ?v=<the first 12 hex digits of the file's SHA-256>: the URL changes whenever
the file does, so a response to a versioned URL is cached for a year as immutable. Text responses (pages, CSS,
scripts, JSON, SVG) of 1 KB or more are sent gzip-compressed to browsers that accept it; the compressed static
files are kept in memory by version, so each is compressed once.
"""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from flask import Flask, request
from werkzeug.wrappers import Response

YEAR = 365 * 24 * 3600
MIN_SIZE = 1024
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml", "application/xml")
_versions: dict[str, tuple[int, str]] = {}  # path -> (mtime_ns, version)
_compressed: dict[tuple[str, str], bytes] = {}  # (filename, version) -> gzip bytes


def version(app: Flask, filename: str) -> str | None:
    """The content version of a static file (None: no such file)."""
    if app.static_folder is None:
        return None
    path = Path(app.static_folder, filename)
    try:
        mtime = path.stat().st_mtime_ns
    except (OSError, ValueError):
        return None
    known = _versions.get(str(path))
    if known is None or known[0] != mtime:
        known = (mtime, hashlib.sha256(path.read_bytes()).hexdigest()[:12])
        _versions[str(path)] = known
    return known[1]


def init_app(app: Flask) -> None:
    """Version the static URLs, cache versioned static files for a year, compress text responses."""

    @app.url_defaults
    def _versioned(endpoint: str, values: dict[str, object]) -> None:
        if endpoint == "static" and isinstance(values.get("filename"), str) and "v" not in values:
            found = version(app, str(values["filename"]))
            if found:
                values["v"] = found

    @app.after_request
    def _cache_and_compress(response: Response) -> Response:
        filename = (request.view_args or {}).get("filename") if request.endpoint == "static" else None
        current = version(app, filename) if filename else None
        if current and request.args.get("v") == current and response.status_code in (200, 304):
            response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        _compress(response, filename, current)
        return response


def _compress(response: Response, filename: str | None, current: str | None) -> None:
    if (response.status_code != 200 or "Content-Encoding" in response.headers or "Range" in request.headers
            or "gzip" not in request.headers.get("Accept-Encoding", "")
            or not (response.mimetype or "").startswith(COMPRESSIBLE)):
        return
    if response.is_streamed and not (filename and response.direct_passthrough):
        return  # a generated stream stays a stream
    response.direct_passthrough = False
    key = (filename, current) if filename and current else None
    body = _compressed.get(key) if key else None
    if body is not None:
        response.close()  # the file it would have sent
    else:
        data = response.get_data()
        if len(data) < MIN_SIZE:
            return
        body = gzip.compress(data, compresslevel=6)
        if key:
            _compressed[key] = body
    response.set_data(body)
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    etag, weak = response.get_etag()
    if etag and not weak:
        response.set_etag(etag, weak=True)  # another representation of the same content
