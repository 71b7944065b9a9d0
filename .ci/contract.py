#!/usr/bin/env python3
"""The API contract, checked from outside: Schemathesis against the real binary.

Starts `aseptic` over a fresh SQLite file holding a month of the demo clinic, signs in as its
owner, gives every path parameter a real id of that clinic, and runs Schemathesis with all of its
checks on `/api/openapi.json`. Exits with Schemathesis's status.

    python3 .ci/contract.py target/debug/aseptic <schemathesis executable> [max examples]
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, token: str | None = None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("accept", "application/json")
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read() or b"null")


def main() -> int:
    binary, schemathesis = sys.argv[1], sys.argv[2]
    examples = sys.argv[3] if len(sys.argv) > 3 else "10"
    work = Path(tempfile.mkdtemp(prefix="aseptic-contract-"))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ASEPTIC_CONFIG_DIR": str(ROOT / "config"),
        "ASEPTIC_ENV": "test",
        "DATABASE_URL": f"sqlite://{work}/contract.db",
        "ASEPTIC__EXPORTS__SIGNING_KEY_PATH": str(work / "export-key.pem"),
        "ASEPTIC__EXPORTS__DIR": str(work / "exports"),
        "ASEPTIC__MAIL__URL": f"file://{work}/outbox",
        # /metrics on the main listener, behind its own token, as the document describes it.
        "ASEPTIC__METRICS__TOKEN": "contract-run-metrics-token-0123456789",
    }
    demo = subprocess.run(
        [binary, "demo", "--months", "1", "--sessions-per-day", "4", "--cycles-per-day", "2"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    owner = re.search(r"^\s*owner\s+.*?(\S+@\S+)\s+password: (\S+)", demo, re.M)
    clinic = demo.strip().splitlines()[-1].strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [binary, "serve", "--bind", f"127.0.0.1:{port}"], env=env,
        stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "w"),
    )
    try:
        for _ in range(300):
            try:
                call(base, "GET", "/readyz")
                break
            except Exception:
                time.sleep(0.1)
        token = call(base, "POST", "/api/v1/auth/login", body={
            "email": owner.group(1), "password": owner.group(2)})["access_token"]
        c = f"/api/v1/clinics/{clinic}"

        def first(path: str, key: str = "id") -> str:
            page = call(base, "GET", c + path, token)
            items = page["items"] if isinstance(page, dict) and "items" in page else page
            return items[0][key]

        cycles = call(base, "GET", c + "/cycles?limit=50", token)["items"]
        pack = next(p["code"] for cy in cycles for p in cy["packs"])
        members = call(base, "GET", c + "/members", token)
        members = members["items"] if isinstance(members, dict) else members
        technician = next(m["user_id"] for m in members if m["role"] == "technician")
        export = call(base, "POST", c + "/exports", token, {
            "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400 * 20)), "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})["id"]
        grant = call(base, "POST", c + "/inspectors", token, {
            "email": "contract@council.example",
            "valid_until": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400 * 10))})["id"]
        ids = {
            "sterilisers": first("/sterilisers"),
            "cycles": cycles[0]["id"],
            "spore-tests": first("/spore-tests"),
            "air-removal-tests": first("/air-removal-tests"),
            "lots": first("/lots"),
            "credentials": first("/credentials"),
            "checklists": first("/checklists"),
            "clients": first("/clients"),
            "sessions": first("/sessions"),
            "incidents": first("/incidents"),
            "inspectors": grant,
            "exports": export,
            "mail": first("/mail"),
        }
        lines = [
            "[parameters]",
            f'clinic = "{clinic}"',
            f'code = "{pack}"',
            f'user = "{technician}"',
        ]
        for kind, value in ids.items():
            lines += [
                "",
                "[[operations]]",
                f'include-path-regex = "/clinics/\\\\{{clinic\\\\}}/{kind}/\\\\{{id\\\\}}"',
                f'parameters = {{ id = "{value}" }}',
            ]
        config = work / "schemathesis.toml"
        config.write_text("\n".join(lines) + "\n")
        run = subprocess.run([
            schemathesis, "--config-file", str(config), "run", f"{base}/api/openapi.json",
            "--checks", "all",
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", examples,
            "--workers", "2",
            "--request-timeout", "20",
            "--suppress-health-check", "all",
            "--phases", "examples,coverage,fuzzing",
            "--report", "ndjson", "--report-dir", str(work / "report"),
        ])
        print(f"contract run: schemathesis exited {run.returncode}; server log and report in {work}")
        return run.returncode
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
