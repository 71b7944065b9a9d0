#!/usr/bin/env bash
# Does a request that sends mail wait for the SMTP server? Times POST .../exports/{id}/send (the
# summary is composed and queued; the worker delivers it) against a working SMTP server, then
# against one that accepts connections and never answers (black-holed: every delivery waits for
# the 10 s time-out), on one release server each, and reports p50/p95 of both and their ratio.
# At the end the server is pointed at a working SMTP server again and every queued message must
# arrive.
#
#   bash tests/load/mail_smtp_down.sh                 # SQLite in a temporary directory
#   REQUESTS=200 bash tests/load/mail_smtp_down.sh
#
# Needs python3 (3.11, whose smtpd module is the SMTP sink). Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${REQUESTS:-100}
PORT=${PORT:-18081}
SMTP_PORT=${SMTP_PORT:-18025}

cargo build --release --locked --quiet
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/aseptic
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
export ASEPTIC_CONFIG_DIR=$PWD/config
export DATABASE_URL=${DATABASE_URL:-sqlite://$WORK/load.db}
export ASEPTIC__LOG__LEVEL=warn
export ASEPTIC__EXPORTS__SIGNING_KEY_PATH=$WORK/key.pem
export ASEPTIC__EXPORTS__DIR=$WORK/exports
export ASEPTIC__MAIL__POLL_INTERVAL_MS=200
PASSWORD='load test owner passphrase'
EMAIL="owner-$(date +%s%N)@load.example"
CLINIC=$(ASEPTIC_OWNER_PASSWORD=$PASSWORD $BIN create-clinic --name "Mail Studio" \
  --timezone Europe/London --jurisdiction gb-eng --owner-email "$EMAIL" | tail -1)

sink() { # a working SMTP server counting what it receives
  python3 - "$SMTP_PORT" "$WORK/received" <<'PY' &
import asyncore, smtpd, sys
class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        with open(sys.argv[2], "a") as f:
            f.write(mailfrom + "\n")
Sink(("127.0.0.1", int(sys.argv[1])), None)
asyncore.loop()
PY
  PIDS+=($!)
}
blackhole() { # accepts connections, never says a word
  python3 - "$SMTP_PORT" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(512)
held = []
while True:
    c, _ = s.accept(); held.append(c)
PY
  PIDS+=($!)
}
serve() {
  ASEPTIC__MAIL__URL=smtp://127.0.0.1:$SMTP_PORT $BIN serve --bind 127.0.0.1:$PORT >>"$WORK/server.log" 2>&1 &
  SERVER=$!
  PIDS+=($SERVER)
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && return; sleep 0.1; done
  echo "server did not start"; cat "$WORK/server.log"; exit 1
}
stop() { kill "$@" 2>/dev/null || true; for p in "$@"; do wait "$p" 2>/dev/null || true; done; }

API=http://127.0.0.1:$PORT/api/v1
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
sink; SINK=$!
serve
TOKEN=$(curl -sf $API/auth/login -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | json '["access_token"]')
AUTH=(-H "authorization: Bearer $TOKEN" -H 'content-type: application/json')
curl -sf -X PUT "$API/clinics/$CLINIC/mail/settings" "${AUTH[@]}" -d '{"recipients":["records@council.example"]}' >/dev/null
EXPORT=$(curl -sf "$API/clinics/$CLINIC/exports" "${AUTH[@]}" \
  -d "{\"from\":\"$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)\",\"to\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" | json '["id"]')
sleep 2

timings() { # $1: label; prints p50 and p95 in ms of REQUESTS sends
  for _ in $(seq 1 "$REQUESTS"); do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$API/clinics/$CLINIC/exports/$EXPORT/send" \
      "${AUTH[@]}" -d '{"to":"records@council.example"}'
  done | python3 -c "
import sys
rows = [l.split() for l in sys.stdin]
bad = [r for r in rows if r[0] != '202']
assert not bad, (bad[:3], open('$WORK/server.log').read()[-3000:])
t = sorted(float(r[1]) * 1000 for r in rows)
p = lambda q: t[min(len(t) - 1, int(q * len(t)))]
print(f'$1 {p(0.5):.2f} {p(0.95):.2f}')"
}
UP=$(timings up)
stop "$SERVER"; stop "$SINK"
blackhole; HOLE=$!
serve
DOWN=$(timings down)
echo "sends:                    $REQUESTS per run"
echo "SMTP up       p50 / p95:  $(echo "$UP" | awk '{print $2 " / " $3}') ms"
echo "SMTP black-holed p50/p95: $(echo "$DOWN" | awk '{print $2 " / " $3}') ms"
python3 -c "
u = '$UP'.split(); d = '$DOWN'.split()
print(f'ratio down : up          p50 {float(d[1]) / float(u[1]):.2f}x, p95 {float(d[2]) / float(u[2]):.2f}x')"
PENDING=$(curl -sf "$API/clinics/$CLINIC/mail?state=pending&limit=200" "${AUTH[@]}" | json '.__len__()')
echo "pending while black-holed: $PENDING"

# The server comes back: everything queued is delivered.
stop "$SERVER"; stop "$HOLE"
sink
serve
for _ in $(seq 1 600); do
  LEFT=$(curl -sf "$API/clinics/$CLINIC/mail?state=pending&limit=200" "${AUTH[@]}" | json '.__len__()')
  [ "$LEFT" = 0 ] && break
  sleep 0.5
done
SENT=$(wc -l <"$WORK/received")
echo "delivered after recovery: $SENT of $((2 * REQUESTS)) (pending left: $LEFT)"
[ "$LEFT" = 0 ] && [ "$SENT" -ge $((2 * REQUESTS)) ]
