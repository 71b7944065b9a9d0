#!/usr/bin/env python3
"""A full client session through the service, against the same rows written straight to the
database, in one run; then the reads that follow it.

Each session is what a technician does at the station, one request per tap: plan it, answer the
11 checklist items one by one, scan 3 packs and 2 lots, start, complete (19 requests, each its
own transaction). The raw side writes the rows one such session wrote (taken from the database
after the service run: the session, its answers, packs, lots, start, completion and its 19 audit
events with their chain-head updates) as 19 transactions of plain SQL: Python's sqlite3 module
on one connection for SQLite, pgbench for PostgreSQL.

The reads, through the service with wrk against the statements they boil down to:
GET /sessions/{id} (the session's trace), GET /sessions?limit=50 and GET /compliance.

    python3 tests/load/session_vs_insert.py                    # both backends
    BACKENDS=sqlite DURATION=10 python3 tests/load/session_vs_insert.py

Needs wrk and pgbench (apt-get install wrk postgresql-client). Traffic stays on 127.0.0.1.
The clinic is a demo clinic (`aseptic demo --months 1`) so sterilisers, staff and credentials
are in order; the benchmark adds a Bowie-Dick test for today, a load of packs and two lots.
"""
import http.client
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DURATION = float(os.environ.get("DURATION", "10"))
WORKERS = int(os.environ.get("WORKERS", "4"))
PORT = int(os.environ.get("PORT", "18082"))
PG_ADMIN = os.environ.get("PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")
BACKENDS = os.environ.get("BACKENDS", "sqlite postgres").split()
BIN = os.environ.get("ASEPTIC_BIN") or os.path.join(ROOT, "target", "release", "aseptic")
SESSION_TABLES = [
    ("sessions", "id"),
    ("session_answers", "session_id"),
    ("session_packs", "session_id"),
    ("session_lots", "session_id"),
    ("session_starts", "session_id"),
    ("session_completions", "session_id"),
]


def now():
    return datetime.now(timezone.utc)


