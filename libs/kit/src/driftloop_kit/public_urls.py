"""The base URL a client reached a service at, for the URLs the service hands it.

A service reached as ``http://registry:5001`` inside a compose network and as
``http://127.0.0.1:5001`` from the host must give each client URIs that work where
that client stands. So a URL handed out in an answer is built from the request: its
``Host`` and scheme, or, behind a reverse proxy, the ``X-Forwarded-Host``,
``X-Forwarded-Proto`` and ``X-Forwarded-Prefix`` headers the proxy sets. A
configured ``public_url`` (``DRIFTLOOP_<SERVICE>_PUBLIC_URL``) stays an explicit
override: when it is set, every client gets it.

A forwarded value that is not a host (``host`` or ``host:port``), a scheme other than
``http``/``https``, or a prefix that is not a plain path is refused (400): it would
otherwise be echoed into URIs the client then follows.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Request

from driftloop_kit.errors import InvalidInput

__all__ = ["PublicBaseUrlDep", "base_url_of", "request_base_url"]

#: ``host``, ``host:port`` or ``[v6]:port``: letters, digits, dots, dashes, colons.
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?$")
#: A path prefix: ``/`` then path segments of unreserved characters.
_PREFIX = re.compile(r"^(?:/[A-Za-z0-9._~-]+)*/?$")
#: Longest forwarded value accepted (a host name is at most 253 characters).
MAX_FORWARDED_LENGTH = 512


def _first(value: str | None) -> str:
    """The first of a comma-separated header value (the proxy nearest the client)."""
    if not value:
        return ""
    return value.split(",", 1)[0].strip()


def _checked(header: str, value: str, pattern: re.Pattern[str]) -> str:
    if len(value) > MAX_FORWARDED_LENGTH or not pattern.match(value):
        shown = value[:64] + ("..." if len(value) > 64 else "")
        raise InvalidInput(f"{header} {shown!r} is not valid")
    return value


def base_url_of(
    *,
    scheme: str,
    host: str,
    root_path: str = "",
    forwarded_proto: str | None = None,
    forwarded_host: str | None = None,
    forwarded_prefix: str | None = None,
) -> str:
    """The base URL a client called, from the request's parts and forwarded headers.

    Raises:
        InvalidInput: A forwarded header (or the Host) that is not what it names.
    """
    proto = _first(forwarded_proto).lower() or scheme
    if proto not in ("http", "https"):
        raise InvalidInput(f"X-Forwarded-Proto {proto[:16]!r} is not http or https")
    reached = _checked("X-Forwarded-Host", _first(forwarded_host), _HOST) if forwarded_host else ""
    if not reached:
        reached = _checked("Host", host, _HOST)
    prefix = _first(forwarded_prefix)
    if prefix:
        _checked("X-Forwarded-Prefix", prefix, _PREFIX)
        if any(part in (".", "..") for part in prefix.split("/")):
            raise InvalidInput(f"X-Forwarded-Prefix {prefix[:64]!r} is not valid")
    else:
        prefix = root_path
    return f"{proto}://{reached}{prefix.rstrip('/')}"


def request_base_url(request: Request, public_url: str | None = None) -> str:
    """``public_url`` when configured, else the base URL ``request`` was sent to."""
    if public_url:
        return public_url.rstrip("/")
    headers = request.headers
    return base_url_of(
        scheme=request.url.scheme,
        host=headers.get("host") or request.url.netloc,
        root_path=str(request.scope.get("root_path") or ""),
        forwarded_proto=headers.get("x-forwarded-proto"),
        forwarded_host=headers.get("x-forwarded-host"),
        forwarded_prefix=headers.get("x-forwarded-prefix"),
    )


def _public_base_url(request: Request) -> str:
    settings = getattr(request.app.state, "settings", None)
    return request_base_url(request, getattr(settings, "public_url", None))


#: FastAPI dependency: the base URL for URLs handed to this request's client.
PublicBaseUrlDep = Annotated[str, Depends(_public_base_url)]
