#!/usr/bin/env bash
# Builds every image `make test-deploy` runs: the local Debian base
# (base-image.sh, built once under a stable tag), the three stand-ins
# (standins.Dockerfile) and the six driftloop images from deploy/Dockerfile with
# PYTHON_IMAGE pointing at the base. BuildKit keeps the layers and the uv/apt/pip
# cache mounts between runs, so a second run rebuilds only what changed.
# Builds use the host's network (the registries are reached from the host).
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE="${PYTHON_IMAGE:-driftloop/debian-python:3.11-bookworm}"
TAG="${DRIFTLOOP_TAG:-latest}"
export DOCKER_BUILDKIT=1

deploy/testing/base-image.sh "${BASE}"

build() {
    local started=${SECONDS}
    docker build --network host --progress plain --build-arg "PYTHON_IMAGE=${BASE}" "$@" \
        >>"${BUILD_LOG:-/var/log/driftloop-deploy/build.log}" 2>&1 \
        || { echo "build failed: docker build $*" >&2; tail -40 "${BUILD_LOG:-/var/log/driftloop-deploy/build.log}" >&2; exit 1; }
    echo "    $* ($((SECONDS - started)) s)"
}
mkdir -p /var/log/driftloop-deploy
echo "==> building the stand-ins and the six images (log: ${BUILD_LOG:-/var/log/driftloop-deploy/build.log})"
for target in postgres redis kafka; do
    case "${target}" in
        postgres) image=driftloop-standin/postgres:15 ;;
        redis) image=driftloop-standin/redis:7 ;;
        kafka) image=driftloop-standin/kafka:tansu ;;
    esac
    build -f deploy/testing/standins.Dockerfile --target "${target}" -t "${image}" .
done
for service in tracking registry features monitor trainer serving console; do
    build -f deploy/Dockerfile --build-arg "SERVICE=${service}" -t "driftloop/${service}:${TAG}" .
done
# The one-shot topic creator of docker-compose.yml is the tracking image
# (compose names a service's image that has no `image:` <project>-<service>).
docker tag "driftloop/tracking:${TAG}" driftloop-kafka-topics:latest