class Api:
    """One keep-alive connection, as a station's browser holds one."""

    def __init__(self, token=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        self.token = token
        self.requests = 0

    def call(self, method, path, body=None, expect=(200, 201)):
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = "Bearer " + self.token
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        res = self.conn.getresponse()
        data = res.read()
        self.requests += 1
        if res.status not in expect:
            raise RuntimeError(f"{method} {path}: {res.status} {data[:600]!r}")
        return json.loads(data) if data else None


def login(email, password):
    return Api().call("POST", "/api/v1/auth/login", {"email": email, "password": password})["access_token"]


def demo(env):
    out = subprocess.run([BIN, "demo", "--months", "1"], env=env, check=True, capture_output=True, text=True).stdout
    # "  owner       Olivia Owner         owner.1a2b3c@demo.aseptic.example  password: ..."
    accounts = {first: (email, password) for first, email, password in
                re.findall(r"^\s+\w+\s+(\w+) \w+\s+(\S+@\S+)\s+password: (\S+)$", out, re.M)}
    clinic = out.strip().splitlines()[-1].strip()
    return clinic, accounts


def prepare(clinic, owner, technicians):
    """Today's air-removal test, one load with enough packs, two lots, a client per worker."""
    base = f"/api/v1/clinics/{clinic}"
    sterilisers = owner.call("GET", f"{base}/sterilisers")["items"]
    steriliser = next(s for s in sterilisers if s["kind"] == "pre_vacuum" and s.get("in_service", True))
    sid = steriliser["id"]
    t = now() - timedelta(minutes=90)
    owner.call("POST", f"{base}/air-removal-tests", {
        "steriliser_id": sid, "performed_at": t.isoformat(), "test_type": "bowie_dick", "passed": True})
    cycles = owner.call("GET", f"{base}/cycles?steriliser_id={sid}&limit=200")["items"]
    number = max(c["cycle_number"] for c in cycles) + 1 if cycles else 1
    packs = []
    while len(packs) < 6000:
        start = t + timedelta(minutes=2)
        cycle = owner.call("POST", f"{base}/cycles", {
            "steriliser_id": sid, "cycle_number": number,
            "program": {"name": "134 C / 3.5 min pre-vacuum", "temperature_c": 134.0, "hold_minutes": 3.5},
            "started_at": start.isoformat(), "finished_at": (start + timedelta(minutes=40)).isoformat(),
            "peak_temperature_c": 135.2, "peak_pressure_kpa": 315.0, "hold_minutes": 4.0,
            "load_indicator": {"type": 5, "passed": True},
            "packs": [{"contents": "4 tube grips, 2 tips", "indicator": {"type": 4, "passed": True}}] * 200})
        packs += [p["code"] for p in cycle["packs"]]
        number += 1
    today = now().date()
    cartridges = owner.call("POST", f"{base}/lots", {
        "kind": "needle_cartridge", "manufacturer": "Cheyenne", "product_name": "Craft", "gtin": "09506000134352",
        "lot_number": "LOAD-1", "expiry_date": str(today + timedelta(days=300)),
        "sterilisation_method": "ethylene_oxide", "received_on": str(today - timedelta(days=3)), "quantity_received": 100000})["id"]
    pigment = owner.call("POST", f"{base}/lots", {
        "kind": "pigment", "manufacturer": "Scalp Ink Co", "product_name": "Dark Brown 3", "lot_number": "LOAD-P",
        "expiry_date": str(today + timedelta(days=400)), "sterilisation_method": "gamma",
        "received_on": str(today - timedelta(days=3)), "quantity_received": 100000})["id"]
    clients = [technicians[i % len(technicians)].call("POST", f"{base}/clients", {
        "name": f"Load Client {i}", "contact": "+44 7700 900123", "date_of_birth": "1990-04-02"})["id"]
        for i in range(WORKERS)]
    return packs, (cartridges, pigment), clients


def one_session(api, clinic, client, packs, lots, lot_barcode):
    """The 19 requests of one client session; returns its id."""
    base = f"/api/v1/clinics/{clinic}"
    s = api.call("POST", f"{base}/sessions", {
        "client_id": client, "station": "Chair 2", "procedure": "SMP session 1 of 3, crown",
        "planned_at": now().isoformat()})
    sid = s["id"]
    cartridges, pigment = lots
    for line in s["checklist"]:
        value = {"cartridge_lot": cartridges, "surface_disinfectant": "Mikrozid AF liquid",
                 "contact_time": 60}.get(line["key"], True)
        api.call("POST", f"{base}/sessions/{sid}/answers", {"answers": [{"item_key": line["key"], "value": value}]})
    for code in packs:
        api.call("POST", f"{base}/sessions/{sid}/packs", {"code": code})
    api.call("POST", f"{base}/sessions/{sid}/lots", {"barcode": lot_barcode})
    api.call("POST", f"{base}/sessions/{sid}/lots", {"lot_id": pigment})
    api.call("POST", f"{base}/sessions/{sid}/start", {})
    api.call("POST", f"{base}/sessions/{sid}/complete", {"notes": "healed well"})
    return sid


def wrk(path, token, seconds):
    out = subprocess.run(["wrk", "-t2", "-c4", f"-d{max(1, int(seconds))}s", "-H", f"Authorization: Bearer {token}",
                          f"http://127.0.0.1:{PORT}{path}"], check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"GET {path} failed under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def run_service(url, work):
    env = dict(os.environ, DATABASE_URL=url, ASEPTIC_CONFIG_DIR=os.path.join(ROOT, "config"),
               ASEPTIC__LOG__LEVEL="warn", ASEPTIC__AUTH__LOGIN_PER_ADDRESS_BURST="1000",
               ASEPTIC__EXPORTS__SIGNING_KEY_PATH=os.path.join(work, "key.pem"),
               ASEPTIC__EXPORTS__DIR=os.path.join(work, "exports"), ASEPTIC__MAIL__WORKER="false")
    clinic, accounts = demo(env)
    server = subprocess.Popen([BIN, "serve", "--bind", f"127.0.0.1:{PORT}"], env=env,
                              stdout=open(os.path.join(work, "server.log"), "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                Api().call("GET", "/healthz")
                break
            except Exception:
                time.sleep(0.05)
        owner = Api(login(*accounts["Olivia"]))
        techs = [Api(login(*accounts[name])) for name in ("Tariq", "Tess")]
        packs, lots, clients = prepare(clinic, owner, techs)
        barcode = "(01)09506000134352(17)290101(10)LOAD-1"
        lock = threading.Lock()
        stop = time.monotonic() + DURATION
        done, failures = [0, 0], []

        def worker(i):
            api = Api(techs[i % len(techs)].token)
            try:
                while time.monotonic() < stop:
                    with lock:
                        mine, packs[:3] = packs[:3], []
                    one_session(api, clinic, clients[i], mine, lots, barcode)
                    with lock:
                        done[0] += 1
                        done[1] += api.requests
                        api.requests = 0
            except Exception as e:  # reported below; the run then fails
                failures.append(str(e))

        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        if failures:
            raise RuntimeError(failures[0])
        # One more, alone, whose rows the raw side copies.
        last = one_session(Api(techs[0].token), clinic, clients[0], packs[:3], lots, barcode)
        reads = {
            "session trace": wrk(f"/api/v1/clinics/{clinic}/sessions/{last}", techs[0].token, DURATION / 2),
            "session list (50)": wrk(f"/api/v1/clinics/{clinic}/sessions?limit=50", techs[0].token, DURATION / 2),
            "compliance view": wrk(f"/api/v1/clinics/{clinic}/compliance", owner.token, DURATION / 2),
        }
        return clinic, last, done[0] / elapsed, done[1] / elapsed, reads
    finally:
        server.terminate()
        server.wait()


# --- the raw side -------------------------------------------------------------------------------

def rows_of(query, clinic, session):
    """The session's rows per table and its 19 audit events, in the order the service wrote them."""
    rows = []
    for table, key in SESSION_TABLES:
        for r in query(f"SELECT * FROM {table} WHERE {key} = '{session}'"):
            rows.append((table, r))
    order = {"sessions": 0, "session_answers": 1, "session_packs": 2, "session_lots": 3,
             "session_starts": 4, "session_completions": 5}
    stamp = lambda r: str(r[1].get("answered_at") or r[1].get("added_at") or "")
    rows.sort(key=lambda r: (order[r[0]], stamp(r)))
    events = query(f"SELECT * FROM audit_events WHERE clinic_id = '{clinic}' ORDER BY seq DESC LIMIT {len(rows)}")
    events.reverse()
    return rows, events


def sqlite_raw(path, clinic, session, n):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    query = lambda sql: [dict(r) for r in conn.execute(sql).fetchall()]
    rows, events = rows_of(query, clinic, session)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    seq = query(f"SELECT seq FROM chain_heads WHERE clinic_id = '{clinic}'")[0]["seq"]
    started = time.monotonic()
    for i in range(n):
        sid = str(uuid.uuid4())
        for (table, row), event in zip(rows, events):
            row = dict(row)
            row["session_id" if table != "sessions" else "id"] = sid
            if "id" in row and table == "session_answers":
                row["id"] = str(uuid.uuid4())
            seq += 1
            ev = dict(event, seq=seq, entity_id=sid, prev_hash=str(uuid.uuid4()), hash=str(uuid.uuid4()))
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"INSERT INTO {table} ({','.join(row)}) VALUES ({','.join('?' * len(row))})", list(row.values()))
            conn.execute(f"INSERT INTO audit_events ({','.join(ev)}) VALUES ({','.join('?' * len(ev))})", list(ev.values()))
            conn.execute("UPDATE chain_heads SET seq = ?, head_hash = ? WHERE clinic_id = ?", (seq, ev["hash"], clinic))
            conn.execute("COMMIT")
    return n / (time.monotonic() - started)


def list_statements(first_page, clinic):
    """The statements a page of 50 sessions boils down to, as plain SQL: the page, then each part
    of the sessions read for all fifty at once (what the service sends, less the caller's check)."""
    ids = ",".join(f"'{r['id']}'" for r in first_page)
    clients = ",".join(f"'{r['client_id']}'" for r in first_page)
    template = first_page[0]
    c = f"'{clinic}'"
    return [
        f"SELECT * FROM sessions WHERE clinic_id = {c} ORDER BY planned_at DESC, id DESC LIMIT 51",
        f"SELECT * FROM checklist_templates WHERE clinic_id = {c} AND id = '{template['template_id']}' AND version = {template['template_version']}",
        f"SELECT * FROM session_answers WHERE clinic_id = {c} AND session_id IN ({ids}) ORDER BY recorded_at, id",
        f"SELECT session_id, pack_code, removed_at, removed_by, reason FROM session_pack_removals WHERE clinic_id = {c} AND session_id IN ({ids}) ORDER BY removed_at",
        f"SELECT session_id, pack_code, snapshot FROM session_packs WHERE clinic_id = {c} AND session_id IN ({ids}) ORDER BY added_at",
        f"SELECT session_id, snapshot FROM session_lots WHERE clinic_id = {c} AND session_id IN ({ids}) ORDER BY added_at",
        f"SELECT * FROM session_starts WHERE clinic_id = {c} AND session_id IN ({ids})",
        f"SELECT * FROM session_completions WHERE clinic_id = {c} AND session_id IN ({ids})",
        f"SELECT * FROM clients cl WHERE clinic_id = {c} AND id IN ({clients}) AND version = (SELECT MAX(v.version) FROM clients v WHERE v.id = cl.id)",
        f"SELECT m.*, u.* FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.clinic_id = {c} ORDER BY m.created_at",
    ]


def sqlite_raw_list(path, clinic):
    """Pages of 50 sessions a second, four connections, every row fetched."""
    first = sqlite3.connect(path)
    first.row_factory = sqlite3.Row
    page = [dict(r) for r in first.execute(
        f"SELECT * FROM sessions WHERE clinic_id = '{clinic}' ORDER BY planned_at DESC, id DESC LIMIT 50")]
    statements = list_statements(page, clinic)
    stop = time.monotonic() + DURATION / 2
    counts = []

    def reader():
        conn = sqlite3.connect(path, check_same_thread=False)
        n = 0
        while time.monotonic() < stop:
            for sql in statements:
                conn.execute(sql).fetchall()
            n += 1
        counts.append(n)

    started = time.monotonic()
    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def pg_raw_list(url, clinic, work):
    out = subprocess.run(["psql", url, "-XAt", "-c", "SELECT coalesce(json_agg(t), '[]') FROM (SELECT * FROM sessions "
                          f"WHERE clinic_id = '{clinic}' ORDER BY planned_at DESC, id DESC LIMIT 50) t"],
                         check=True, capture_output=True, text=True).stdout
    path = os.path.join(work, "list.sql")
    with open(path, "w") as f:
        f.write(";\n".join(list_statements(json.loads(out), clinic)) + ";\n")
    out = subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", "4", "-j", "2", "-T", str(max(1, int(DURATION / 2))),
                          "-f", path, url], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"^tps = ([\d.]+)", out, re.M).group(1))


