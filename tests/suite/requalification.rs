//! A laboratory's correction of a spore-test reading, requalification after a failure or a
//! relocation, and England's routine steriliser tests (HTM 01-05), through HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::{assert_problem, TestApp};
use serde_json::{json, Value};

async fn steriliser(app: &TestApp, serial: &str, kind: &str) -> String {
    let res = app
        .post(
            &app.clinic_path("/sterilisers"),
            &app.owner,
            &json!({"make": "W&H", "model": "Lisa 500", "serial_number": serial, "kind": kind,
                    "chamber_litres": 17.0, "location": "Back room"}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A load of `packs` packs; returns the cycle.
async fn load(app: &TestApp, s: &str, n: i64, started: DateTime<Utc>, packs: usize) -> Value {
    let res = app
        .post(&app.clinic_path("/cycles"), &app.technician, &json!({
            "steriliser_id": s, "cycle_number": n,
            "program": {"name": "134 °C", "temperature_c": 134.0, "hold_minutes": 3.5},
            "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(45)).to_rfc3339(),
            "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
            "load_indicator": {"type": 5, "passed": true},
            "packs": (0..packs).map(|i| json!({"contents": format!("grips {i}")})).collect::<Vec<_>>()}))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

/// A spore test in `cycle`, read `result` a day later; returns the test's id.
async fn spore_test(app: &TestApp, s: &str, cycle: &Value, result: &str) -> String {
    let placed: DateTime<Utc> = cycle["started_at"].as_str().unwrap().parse().unwrap();
    let res = app
        .post(&app.clinic_path("/spore-tests"), &app.technician, &json!({
            "steriliser_id": s, "cycle_id": cycle["id"], "bi_product": "Attest 1292", "bi_lot": "L1",
            "placed_at": placed.to_rfc3339(), "incubation": {"kind": "in_house", "hours": 24}}))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post(
            &app.clinic_path(&format!("/spore-tests/{id}/result")),
            &app.technician,
            &json!({"result": result, "control_result": "growth",
                    "read_at": (placed + Duration::hours(24)).to_rfc3339()}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    id
}

/// Moves steriliser `s` to the decon room, dated back to `at` so that the loads after it can
/// lie in the past.
async fn relocate(app: &TestApp, s: &str, at: DateTime<Utc>) {
    use diesel::connection::SimpleConnection;
    let moved = app
        .post(
            &app.clinic_path(&format!("/sterilisers/{s}/amendments")),
            &app.owner,
            &json!({"reason": "moved to the new room", "changes": {"location": "Decon room"}}),
        )
        .await;
    assert_eq!(moved.status(), 201, "{}", moved.text().await.unwrap());
    let moved_at = at.format("%Y-%m-%d %H:%M:%S");
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE sterilisers SET recorded_at = '{moved_at}' WHERE id = '{s}' AND version = 2"
        ))
        .unwrap();
}

fn code(cycle: &Value, i: usize) -> String {
    cycle["packs"][i]["code"].as_str().unwrap().to_owned()
}

async fn pack(app: &TestApp, code: &str) -> Value {
    app.get(&app.clinic_path(&format!("/packs/{code}")), &app.technician)
        .await
        .json()
        .await
        .unwrap()
}

async fn in_service(app: &TestApp, s: &str) -> bool {
    let v: Value = app
        .get(&app.clinic_path(&format!("/sterilisers/{s}")), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    v["in_service"].as_bool().unwrap()
}

async fn findings(app: &TestApp, at: Option<DateTime<Utc>>) -> Vec<(String, String, String)> {
    let path = match at {
        Some(t) => format!("/compliance?at={}", urlencode(&t.to_rfc3339())),
        None => "/compliance".into(),
    };
    let v: Value = app
        .get(&app.clinic_path(&path), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    v["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn correct(app: &TestApp, test: &str, body: &Value) -> reqwest::Response {
    app.post(
        &app.clinic_path(&format!("/spore-tests/{test}/result/corrections")),
        &app.technician,
        body,
    )
    .await
}

/// A laboratory corrects a negative to positive: the steriliser is quarantined from then with
/// its look-back, as for a new positive, while the records as they stood before still read
/// released. Corrected back to negative, nothing is lifted until an owner returns the
/// steriliser to service. Every reading stays.
#[actix_web::test]
async fn a_laboratory_correction_quarantines_and_only_an_owner_lifts_it() {
    let app = TestApp::spawn().await;
    // Gravity: no air-removal test, so the spore tests alone decide.
    let s = steriliser(&app, "SN-C", "gravity").await;
    let t0 = Utc::now() - Duration::days(4);
    let c1 = load(&app, &s, 1, t0, 0).await;
    spore_test(&app, &s, &c1, "negative").await;
    let c2 = load(&app, &s, 2, t0 + Duration::hours(25), 2).await;
    let c3 = load(&app, &s, 3, t0 + Duration::hours(26), 1).await;
    let bi3 = spore_test(&app, &s, &c3, "negative").await;
    assert_eq!(pack(&app, &code(&c2, 0)).await["state"], "released");

    // Bad corrections change nothing, and say every problem at once.
    let empty = correct(
        &app,
        &bi3,
        &json!({"result": "positive", "control_result": "growth",
        "read_at": (t0 + Duration::hours(60)).to_rfc3339(), "lab_reference": " ", "reason": ""}),
    )
    .await;
    let problem = assert_problem(empty, 422, Some("lab_reference")).await;
    assert!(
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "reason"),
        "{problem}"
    );
    let same = correct(
        &app,
        &bi3,
        &json!({"result": "negative", "control_result": "growth",
        "read_at": (t0 + Duration::hours(50)).to_rfc3339(), "lab_reference": "", "reason": "x"}),
    )
    .await;
    assert_problem(same, 422, Some("lab_reference")).await;
    let c4 = load(&app, &s, 4, t0 + Duration::hours(27), 0).await;
    let unread = app
        .post(&app.clinic_path("/spore-tests"), &app.technician, &json!({
            "steriliser_id": s, "cycle_id": c4["id"], "bi_product": "Attest 1292", "bi_lot": "L1",
            "placed_at": (t0 + Duration::hours(27)).to_rfc3339(), "incubation": {"kind": "in_house", "hours": 24}}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let no_result = correct(
        &app,
        unread["id"].as_str().unwrap(),
        &json!({"result": "positive",
        "control_result": "growth", "read_at": (t0 + Duration::hours(60)).to_rfc3339(),
        "lab_reference": "LAB-9", "reason": "r"}),
    )
    .await;
    assert_problem(no_result, 409, None).await;
    assert!(in_service(&app, &s).await);

    let before = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let res = correct(
        &app,
        &bi3,
        &json!({"result": "positive", "control_result": "growth",
        "read_at": (t0 + Duration::hours(60)).to_rfc3339(), "lab_reference": "LAB-2026-0412",
        "reason": "the laboratory re-read the vial: growth was missed on the first reading"}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let test: Value = res.json().await.unwrap();
    assert_eq!(test["outcome"], "positive");
    assert_eq!(test["result"]["version"], 2);
    assert_eq!(test["result_history"].as_array().unwrap().len(), 2);
    assert!(
        !in_service(&app, &s).await,
        "quarantined from the correction"
    );
    for c in [&c2, &c3] {
        let p = pack(&app, &code(c, 0)).await;
        assert_eq!(p["state"], "quarantined", "{p}");
    }
    let now = findings(&app, None).await;
    assert!(now.contains(&(
        "failed_spore_test".into(),
        "blocker".into(),
        format!("pack:{}", code(&c2, 0))
    )));
    // As the records stood before the correction, those packs were released.
    let then = findings(&app, Some(before)).await;
    assert!(
        !then.iter().any(|f| f.2 == format!("pack:{}", code(&c2, 0))),
        "{then:?}"
    );

    // The laboratory withdraws its correction: the quarantine stays until an owner lifts it.
    let res = correct(
        &app,
        &bi3,
        &json!({"result": "negative", "control_result": "growth",
        "read_at": (t0 + Duration::hours(62)).to_rfc3339(), "lab_reference": "LAB-2026-0412-R",
        "reason": "the re-read vial was from another clinic's batch"}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    assert!(!in_service(&app, &s).await);
    assert_eq!(pack(&app, &code(&c2, 0)).await["state"], "quarantined");
    let technician = app
        .post(
            &app.clinic_path(&format!("/sterilisers/{s}/return-to-service")),
            &app.technician,
            &json!({"reason": "the lab says it was negative"}),
        )
        .await;
    assert_eq!(technician.status(), 403);
    let owner = app
        .post(
            &app.clinic_path(&format!("/sterilisers/{s}/return-to-service")),
            &app.owner,
            &json!({"reason": "laboratory's corrected report LAB-2026-0412-R reads negative"}),
        )
        .await;
    assert_eq!(owner.status(), 200, "{}", owner.text().await.unwrap());
    assert_eq!(pack(&app, &code(&c2, 0)).await["state"], "released");

    // Every reading stays, and each correction is in the audit chain with its reason.
    let test: Value = app
        .get(&app.clinic_path(&format!("/spore-tests/{bi3}")), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let readings: Vec<&str> = test["result_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(readings, ["negative", "positive", "negative"]);
    let corrected = app
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e["action"] == "spore_test.result_corrected")
        .count();
    assert_eq!(corrected, 2);
}

/// Another clinic's owner cannot correct this clinic's reading.
#[actix_web::test]
async fn another_clinic_cannot_correct_a_reading() {
    let app = TestApp::spawn().await;
    let s = steriliser(&app, "SN-X", "gravity").await;
    let c1 = load(&app, &s, 1, Utc::now() - Duration::days(2), 0).await;
    let bi = spore_test(&app, &s, &c1, "negative").await;
    let res = app
        .post(
            &format!(
                "/api/v1/clinics/{}/spore-tests/{bi}/result/corrections",
                app.other_clinic_id
            ),
            &app.other_owner,
            &json!({"result": "positive", "control_result": "growth",
                    "read_at": Utc::now().to_rfc3339(), "lab_reference": "L", "reason": "r"}),
        )
        .await;
    assert_eq!(res.status(), 404);
    assert!(in_service(&app, &s).await);
}

/// After a relocation, loads are held until three consecutive empty-chamber spore tests pass
/// (CDC 2008, AAMI ST79, the baseline); a test in a load that carried packs does not count.
#[actix_web::test]
async fn a_relocated_steriliser_is_requalified_by_three_empty_chamber_tests() {
    let app = TestApp::spawn().await;
    let s = steriliser(&app, "SN-R", "gravity").await;
    let t0 = Utc::now() - Duration::days(5);
    let c1 = load(&app, &s, 1, t0, 0).await;
    spore_test(&app, &s, &c1, "negative").await;
    relocate(&app, &s, t0 + Duration::hours(2)).await;
    // Loads run after the move: one carries packs and its own (passing) spore test.
    let loaded = load(&app, &s, 2, t0 + Duration::hours(3), 1).await;
    spore_test(&app, &s, &loaded, "negative").await;
    let held = pack(&app, &code(&loaded, 0)).await;
    assert_eq!(held["state"], "pending", "{held}");
    assert!(
        held["state_reason"]
            .as_str()
            .unwrap()
            .contains("3 consecutive spore tests in an empty chamber"),
        "{held}"
    );
    for n in 3..=4 {
        let empty = load(&app, &s, n, t0 + Duration::hours(n + 1), 0).await;
        spore_test(&app, &s, &empty, "negative").await;
    }
    assert_eq!(pack(&app, &code(&loaded, 0)).await["state"], "pending");
    let f = findings(&app, None).await;
    assert!(
        f.contains(&(
            "spore_test_after_event".into(),
            "blocker".into(),
            format!("steriliser:{s}")
        )),
        "{f:?}"
    );
    let third = load(&app, &s, 5, t0 + Duration::hours(6), 0).await;
    spore_test(&app, &s, &third, "negative").await;
    assert_eq!(pack(&app, &code(&loaded, 0)).await["state"], "released");
    assert!(!findings(&app, None)
        .await
        .iter()
        .any(|f| f.0 == "spore_test_after_event"));
}

/// A steriliser's older record still counts for today's loads: a relocation half a year ago,
/// requalified then by three empty-chamber tests, does not hold today's packs because the only
/// recent test rode with packs; and a steriliser whose only passing test is five months old is
/// overdue, not "never tested".
#[actix_web::test]
async fn a_requalification_or_a_passing_test_from_months_ago_still_counts() {
    let app = TestApp::spawn().await;
    let s = steriliser(&app, "SN-OLD", "gravity").await;
    let t0 = Utc::now() - Duration::days(200);
    let first = load(&app, &s, 1, t0, 0).await;
    spore_test(&app, &s, &first, "negative").await;
    relocate(&app, &s, t0 + Duration::hours(2)).await;
    for n in 2..=4 {
        let empty = load(&app, &s, n, t0 + Duration::hours(n + 1), 0).await;
        spore_test(&app, &s, &empty, "negative").await;
    }
    // Since then, a test only in a load that carried packs: it passes the weekly interval but
    // could not requalify the steriliser on its own.
    let recent = load(&app, &s, 5, Utc::now() - Duration::days(2), 1).await;
    spore_test(&app, &s, &recent, "negative").await;
    let today = load(&app, &s, 6, Utc::now() - Duration::hours(2), 1).await;
    let p = pack(&app, &code(&today, 0)).await;
    assert_eq!(p["state"], "released", "{p}");
    assert!(!findings(&app, None)
        .await
        .iter()
        .any(|f| f.0 == "spore_test_after_event"));

    let lapsed = steriliser(&app, "SN-LAPSED", "gravity").await;
    let long_ago = load(&app, &lapsed, 1, Utc::now() - Duration::days(150), 0).await;
    spore_test(&app, &lapsed, &long_ago, "negative").await;
    let now_load = load(&app, &lapsed, 2, Utc::now() - Duration::hours(1), 1).await;
    let p = pack(&app, &code(&now_load, 0)).await;
    assert_ne!(p["state"], "released", "{p}");
    let reason = p["state_reason"].as_str().unwrap();
    assert!(reason.contains("overdue"), "{p}");
    assert!(!reason.contains("no passing spore test"), "{p}");
}

/// England (HTM 01-05): a load run before the day's automatic control test, or without an
/// air-leakage test in the week before it, is quarantined and a blocker; with both it is
/// released. A gravity steriliser takes the automatic control test but no air-leakage test.
#[actix_web::test]
async fn england_needs_the_daily_automatic_control_and_weekly_air_leakage_tests() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE clinics SET jurisdiction = 'gb-eng' WHERE id = '{}'",
            app.clinic_id
        ))
        .unwrap();
    let s = steriliser(&app, "SN-E", "pre_vacuum").await;
    let g = steriliser(&app, "SN-G", "gravity").await;
    let routine = |sid: &str, kind: &str, at: DateTime<Utc>| json!({"steriliser_id": sid, "performed_at": at.to_rfc3339(), "test_type": kind, "passed": true});
    let london = |t: DateTime<Utc>| t.with_timezone(&chrono_tz::Europe::London).date_naive();
    // Every load of this test on one London day, all in the past.
    let mut first = common::load_time_hours_ago(4);
    while london(first - Duration::minutes(10)) != london(first + Duration::minutes(150)) {
        first -= Duration::hours(1);
    }
    let ok = app
        .post(
            &app.clinic_path("/air-removal-tests"),
            &app.technician,
            &routine(&s, "bowie_dick", first - Duration::minutes(5)),
        )
        .await;
    assert_eq!(ok.status(), 201, "{}", ok.text().await.unwrap());
    let untested = load(&app, &s, 1, first, 1).await;
    let p = pack(&app, &code(&untested, 0)).await;
    assert_eq!(p["state"], "quarantined", "{p}");
    assert!(
        p["state_reason"]
            .as_str()
            .unwrap()
            .contains("automatic control test"),
        "{p}"
    );
    let f = findings(&app, None).await;
    // The steriliser itself is a finding while that load is today's (the clinic's day).
    if london(first) == london(Utc::now()) {
        assert!(
            f.contains(&(
                "daily_automatic_control".into(),
                "blocker".into(),
                format!("steriliser:{s}")
            )),
            "{f:?}"
        );
    }
    assert!(f.contains(&(
        "daily_automatic_control".into(),
        "blocker".into(),
        format!("pack:{}", code(&untested, 0))
    )));

    // The automatic control test alone is not enough for a vacuum steriliser: it also needs
    // the week's air-leakage test.
    let second = first + Duration::minutes(50);
    for kind in ["automatic_control"] {
        let res = app
            .post(
                &app.clinic_path("/air-removal-tests"),
                &app.technician,
                &routine(&s, kind, second - Duration::minutes(2)),
            )
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    let no_leak_test = load(&app, &s, 2, second, 1).await;
    let p = pack(&app, &code(&no_leak_test, 0)).await;
    assert_eq!(p["state"], "quarantined", "{p}");
    assert!(
        p["state_reason"].as_str().unwrap().contains("air-leakage"),
        "{p}"
    );
    let res = app
        .post(
            &app.clinic_path("/air-removal-tests"),
            &app.technician,
            &routine(&s, "air_leakage", second + Duration::minutes(50)),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let tested = load(&app, &s, 3, second + Duration::minutes(55), 1).await;
    let p = pack(&app, &code(&tested, 0)).await;
    assert_eq!(p["state"], "released", "{p}");
    // The earlier loads stay quarantined: a later test does not reach back.
    assert_eq!(
        pack(&app, &code(&untested, 0)).await["state"],
        "quarantined"
    );

    // Gravity: the automatic control test is taken, an air-leakage test is refused.
    let res = app
        .post(
            &app.clinic_path("/air-removal-tests"),
            &app.technician,
            &routine(&g, "automatic_control", first),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = app
        .post(
            &app.clinic_path("/air-removal-tests"),
            &app.technician,
            &routine(&g, "air_leakage", first),
        )
        .await;
    assert_problem(res, 422, Some("steriliser_id")).await;
    let gravity_load = load(&app, &g, 1, first + Duration::minutes(5), 1).await;
    assert_eq!(
        pack(&app, &code(&gravity_load, 0)).await["state"],
        "released"
    );
}
