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
#   POSTGRES_SERVICE_PASSWORD   password of the service roles
#                               (default: POSTGRES_PASSWORD)
set -euo pipefail

databases="${POSTGRES_SERVICE_DATABASES:-tracking registry features features_feast:features monitor trainer serving}"
password="${POSTGRES_SERVICE_PASSWORD:-${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set}}"

psql_admin() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" \
        --dbname "${POSTGRES_DB:-postgres}" "$@"
}

for entry in ${databases}; do
    database="${entry%%:*}"
    owner="${entry#*:}"
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