def pg_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def pg_raw(url, clinic, session, work):
    def query(sql):
        out = subprocess.run(["psql", url, "-XAt", "-c", f"SELECT coalesce(json_agg(t), '[]') FROM ({sql}) t"],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)
    rows, events = rows_of(query, clinic, session)
    subprocess.run(["psql", url, "-qc", "CREATE SEQUENCE IF NOT EXISTS load_seq START 1000000000"], check=True)
    script = ["\\set n random(1, 2000000000000)"]
    for k, ((table, row), event) in enumerate(zip(rows, events)):
        row = dict(row)
        values = []
        for col, v in row.items():
            if (table == "sessions" and col == "id") or col == "session_id":
                values.append("'load-' || :n")
            elif table == "session_answers" and col == "id":
                values.append(f"'load-' || :n || '-{k}'")
            else:
                values.append(pg_literal(v))
        ev_values = []
        for col, v in event.items():
            if col == "seq":
                ev_values.append("nextval('load_seq')")
            elif col == "entity_id":
                ev_values.append("'load-' || :n")
            elif col in ("prev_hash", "hash"):
                ev_values.append("gen_random_uuid()::text")
            else:
                ev_values.append(pg_literal(v))
        script += [
            "BEGIN;",
            f"INSERT INTO {table} ({','.join(row)}) VALUES ({','.join(values)});",
            f"INSERT INTO audit_events ({','.join(event)}) VALUES ({','.join(ev_values)});",
            f"UPDATE chain_heads SET seq = currval('load_seq'), head_hash = md5(random()::text) WHERE clinic_id = '{clinic}';",
            "COMMIT;",
        ]
    path = os.path.join(work, "session.sql")
    with open(path, "w") as f:
        f.write("\n".join(script) + "\n")
    out = subprocess.run(["pgbench", "-n", "-c", str(WORKERS), "-j", "2", "-T", str(int(DURATION)), "-f", path, url],
                         check=True, capture_output=True, text=True).stdout
    return float(re.search(r"^tps = ([\d.]+)", out, re.M).group(1))


