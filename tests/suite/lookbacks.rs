//! Look-back: what a failed spore test, a load, a recalled lot or a steriliser's span reaches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::{assert_problem, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

async fn cycle(
    app: &TestApp,
    steriliser: &str,
    number: i64,
    started: DateTime<Utc>,
    packs: usize,
) -> Value {
    ok(app
        .post(&app.clinic_path("/cycles"), &app.owner, &json!({
            "steriliser_id": steriliser, "cycle_number": number,
            "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
            "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(40)).to_rfc3339(),
            "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
            "load_indicator": {"type": 5, "passed": true},
            "packs": (0..packs).map(|i| json!({"contents": format!("set {i}")})).collect::<Vec<_>>()}))
        .await)
    .await
}

async fn spore(
    app: &TestApp,
    steriliser: &str,
    cycle: &Value,
    result: &str,
    read: DateTime<Utc>,
) -> String {
    let t = ok(app
        .post(&app.clinic_path("/spore-tests"), &app.owner, &json!({"steriliser_id": steriliser, "cycle_id": cycle["id"], "bi_product": "Attest", "bi_lot": "B", "placed_at": cycle["started_at"], "incubation": {"kind": "in_house", "hours": 24}}))
        .await)
    .await;
    let id = t["id"].as_str().unwrap().to_owned();
    ok(app
        .post(
            &app.clinic_path(&format!("/spore-tests/{id}/result")),
            &app.owner,
            &json!({"result": result, "control_result": "growth", "read_at": read.to_rfc3339()}),
        )
        .await)
    .await;
    id
}

/// A steriliser of `kind` with three loads from three days ago: the first carries a spore test
/// that read negative, the second two packs, the third one pack (and the failed test, later).
async fn three_loads(app: &TestApp, kind: &str) -> (String, DateTime<Utc>, [Value; 3]) {
    let s = ok(app
        .post(
            &app.clinic_path("/sterilisers"),
            &app.owner,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "S1", "kind": kind}),
        )
        .await)
    .await;
    let s = s["id"].as_str().unwrap().to_owned();
    let t0 = Utc::now() - Duration::days(3);
    let c1 = cycle(app, &s, 1, t0, 1).await;
    spore(app, &s, &c1, "negative", t0 + Duration::hours(24)).await;
    let c2 = cycle(app, &s, 2, t0 + Duration::hours(25), 2).await;
    let c3 = cycle(app, &s, 3, t0 + Duration::hours(26), 1).await;
    (s, t0, [c1, c2, c3])
}

