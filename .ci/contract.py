#!/usr/bin/env python3
"""The API contract, checked from outside: Schemathesis against the real binary.

Starts `aseptic` over a fresh SQLite file holding a month of the demo clinic, signs in as its
owner, gives every path parameter a real id of that clinic, and runs Schemathesis with all of its
checks on `/api/openapi.json`. Exits with Schemathesis's status.

    python3 .ci/contract.py target/debug/aseptic <schemathesis executable> [max examples]

Where JSON Schema cannot say a rule (one field against another, against the records, or against
a secret), the operation is listed in RULES_BEYOND_THE_SCHEMA with the rule, and a 422 from it
counts as a refusal in words rather than a contract break. Every other operation must accept
every request its schema allows.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# Each operation whose schema-valid requests may still be refused, with the rule that refuses.
RULES_BEYOND_THE_SCHEMA = {
    "list_events": "`to` must be after `from`",
    "list_cycles": "`to` must be after `from`; `at` is not in the future",
    "list_spore_tests": "`to` must be after `from`; `at` is not in the future",
    "list_air_removal_tests": "`to` must be after `from`; `at` is not in the future",
    "list_lots": "`to` must be after `from`; `at` is not in the future",
    "list_credentials": "`at` is not in the future",
    "list_incidents": "`at` is not in the future",
    "compliance_now": "`at` is neither in the future nor before the clinic was registered",
    "readiness": "`at` is neither in the future nor before the clinic was registered",
    "lookbacks": "name exactly one of spore_test, cycle, lot or steriliser (with from and to)",
    "accept_invitation": "the token must be one the clinic mailed, unused and unexpired",
    "change_password": "the current password must be right",
    "create_cycle": "the peak pressure must be saturated steam's at the peak temperature (±10 %), "
    "the load must finish after it starts and hold no longer than it ran, and not in the future",
    "submit_credential": "which fields apply depends on the kind of credential",
    "request_export": "the period is given one way: a month, a week, two days, or from and to",
    "add_follow_up": "a follow-up is done after its incident",
    "correct_spore_result": "a reading comes after the test was placed",
    "put_settings": "a weekly summary's day is 1 to 7, a monthly one's 1 to 28",
    "parse_barcode": "GS1 syntax: known application identifiers and their lengths",
    "answer_checklist": "each answer must suit its checklist item (a tick, a number, a text)",
    "amend_steriliser": "changes name fields of the record, and the corrected record passes its rules",
    "amend_cycle": "changes name fields of the record, and the corrected record passes its rules",
    "amend_spore_test": "changes name fields of the record, and the corrected record passes its rules",
    "amend_air_removal_test": "changes name fields of the record, and the corrected record passes its rules",
    "amend_lot": "changes name fields of the record, and the corrected record passes its rules",
    "amend_credential": "changes name fields of the record, and the corrected record passes its rules",
    "amend_template": "changes name fields of the record, and the corrected record passes its rules",
    "amend_client": "changes name fields of the record, and the corrected record passes its rules",
    "amend_incident": "changes name fields of the record, and the corrected record passes its rules",
    "grant": "access ends in the future, after it begins",
    "send_export": "the recipient is a running inspector or an address in the mail settings",
    "create_air_removal_test": "air-removal tests apply to pre-vacuum sterilisers",
    "create_spore_test": "the load is one of that steriliser's, and the test is placed in it",
    "create_client": "a plausible date of birth: not in the future, not 120 years back",
    "receive_lot": "received by today, expiring after receipt; one lot number per product",
    "create_steriliser": "one serial number per steriliser in the clinic",
    "report_incident": "each person named one way; a sharps injury has its sharps log",
    "create_session": "the client and technician are the clinic's; the checklist is current",
    "create_template": "item keys are unique within the checklist",
    "add_member": "an address already a member is told so",
    "list_imported_cycles": "`to` must be after `from`; `at` is not in the future",
    "import_cycles": "the upload holds at least one file, and something in it is a cycle record "
    "of a known format (or of the steriliser's saved CSV mapping)",
    "save_csv_mapping": "each column is named (not blank) or given as #1, #2…; the time format "
    "reads a date and a time; the units are among those listed",
}

# A creating request may carry an Idempotency-Key; a key seen before with another body is refused
# with 422, as the key's draft standard asks. The fuzzer draws keys from a small space, so on
# these operations a 422 can be that refusal (.ci/contract_hooks.py draws fresh keys where the
# hooks reach). They are read from the document: every operation that takes the header.
KEY_REUSE = "an Idempotency-Key used before with another body is refused"



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
    # Absolute: Schemathesis runs in the run's own directory.
    binary, schemathesis = (os.path.abspath(shutil.which(a) or a) for a in sys.argv[1:3])
    examples = sys.argv[3] if len(sys.argv) > 3 else "10"
    # A fixed seed keeps CI's run the same from one commit to the next; CONTRACT_SEED explores.
    seed = os.environ.get("CONTRACT_SEED", "20261201")
    work = Path(tempfile.mkdtemp(prefix="aseptic-contract-"))
    # On PostgreSQL when CONTRACT_PG_ADMIN names a server to create a database on; SQLite else.
    admin = os.environ.get("CONTRACT_PG_ADMIN")
    database = f"sqlite://{work}/contract.db"
    pg_name = f"aseptic_contract_{os.getpid()}"
    if admin:
        subprocess.run(["psql", admin, "-qc", f'CREATE DATABASE "{pg_name}"'], check=True)
        database = admin.rsplit("/", 1)[0] + "/" + pg_name
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ASEPTIC_CONFIG_DIR": str(ROOT / "config"),
        "ASEPTIC_ENV": "test",
        "DATABASE_URL": database,
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
        # Rules that relate one field to another, to the records or to a secret: no JSON Schema
        # can say them, so a request the schema allows may still be refused with 422, in words.
        # Every other operation must accept what its schema allows.
        document = call(base, "GET", "/api/openapi.json")
        rules = dict(RULES_BEYOND_THE_SCHEMA)
        for item in document["paths"].values():
            for operation in item.values():
                if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
                    name = operation["operationId"]
                    rules[name] = "; ".join(filter(None, [rules.get(name), KEY_REUSE]))
        for operation, rule in rules.items():
            lines += [
                "",
                "[[operations]]",
                f'include-operation-id = "{operation}"',
                "# " + rule,
                'checks.positive_data_acceptance.expected-statuses = '
                '["2xx", "401", "403", "404", "409", "422", "429"]',
            ]
        config = work / "schemathesis.toml"
        config.write_text("\n".join(lines) + "\n")
        hooks_env = dict(os.environ, SCHEMATHESIS_HOOKS="contract_hooks",
                         PYTHONPATH=str(ROOT / ".ci"))
        run = subprocess.run([
            schemathesis, "--config-file", str(config), "run", f"{base}/api/openapi.json",
            "--checks", "all",
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", examples,
            "--seed", seed,
            "--workers", "2",
            "--request-timeout", "20",
            "--suppress-health-check", "all",
            "--phases", "examples,coverage,fuzzing",
            "--report", "ndjson", "--report-dir", str(work / "report"),
        ], env=hooks_env, cwd=work)  # Schemathesis keeps its cache in the working directory
        if run.returncode == 0:
            print("contract run: no failure")
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"contract run: schemathesis exited {run.returncode}; server log and report in {work}")
        return run.returncode
    finally:
        server.terminate()
        server.wait(timeout=30)
        if admin:
            subprocess.run(["psql", admin, "-qc", f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'],
                           check=False)


if __name__ == "__main__":
    sys.exit(main())
