"""Container health check: exit 0 when the service of this image answers its probe.

Run by the image's ``HEALTHCHECK`` (and docker-compose.yml) as
``python /opt/driftloop/healthcheck.py [PATH]``; PATH defaults to ``/readyz``.
Standard library only, so a check costs a few milliseconds rather than the
second it takes to import the service's settings. The service comes from the
``SERVICE`` variable the image sets; its port from ``DRIFTLOOP_<SERVICE>_PORT``,
else the service's default port.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

#: Default port of each service (``ServiceSettings.default_port``; a unit test keeps them equal).
DEFAULT_PORTS: dict[str, int] = {
    "tracking": 5000,
    "registry": 5001,
    "features": 6566,
    "monitor": 8006,
    "trainer": 8008,
    "serving": 8080,
    "console": 8090,
}

#: Seconds one probe may take; below the HEALTHCHECK timeout.
TIMEOUT_SECONDS = 4.0


def probe_url(service: str, environ: Mapping[str, str], path: str = "/readyz") -> str:
    """The URL to probe for ``service`` given the container's environment.

    Raises:
        KeyError: ``service`` is not one of the suite's services.
        ValueError: ``DRIFTLOOP_<SERVICE>_PORT`` is not a port number.
    """
    default = DEFAULT_PORTS[service]
    raw = environ.get(f"DRIFTLOOP_{service.upper()}_PORT", "").strip()
    port = int(raw) if raw else default
    if not 1 <= port <= 65535:
        raise ValueError(f"DRIFTLOOP_{service.upper()}_PORT={raw!r} is not a TCP port")
    # The service binds 0.0.0.0 in the image; loopback reaches it from inside.
    return f"http://127.0.0.1:{port}{path}"


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Probe once; 0 when the answer is 200, 1 otherwise (with the reason on stderr)."""
    service = environ.get("SERVICE", "")
    path = argv[1] if len(argv) > 1 else "/readyz"
    try:
        url = probe_url(service, environ, path)
    except (KeyError, ValueError) as exc:
        print(f"healthcheck: cannot probe service {service!r}: {exc}", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        print(f"healthcheck: {url} answered {exc.code}: {exc.read(500)!r}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {url} unreachable: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))
