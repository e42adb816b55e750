#!/usr/bin/env bash
# Makes Debian's Chromium available for the console's browser tests (tests/browser):
# installs the `chromium` package when /usr/bin/chromium is missing and we are root.
# Playwright drives it through its executable path; no browser is ever downloaded
# (never `playwright install`: these machines have no internet but the package mirrors).
#
# Exits 0 with Chromium there; exits 3 (and says why) when it cannot be had here, which
# the tests turn into a skip (or a failure under DRIFTLOOP_REQUIRE_SERVICES=1).
set -uo pipefail

CHROMIUM="${DRIFTLOOP_CHROMIUM:-/usr/bin/chromium}"

unavailable() { echo "chromium unavailable: $*" >&2; exit 3; }

if [[ ! -x "${CHROMIUM}" ]]; then
    [[ "$(id -u)" == 0 ]] || unavailable "${CHROMIUM} is missing and we are not root to install it"
    command -v apt-get >/dev/null || unavailable "${CHROMIUM} is missing and there is no apt-get"
    echo "==> installing chromium (Debian) for the browser tests"
    if [[ ! -f /var/lib/driftloop-chromium.apt-updated ]]; then
        apt-get update -qq >/dev/null 2>&1 || unavailable "apt-get update failed"
        touch /var/lib/driftloop-chromium.apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
        || unavailable "apt-get install chromium failed"
    [[ -x "${CHROMIUM}" ]] || unavailable "chromium installed, but ${CHROMIUM} is not there"
fi
echo "==> $("${CHROMIUM}" --version 2>/dev/null || echo "${CHROMIUM}") for the browser tests"