def main():
    if "ASEPTIC_BIN" not in os.environ:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    for tool in ("wrk", "pgbench", "psql"):
        if shutil.which(tool) is None:
            sys.exit(f"install {tool} first")
    for backend in BACKENDS:
        work = tempfile.mkdtemp()
        try:
            if backend == "sqlite":
                path = os.path.join(work, "load.db")
                clinic, last, sessions, requests, reads = run_service(f"sqlite://{path}", work)
                raw_list = sqlite_raw_list(path, clinic)
                raw = sqlite_raw(path, clinic, last, max(200, int(sessions * DURATION)))
            else:
                db = f"aseptic_load_{os.getpid()}"
                subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {db}"], check=True)
                url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
                try:
                    clinic, last, sessions, requests, reads = run_service(url, work)
                    raw_list = pg_raw_list(url, clinic, work)
                    raw = pg_raw(url, clinic, last, work)
                finally:
                    subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE {db} WITH (FORCE)"], check=True)
            print(f"{backend}: client sessions through the service {sessions:.1f}/s ({requests:.0f} requests/s, "
                  f"{WORKERS} stations); the same rows straight to the database {raw:.1f}/s; ratio {sessions / raw:.3f}")
            for what, rate in reads.items():
                print(f"{backend}: GET {what}: {rate:.0f} requests/s (4 connections)")
            print(f"{backend}: the session list's statements straight to the database: {raw_list:.0f} pages/s "
                  f"(4 connections); GET /sessions?limit=50 takes {raw_list / reads['session list (50)']:.2f}x as long")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