fn codes(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["code"]
                .as_str()
                .or(p["session_id"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[actix_web::test]
async fn a_failed_spore_test_reaches_back_to_the_last_negative_and_names_the_clients() {
    let app = TestApp::spawn().await;
    let (s, t0, [c1, c2, c3]) = three_loads(&app, "pre_vacuum").await;
    let lot = ok(app.post(&app.clinic_path("/lots"), &app.owner, &json!({"kind": "pigment", "manufacturer": "Scalp Aesthetics", "product_name": "Scalpaink SC", "lot_number": "SC-18", "expiry_date": (Utc::now() + Duration::days(200)).date_naive().to_string(), "sterilisation_method": "gamma", "received_on": (Utc::now() - Duration::days(10)).date_naive().to_string(), "quantity_received": 5})).await).await;
    let lot = lot["id"].as_str().unwrap().to_owned();

    // A client session used one pack of load 2 and the pigment lot.
    let client = ok(app.post(&app.clinic_path("/clients"), &app.owner, &json!({"name": "Alex Client", "contact": "+44 7700 900123", "date_of_birth": "1990-04-02"})).await).await;
    let session = ok(app.post(&app.clinic_path("/sessions"), &app.owner, &json!({"client_id": client["id"], "technician_id": app.technician.user_id, "station": "2", "procedure": "SMP", "planned_at": (t0 + Duration::hours(27)).to_rfc3339()})).await).await;
    let session_id = session["id"].as_str().unwrap().to_owned();
    let used = c2["packs"][0]["code"].as_str().unwrap();
    ok(app
        .post(
            &app.clinic_path(&format!("/sessions/{session_id}/packs")),
            &app.owner,
            &json!({"code": used}),
        )
        .await)
    .await;
    ok(app
        .post(
            &app.clinic_path(&format!("/sessions/{session_id}/lots")),
            &app.owner,
            &json!({"lot_id": lot}),
        )
        .await)
    .await;

    let failed = spore(&app, &s, &c3, "positive", t0 + Duration::hours(50)).await;
    let l = ok(app
        .get(
            &app.clinic_path(&format!("/lookbacks?spore_test={failed}")),
            &app.inspector,
        )
        .await)
    .await;
    let mut expected: Vec<String> = codes(&c2, "packs");
    expected.extend(codes(&c3, "packs"));
    let mut reached = codes(&l, "packs");
    reached.sort();
    expected.sort();
    assert_eq!(
        reached, expected,
        "every pack after the last negative test, none before"
    );
    assert_eq!(l["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(l["sessions"][0]["session_id"], session_id.as_str());
    assert_eq!(l["sessions"][0]["via"], used);
    // The inspector reads the client by pseudonymous id; the owner, who must notify them, reads
    // the contact too.
    assert_eq!(l["sessions"][0]["client_id"], client["id"]);
    assert!(l["sessions"][0]["client_contact"].is_null(), "{l}");
    assert!(l["sessions"][0]["client_name"].is_null(), "{l}");
    let owners = ok(app
        .get(
            &app.clinic_path(&format!("/lookbacks?spore_test={failed}")),
            &app.owner,
        )
        .await)
    .await;
    assert_eq!(owners["sessions"][0]["client_contact"], "+44 7700 900123");
    assert_eq!(owners["sessions"][0]["client_name"], "Alex Client");

    let csv = app
        .get(
            &app.clinic_path(&format!("/lookbacks?spore_test={failed}&format=csv")),
            &app.owner,
        )
        .await;
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("session_id,planned_at,"));
    assert!(
        csv.contains(&session_id) && csv.contains("'+44 7700 900123"),
        "formula-safe: {csv}"
    );

    // The failure recorded what it reached in the audit chain.
    let events = app.audit_events().await;
    let recorded = events
        .iter()
        .find(|e| e["action"] == "lookback.recorded")
        .unwrap();
    assert_eq!(recorded["payload"]["session_ids"], json!([session_id]));

    // A recall reaches the sessions that used the lot, and is recorded too.
    ok(app
        .post(
            &app.clinic_path(&format!("/lots/{lot}/recall")),
            &app.owner,
            &json!({"reason": "FDA advisory", "reference": "2019 Scalpaink"}),
        )
        .await)
    .await;
    let by_lot = ok(app
        .get(
            &app.clinic_path(&format!("/lookbacks?lot={lot}")),
            &app.owner,
        )
        .await)
    .await;
    assert_eq!(by_lot["sessions"][0]["via"], lot.as_str());
    assert_eq!(
        app.audit_events()
            .await
            .iter()
            .filter(|e| e["action"] == "lookback.recorded")
            .count(),
        2
    );

    // A single load, and a steriliser's span.
    let by_cycle = ok(app
        .get(
            &app.clinic_path(&format!("/lookbacks?cycle={}", c1["id"].as_str().unwrap())),
            &app.owner,
        )
        .await)
    .await;
    assert_eq!(codes(&by_cycle, "packs"), codes(&c1, "packs"));
    let from = (t0 + Duration::minutes(30))
        .to_rfc3339()
        .replace('+', "%2B");
    let to = (t0 + Duration::minutes(25 * 60 + 30))
        .to_rfc3339()
        .replace('+', "%2B");
    let span = ok(app
        .get(
            &app.clinic_path(&format!("/lookbacks?steriliser={s}&from={from}&to={to}")),
            &app.owner,
        )
        .await)
    .await;
    assert_eq!(codes(&span, "packs"), codes(&c2, "packs"));
}

#[actix_web::test]
async fn bad_lookback_requests_are_refused() {
    let app = TestApp::spawn().await;
    let other = ok(app
        .post(
            &format!("/api/v1/clinics/{}/sterilisers", app.other_clinic_id),
            &app.other_owner,
            &json!({"make": "X", "model": "Y", "serial_number": "O", "kind": "gravity"}),
        )
        .await)
    .await;
    let other = other["id"].as_str().unwrap();
    assert_problem(
        app.get(&app.clinic_path("/lookbacks"), &app.owner).await,
        422,
        Some("spore_test"),
    )
    .await;
    assert_problem(
        app.get(&app.clinic_path("/lookbacks?cycle=a&lot=b"), &app.owner)
            .await,
        422,
        None,
    )
    .await;
    assert_problem(
        app.get(
            &app.clinic_path("/lookbacks?lot=x&from=2026-01-01T00:00:00Z"),
            &app.owner,
        )
        .await,
        422,
        Some("from"),
    )
    .await;
    assert_problem(
        app.get(
            &app.clinic_path("/lookbacks?steriliser=x&from=yesterday"),
            &app.owner,
        )
        .await,
        422,
        None,
    )
    .await;
    let unknown = assert_problem(
        app.get(&app.clinic_path("/lookbacks?steriliser=nope"), &app.owner)
            .await,
        404,
        Some("steriliser"),
    )
    .await;
    let foreign = assert_problem(
        app.get(
            &app.clinic_path(&format!("/lookbacks?steriliser={other}")),
            &app.owner,
        )
        .await,
        404,
        Some("steriliser"),
    )
    .await;
    assert_eq!(unknown, foreign);
    for trigger in ["spore_test", "cycle", "lot"] {
        assert_problem(
            app.get(
                &app.clinic_path(&format!("/lookbacks?{trigger}=nope")),
                &app.owner,
            )
            .await,
            404,
            Some(trigger),
        )
        .await;
    }
    common::assert_foreign_looks_missing(
        &app,
        &[(Method::GET, "/lookbacks?lot=x".to_owned(), Value::Null)],
    )
    .await;
}

/// Reads one CSV of an export zip into rows of named cells.
fn csv_rows(zip: &[u8], name: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let file = archive.by_name(name).unwrap();
    let mut reader = csv::Reader::from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// An inspector rebuilds a failed spore test's look-back from the export's CSVs alone, without
/// reading audit payloads, and reaches the same clients as the service's own look-back.
#[actix_web::test]
async fn a_failed_spore_tests_look_back_is_rebuilt_from_the_exports_csvs() {
    let app = TestApp::spawn().await;
    let (s, t0, [c1, c2, c3]) = three_loads(&app, "gravity").await;
    // Three clients: two used packs of the suspect loads, one a pack from before.
    let mut sessions = Vec::new();
    for (i, pack) in [
        c2["packs"][0]["code"].clone(),
        c3["packs"][0]["code"].clone(),
        c1["packs"][0]["code"].clone(),
    ]
    .iter()
    .enumerate()
    {
        let client = ok(app.post(&app.clinic_path("/clients"), &app.owner, &json!({"name": format!("Client {i}"), "contact": "x", "date_of_birth": "1990-04-02"})).await).await;
        let session = ok(app.post(&app.clinic_path("/sessions"), &app.owner, &json!({"client_id": client["id"], "technician_id": app.technician.user_id, "station": "2", "procedure": "SMP", "planned_at": (t0 + Duration::hours(27 + i as i64)).to_rfc3339()})).await).await;
        ok(app
            .post(
                &app.clinic_path(&format!(
                    "/sessions/{}/packs",
                    session["id"].as_str().unwrap()
                )),
                &app.owner,
                &json!({"code": pack}),
            )
            .await)
        .await;
        sessions.push(session);
    }
    let failed = spore(&app, &s, &c3, "positive", t0 + Duration::hours(50)).await;
    let service = ok(app
        .get(
            &app.clinic_path(&format!("/lookbacks?spore_test={failed}")),
            &app.inspector,
        )
        .await)
    .await;
    let mut expected: Vec<String> = service["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["client_id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 2, "{service}");

    // The export of the period.
    let requested = ok(app
        .post(
            &app.clinic_path("/exports"),
            &app.owner,
            &json!({"from": (t0 - Duration::hours(1)).to_rfc3339(), "to": (Utc::now() + Duration::minutes(1)).to_rfc3339()}),
        )
        .await)
    .await;
    let id = requested["id"].as_str().unwrap().to_owned();
    let mut state = Value::Null;
    for _ in 0..200 {
        state = ok(app
            .get(&app.clinic_path(&format!("/exports/{id}")), &app.inspector)
            .await)
        .await;
        if state["state"] != "building" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "ready", "{state}");
    let zip = app
        .get(
            &app.clinic_path(&format!("/exports/{id}/download")),
            &app.inspector,
        )
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();

    // From the CSVs alone: the failed test's steriliser and load, its last negative before and
    // the loads between, their packs, the sessions that opened them, and their clients.
    let tests = csv_rows(&zip, "spore_tests.csv");
    let cycles = csv_rows(&zip, "cycles.csv");
    let started = |cycle_id: &str| {
        cycles
            .iter()
            .find(|c| c["id"] == cycle_id)
            .map(|c| c["started_at"].clone())
            .unwrap()
    };
    let bad = tests.iter().find(|t| t["id"] == failed).unwrap();
    assert_eq!(bad["result"], "positive");
    let failed_start = started(&bad["cycle_id"]);
    let last_negative = tests
        .iter()
        .filter(|t| t["steriliser_id"] == bad["steriliser_id"])
        .filter(|t| t["result"] == "negative" && t["control_result"] == "growth")
        .map(|t| started(&t["cycle_id"]))
        .filter(|at| *at < failed_start)
        .max()
        .unwrap_or_default();
    let suspect: Vec<String> = cycles
        .iter()
        .filter(|c| c["steriliser_id"] == bad["steriliser_id"])
        .filter(|c| c["started_at"] > last_negative && c["started_at"] <= failed_start)
        .map(|c| c["id"].clone())
        .collect();
    let packs: Vec<String> = csv_rows(&zip, "packs.csv")
        .into_iter()
        .filter(|p| suspect.contains(&p["cycle_id"]))
        .map(|p| p["code"].clone())
        .collect();
    let opened: Vec<String> = csv_rows(&zip, "session_packs.csv")
        .into_iter()
        .filter(|x| packs.contains(&x["pack_code"]))
        .map(|x| x["session_id"].clone())
        .collect();
    let mut clients: Vec<String> = csv_rows(&zip, "sessions.csv")
        .into_iter()
        .filter(|x| opened.contains(&x["id"]))
        .map(|x| x["client_id"].clone())
        .collect();
    clients.sort();
    assert_eq!(clients, expected, "the CSVs reach the same clients");
    // And the reading's record says when and by whom it was recorded.
    assert!(!bad["result_recorded_at"].is_empty() && !bad["result_recorded_by"].is_empty());
    // The report an inspector reads, as their PDF reader shows it (pdftotext, poppler-utils).
    let report = common::report_text(&zip);
    for expected in [
        // The failure's timeline, in order.
        "read positive",
        "steriliser quarantined",
        "look-back reached 2 loads, 3 packs and 2 sessions",
        "no passing retest yet",
        "still out of service",
        // The register says when it went out, and why.
        "quarantined",
        "(positive spore test)",
        // Sessions by month; an empty section says so; counts read as words.
        "Client sessions",
        "No incidents in this period.",
        "3 loads in the period typed in",
        // The last page sends the reader to the plain-language guide.
        "VERIFY.txt",
    ] {
        assert!(
            report.contains(expected),
            "{expected:?} in the report: {report}"
        );
    }
    for wrong in ["1 notes", "1 warnings", "1 blockers", "1 loads"] {
        assert!(!report.contains(wrong), "{wrong:?} in the report");
    }
    // The loads' outcomes and the packs' states are the service's own judgement.
    let outcome = |id: &Value| {
        cycles
            .iter()
            .find(|c| c["id"] == id.as_str().unwrap())
            .map(|c| c["outcome"].clone())
            .unwrap()
    };
    assert_eq!(outcome(&c3["id"]), "fail", "its spore test read positive");
    assert_eq!(outcome(&c1["id"]), "pass");
    for p in csv_rows(&zip, "packs.csv") {
        let service = ok(app
            .get(
                &app.clinic_path(&format!("/packs/{}", p["code"])),
                &app.owner,
            )
            .await)
        .await;
        assert_eq!(p["state"], service["state"].as_str().unwrap(), "{p:?}");
        assert!(!p["expires_at"].is_empty(), "{p:?}");
    }
}
