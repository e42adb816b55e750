#!/bin/bash
# The PostgreSQL stand-in's entrypoint: what the official postgres image's
# docker-entrypoint.sh does, on Debian's PostgreSQL. On an empty $PGDATA it makes
# a UTF-8 cluster (the official image's locale is en_US.utf8; a SQL_ASCII cluster
# makes psycopg return bytes) whose superuser is $POSTGRES_USER with
# $POSTGRES_PASSWORD, creates $POSTGRES_DB, runs /docker-entrypoint-initdb.d/*.sh
# (sourced, or executed when executable) and *.sql on a server that listens on
# its socket only, then starts the server on every interface. Runs as root only
# to own the data directory, then as postgres.
set -euo pipefail

if [[ "${1:-postgres}" != postgres ]]; then
    exec "$@"
fi
if [[ "$(id -u)" == 0 ]]; then
    mkdir -p "${PGDATA}" /var/run/postgresql
    chown -R postgres:postgres "${PGDATA}" /var/run/postgresql
    chmod 0700 "${PGDATA}"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

export POSTGRES_USER="${POSTGRES_USER:-postgres}"
export POSTGRES_DB="${POSTGRES_DB:-${POSTGRES_USER}}"

if [[ ! -s "${PGDATA}/PG_VERSION" ]]; then
    if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
        echo "postgres stand-in: set POSTGRES_PASSWORD (as the official image asks)" >&2
        exit 1
    fi
    initdb --username="${POSTGRES_USER}" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD}") \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
        -D "${PGDATA}" >/dev/null
    echo "listen_addresses = '*'" >>"${PGDATA}/postgresql.conf"
    echo "host all all all scram-sha-256" >>"${PGDATA}/pg_hba.conf"
    pg_ctl -D "${PGDATA}" -o "-c listen_addresses=''" -w start >/dev/null
    if [[ "${POSTGRES_DB}" != postgres ]]; then
        psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres \
            -c "CREATE DATABASE \"${POSTGRES_DB}\"" >/dev/null
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "${f}" in
            *.sh)
                echo "postgres stand-in: running ${f}"
                if [[ -x "${f}" ]]; then "${f}"; else . "${f}"; fi ;;
            *.sql)
                echo "postgres stand-in: running ${f}"
                psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" -f "${f}" ;;
            *) ;;
        esac
    done
    pg_ctl -D "${PGDATA}" -m fast -w stop >/dev/null
    echo "postgres stand-in: init done"
fi
exec postgres -D "${PGDATA}"
