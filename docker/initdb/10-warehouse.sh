#!/bin/sh
# Runs once, when the PostgreSQL volume is created: a database for the warehouse beside Dagster's.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"${WAREHOUSE_DB:-warehouse}\""
