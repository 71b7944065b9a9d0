#!/usr/bin/env bash
# Throughput of POST /cycles with five packs, against a plain insert of the same rows (the cycle,
# five packs, the audit event and the chain head) run directly against the same database in the
# same run: sqlite3 for SQLite, pgbench for PostgreSQL.
#
#   bash tests/load/cycles_vs_insert.sh             # both backends
#   BACKENDS=sqlite bash tests/load/cycles_vs_insert.sh
#
# Needs wrk, sqlite3 and pgbench (apt-get install wrk sqlite3 postgresql-client). Traffic goes to
# 127.0.0.1 only; each measurement lasts DURATION.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
PORT=${PORT:-18081}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
BACKENDS=${BACKENDS:-"sqlite postgres"}
for tool in wrk sqlite3 pgbench; do command -v $tool >/dev/null || { echo "install $tool first"; exit 1; }; done

cargo build --release --locked --quiet
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/aseptic
WORK=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
export ASEPTIC_CONFIG_DIR=$PWD/config ASEPTIC__LOG__LEVEL=warn
PASSWORD='load test owner passphrase'
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

start() { # $1 = database URL; sets CLINIC, TOKEN, STERILISER
  export DATABASE_URL=$1
  CLINIC=$(ASEPTIC_OWNER_PASSWORD=$PASSWORD $BIN create-clinic --name "Load Studio" \
    --timezone Europe/London --jurisdiction gb-eng --owner-email owner@load.example | tail -n1)
  $BIN serve --bind 127.0.0.1:$PORT >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
  TOKEN=$(curl -sf http://127.0.0.1:$PORT/api/v1/auth/login -H 'content-type: application/json' \
    -d "{\"email\":\"owner@load.example\",\"password\":\"$PASSWORD\"}" | json '["access_token"]')
  STERILISER=$(curl -sf http://127.0.0.1:$PORT/api/v1/clinics/$CLINIC/sterilisers \
    -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"make":"W&H","model":"Lisa","serial_number":"LOAD-1","kind":"pre_vacuum"}' | json '["id"]')
  export CLINIC TOKEN STERILISER
}

stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }

post_rate() {
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s tests/load/post_cycle.lua http://127.0.0.1:$PORT >"$WORK/wrk.txt"
  if grep -q "Non-2xx" "$WORK/wrk.txt"; then cat "$WORK/wrk.txt" >&2; echo "POST /cycles failed" >&2; exit 1; fi
  grep 'Requests/sec' "$WORK/wrk.txt" | awk '{print $2}'
}

# The rows one POST /cycles writes, as literal SQL; $1 = a unique number.
rows_sql() {
  local i=$1 c="bench-cycle-$1" now="2026-01-05 10:00:00"
  echo "INSERT INTO cycles (id, version, clinic_id, steriliser_id, cycle_number, program_name, program_temperature_c, program_hold_minutes, started_at, finished_at, peak_temperature_c, peak_pressure_kpa, hold_minutes, operator_id, load_indicator_type, load_indicator_passed, recorded_at) VALUES ('$c', 1, '$CLINIC', '$STERILISER', $((900000000 + i)), '134 C / 3.5 min pre-vacuum', 134.0, 3.5, '2026-01-05 09:00:00', '2026-01-05 09:45:00', 135.2, 315.0, 4.0, 'operator', 5, true, '$now');"
  for p in 1 2 3 4 5; do
    echo "INSERT INTO packs (id, clinic_id, cycle_id, code, contents, indicator_type, indicator_passed, shelf_life_days, created_at) VALUES ('$c-p$p', '$CLINIC', '$c', 'B$i-$p', '4 tube grips, 2 tips', 4, true, 30, '$now');"
  done
  echo "INSERT INTO audit_events (clinic_id, seq, recorded_at, actor_kind, action, entity_kind, entity_id, payload, prev_hash, hash) VALUES ('$CLINIC', $((1000000000 + i)), '$now', 'user', 'cycle.recorded', 'cycle', '$c', '{}', 'prev-$i', 'hash-$i');"
  echo "UPDATE chain_heads SET seq = $((1000000000 + i)), head_hash = 'hash-$i' WHERE clinic_id = '$CLINIC';"
}

