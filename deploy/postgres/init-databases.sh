#!/usr/bin/env bash
# Creates one database per driftloop service, each owned by a login role of the
# same name, on the first start of the official postgres image (it runs the
# scripts of /docker-entrypoint-initdb.d/ once, on an empty data directory).
#
# Each service owns its data and none reads another's database: every database
# is closed to PUBLIC and open to its owner only.
#
#   POSTGRES_SERVICE_DATABASES  space-separated `database` or `database:owner`
#                               (default: the six services, plus the Feast
#                               registry and offline store, owned by features)
#   POSTGRES_PASSWORD_<OWNER>   password of each service role, e.g.
#                               POSTGRES_PASSWORD_TRACKING: one per service, so a
#                               leaked service credential opens one database only
#   POSTGRES_SERVICE_PASSWORD   the password of a role without its own variable
#                               (for a throwaway single-host setup; never the
#                               superuser's)
set -euo pipefail

databases="${POSTGRES_SERVICE_DATABASES:-tracking registry features features_feast:features monitor trainer serving}"

role_password() {
    local variable="POSTGRES_PASSWORD_${1^^}"
    local password="${!variable:-${POSTGRES_SERVICE_PASSWORD:-}}"
    if [[ -z "${password}" ]]; then
        echo "driftloop: set ${variable} (the password of the role ${1})" >&2
        return 1
    fi
    if [[ "${password}" == "${POSTGRES_PASSWORD:-}" ]]; then
        echo "driftloop: ${variable} must not be the superuser's password" >&2
        return 1
    fi
    printf '%s' "${password}"
}

psql_admin() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" \
        --dbname "${POSTGRES_DB:-postgres}" "$@"
}

for entry in ${databases}; do
    database="${entry%%:*}"
    owner="${entry#*:}"
    password="$(role_password "${owner}")"
    echo "driftloop: database ${database} owned by ${owner}"
    # psql variables (:"x" quotes an identifier, :'x' a literal) keep names and the
    # password out of the SQL text; \gexec runs the statement only when it is needed,
    # so the script can run again on a data directory that has some of them.
    psql_admin -v owner="${owner}" -v password="${password}" -v database="${database}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'owner', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'database')
\gexec
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT ALL ON DATABASE :"database" TO :"owner";
SQL
done
