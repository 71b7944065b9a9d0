#!/usr/bin/env bash
# Throughput of an authenticated read (GET /api/v1/me: token check, user and memberships from the
# database) as a ratio to GET /healthz, on one running release server, with wrk.
#
#   bash tests/load/me_vs_healthz.sh            # SQLite in a temporary directory
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/aseptic_load bash tests/load/me_vs_healthz.sh
#
# Needs wrk (apt-get install wrk). Traffic goes to 127.0.0.1 only and each run lasts DURATION.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PORT=${PORT:-18080}
command -v wrk >/dev/null || { echo "install wrk first (apt-get install wrk)"; exit 1; }

cargo build --release --locked --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/aseptic
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
export ASEPTIC_CONFIG_DIR=$PWD/config
export DATABASE_URL=${DATABASE_URL:-sqlite://$WORK/load.db}
export ASEPTIC__LOG__LEVEL=warn
export ASEPTIC__AUTH__LOGIN_PER_ADDRESS_BURST=1000
PASSWORD='load test owner passphrase'
EMAIL="owner-$(date +%s%N)@load.example"
ASEPTIC_OWNER_PASSWORD=$PASSWORD $BIN create-clinic --name "Load Studio" --timezone Europe/London \
  --jurisdiction gb-eng --owner-email "$EMAIL" >/dev/null
$BIN serve --bind 127.0.0.1:$PORT >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf http://127.0.0.1:$PORT/api/v1/auth/login -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

rps() { grep 'Requests/sec' | awk '{print $2}'; }
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s http://127.0.0.1:$PORT/healthz >/dev/null   # warm-up
HEALTHZ=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" http://127.0.0.1:$PORT/healthz | tee "$WORK/healthz.txt" | rps)
ME=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: Bearer $TOKEN" \
  http://127.0.0.1:$PORT/api/v1/me | tee "$WORK/me.txt" | rps)
grep -E "Non-2xx" "$WORK/me.txt" && { echo "GET /api/v1/me returned errors"; exit 1; }
echo "database:            ${DATABASE_URL%%:*}"
echo "GET /healthz:        $HEALTHZ requests/s"
echo "GET /api/v1/me:      $ME requests/s"
python3 -c "print(f'ratio /me : /healthz = {float($ME)/float($HEALTHZ):.3f}')"

# On PostgreSQL, the two SELECTs GET /me needs (the user, their memberships with the clinics'
# names) straight to the server with pgbench, as plain SQL text and as prepared statements, over
# the same number of connections. (The service also sends the pool's liveness check on checkout.)
if [[ $DATABASE_URL == postgres* ]] && command -v pgbench >/dev/null; then
  USER_ID=$(psql "$DATABASE_URL" -XAtc "SELECT id FROM users WHERE email = '$EMAIL'")
  cat >"$WORK/me.sql" <<SQL
SELECT id, email, display_name, password_hash, active, token_version, created_at, password_changed_at FROM users WHERE id = '$USER_ID' LIMIT 1;
SELECT m.id, m.clinic_id, m.user_id, m.role, m.active, m.created_at, m.updated_at, m.works_on_clients, c.name FROM memberships m JOIN clinics c ON c.id = m.clinic_id WHERE m.user_id = '$USER_ID' ORDER BY m.created_at;
SQL
  for mode in simple prepared; do
    TPS=$(pgbench -n -M $mode -c "$CONNECTIONS" -j "$THREADS" -T "${DURATION%s}" -f "$WORK/me.sql" "$DATABASE_URL" 2>/dev/null |
      grep -E '^tps' | head -n1 | sed -E 's/^tps = ([0-9.]+).*/\1/')
    echo "its statements, pgbench -M $mode: $TPS transactions/s"
    python3 -c "print(f'ratio /me : pgbench $mode = {float($ME)/float($TPS):.3f}')"
  done
fi
