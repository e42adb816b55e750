#!/usr/bin/env bash
# Makes a Docker engine and `docker compose` v2 available on this machine, for
# `make test-deploy`: installs Debian's docker.io (and debootstrap) when missing,
# starts dockerd in the background when none answers (its log in
# /var/log/driftloop-deploy/dockerd.log), and installs the compose v2 and buildx
# CLI plugins from Debian 13's packages when `docker compose` is not v2 (Debian
# 12's docker-compose is 1.29, which rejects the file's `name:`).
#
# Exits 0 with the engine answering; exits 3 (and says why) when it cannot be had
# here, which the tests turn into a skip (or a failure under DRIFTLOOP_REQUIRE_SERVICES).
set -uo pipefail

LOG_DIR=/var/log/driftloop-deploy
PLUGINS=/usr/local/lib/docker/cli-plugins
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

unavailable() { echo "docker engine unavailable: $*" >&2; exit 3; }

apt_install() {
    [[ "$(id -u)" == 0 ]] || unavailable "not root: cannot install $*"
    if [[ ! -f /var/lib/driftloop-deploy.apt-updated ]]; then
        apt-get update -qq >/dev/null 2>&1 || unavailable "apt-get update failed"
        touch /var/lib/driftloop-deploy.apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
        || unavailable "apt-get install $* failed"
}

command -v dockerd >/dev/null || { echo "==> installing docker.io (Debian)"; apt_install docker.io; }
command -v debootstrap >/dev/null || { echo "==> installing debootstrap (Debian)"; apt_install debootstrap; }

if ! docker info >/dev/null 2>&1; then
    [[ "$(id -u)" == 0 ]] || unavailable "no engine answers and not root to start dockerd"
    mkdir -p "${LOG_DIR}"
    echo "==> starting dockerd (log: ${LOG_DIR}/dockerd.log)"
    nohup dockerd >>"${LOG_DIR}/dockerd.log" 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || unavailable "dockerd did not answer in 60 s: $(tail -3 "${LOG_DIR}/dockerd.log")"
fi

compose_major() { docker compose version --short 2>/dev/null | sed -E 's/^v?([0-9]+).*/\1/'; }
if [[ "$(compose_major)" != 2 ]] || ! docker buildx version >/dev/null 2>&1; then
    echo "==> installing docker compose v2 and buildx (Debian 13's packages) into ${PLUGINS}"
    work="$(mktemp -d)"
    trap 'rm -rf "${work}"' EXIT
    mkdir -p "${work}/lists/partial" "${work}/cache/archives/partial" "${PLUGINS}"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${MIRROR} trixie main" >"${work}/sources.list"
    # A private apt state: the machine's own sources and package lists stay as they are.
    opts=(-o "Dir::Etc::SourceList=${work}/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=${work}/lists" -o "Dir::Cache=${work}/cache"
          -o APT::Sandbox::User=root)
    apt-get "${opts[@]}" update -qq >/dev/null 2>&1 || unavailable "apt-get update (trixie) failed"
    (cd "${work}" && apt-get "${opts[@]}" download docker-compose docker-buildx >/dev/null 2>&1) \
        || unavailable "apt-get download docker-compose docker-buildx failed"
    for deb in "${work}"/*.deb; do dpkg-deb -x "${deb}" "${work}/root"; done
    install -m 0755 "${work}"/root/usr/libexec/docker/cli-plugins/docker-* "${PLUGINS}/"
    [[ "$(compose_major)" == 2 ]] || unavailable "docker compose is still not v2"
fi
echo "==> docker engine $(docker version --format '{{.Server.Version}}'), compose $(docker compose version --short)"