sqlite_baseline() { # $1 = database file; prints transactions per second
  local n=3000
  { echo "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
    for i in $(seq 1 $n); do echo "BEGIN IMMEDIATE;"; rows_sql "$i"; echo "COMMIT;"; done
  } >"$WORK/baseline.sql"
  local start end
  start=$(date +%s.%N)
  sqlite3 "$1" <"$WORK/baseline.sql" >/dev/null
  end=$(date +%s.%N)
  python3 -c "print(f'{$n / ($end - $start):.1f}')"
}

pg_baseline() { # $1 = database URL; prints transactions per second
  cat >"$WORK/pgbench.sql" <<SQL
\set n random(1, 2000000000)
BEGIN;
INSERT INTO cycles (id, version, clinic_id, steriliser_id, cycle_number, program_name, program_temperature_c, program_hold_minutes, started_at, finished_at, peak_temperature_c, peak_pressure_kpa, hold_minutes, operator_id, load_indicator_type, load_indicator_passed, recorded_at) VALUES (gen_random_uuid()::text, 1, '$CLINIC', '$STERILISER', :n, '134 C / 3.5 min pre-vacuum', 134.0, 3.5, '2026-01-05 09:00:00', '2026-01-05 09:45:00', 135.2, 315.0, 4.0, 'operator', 5, true, now());
INSERT INTO packs (id, clinic_id, cycle_id, code, contents, indicator_type, indicator_passed, shelf_life_days, created_at) VALUES (gen_random_uuid()::text, '$CLINIC', 'c', gen_random_uuid()::text, '4 tube grips, 2 tips', 4, true, 30, now());
INSERT INTO packs (id, clinic_id, cycle_id, code, contents, indicator_type, indicator_passed, shelf_life_days, created_at) VALUES (gen_random_uuid()::text, '$CLINIC', 'c', gen_random_uuid()::text, '4 tube grips, 2 tips', 4, true, 30, now());
INSERT INTO packs (id, clinic_id, cycle_id, code, contents, indicator_type, indicator_passed, shelf_life_days, created_at) VALUES (gen_random_uuid()::text, '$CLINIC', 'c', gen_random_uuid()::text, '4 tube grips, 2 tips', 4, true, 30, now());
INSERT INTO packs (id, clinic_id, cycle_id, code, contents, indicator_type, indicator_passed, shelf_life_days, created_at) VALUES (gen_random_uuid()::text, '$CLINIC', 'c', gen_random_uuid()::text, '4 tube grips, 2 tips', 4, true, 30, now());
INSERT INTO packs (id, clinic_id, cycle_id, code, contents, indicator_type, indicator_passed, shelf_life_days, created_at) VALUES (gen_random_uuid()::text, '$CLINIC', 'c', gen_random_uuid()::text, '4 tube grips, 2 tips', 4, true, 30, now());
UPDATE chain_heads SET seq = nextval('bench_seq'), head_hash = md5(random()::text) WHERE clinic_id = '$CLINIC';
INSERT INTO audit_events (clinic_id, seq, recorded_at, actor_kind, action, entity_kind, entity_id, payload, prev_hash, hash) VALUES ('$CLINIC', nextval('bench_seq'), now(), 'user', 'cycle.recorded', 'cycle', 'c', '{}', gen_random_uuid()::text, gen_random_uuid()::text);
COMMIT;
SQL
  psql "$1" -qc "CREATE SEQUENCE IF NOT EXISTS bench_seq START 1000000000"
  pgbench -n -c "$CONNECTIONS" -j 2 -T "$DURATION" -f "$WORK/pgbench.sql" "$1" 2>/dev/null |
    grep -E '^tps' | head -n1 | sed -E 's/^tps = ([0-9.]+).*/\1/'
}

for backend in $BACKENDS; do
  case $backend in
    sqlite)
      start "sqlite://$WORK/load.db"
      POST=$(post_rate)
      stop
      BASE=$(sqlite_baseline "$WORK/load.db")
      ;;
    postgres)
      DB=aseptic_load_$$
      psql "$PG_ADMIN" -qc "CREATE DATABASE $DB"
      URL="${PG_ADMIN%/*}/$DB"
      start "$URL"
      POST=$(post_rate)
      stop
      BASE=$(pg_baseline "$URL")
      psql "$PG_ADMIN" -qc "DROP DATABASE $DB WITH (FORCE)"
      ;;
  esac
  echo "$backend: POST /cycles (5 packs) $POST requests/s; plain insert of the same rows $BASE transactions/s"
  python3 -c "print(f'$backend: ratio POST /cycles : plain insert = {float($POST)/float($BASE):.3f}')"
done
