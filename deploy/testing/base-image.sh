#!/usr/bin/env bash
# Builds the local stand-in for python:3.11-slim-bookworm from Debian's mirror:
# a minimal Debian 12 (bookworm) root filesystem made by debootstrap, with
# Debian's Python 3.11, imported as one image layer (`docker import`).
#
#   deploy/testing/base-image.sh [TAG]       (default driftloop/debian-python:3.11-bookworm)
#
# No image registry is reachable from the machines this runs on, so the official
# python image cannot be pulled; this one is laid out like it where the
# Dockerfile relies on it: `python`, `python3.11` in /usr/local/bin, and pip may
# install into the system interpreter (Debian's EXTERNALLY-MANAGED marker is
# removed, as the official image has none). The tag is stable and the image is
# built once: a second run finds it and returns at once (FORCE=1 rebuilds it).
set -euo pipefail

TAG="${1:-driftloop/debian-python:3.11-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKER="${DOCKER:-docker}"

if [[ "${FORCE:-0}" != 1 ]] && "${DOCKER}" image inspect "${TAG}" >/dev/null 2>&1; then
    echo "==> base image ${TAG} already built"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    echo "==> installing debootstrap (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

rootfs="$(mktemp -d /var/tmp/driftloop-rootfs.XXXXXX)"
trap 'rm -rf "${rootfs}"' EXIT

echo "==> debootstrap bookworm into ${rootfs} (a few minutes)"
# minbase: dpkg, apt and the required packages only; python3 is Debian 12's 3.11.
debootstrap --variant=minbase \
    --include=python3,python3-pip,ca-certificates \
    bookworm "${rootfs}" "${MIRROR}" >"${rootfs}.log" 2>&1 \
    || { tail -30 "${rootfs}.log" >&2; exit 1; }
rm -f "${rootfs}.log"

# Laid out like the official image where deploy/Dockerfile looks.
ln -sf /usr/bin/python3.11 "${rootfs}/usr/local/bin/python3.11"
ln -sf /usr/bin/python3.11 "${rootfs}/usr/local/bin/python3"
ln -sf /usr/bin/python3.11 "${rootfs}/usr/local/bin/python"
rm -f "${rootfs}"/usr/lib/python3*/EXTERNALLY-MANAGED
# Smaller: apt's lists and caches, docs and man pages are not needed to run.
rm -rf "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/var/cache/apt/*.bin \
    "${rootfs}"/var/cache/apt/archives/*.deb \
    "${rootfs}"/usr/share/doc/* "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/*
# apt inside derived images (the stand-ins) keeps no downloaded packages.
cat >"${rootfs}/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Keep-Downloaded-Packages "false";
APT
echo "deb ${MIRROR} bookworm main" >"${rootfs}/etc/apt/sources.list"
# The host's own certificate authorities (/usr/local/share/ca-certificates: a
# TLS-inspecting egress proxy's, a company's) are trusted inside too, or pip, uv
# and apt over https cannot reach the package registries during the builds.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "${rootfs}/usr/local/share/ca-certificates/"
    chroot "${rootfs}" update-ca-certificates >/dev/null
fi

echo "==> docker import ${TAG}"
tar -C "${rootfs}" -c . | "${DOCKER}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' \
    - "${TAG}" >/dev/null
"${DOCKER}" image ls "${TAG}"
