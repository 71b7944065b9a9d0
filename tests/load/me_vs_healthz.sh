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
BIN=target/release/aseptic
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
