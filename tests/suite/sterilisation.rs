//! Sterilisers, cycles, packs, spore tests and air-removal tests, through HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::{assert_problem, Actor, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

async fn register(app: &TestApp, serial: &str, kind: &str) -> String {
    let res = app
        .post(
            &app.clinic_path("/sterilisers"),
            &app.owner,
            &json!({"make": "W&H", "model": "Lisa 500", "serial_number": serial, "kind": kind,
                    "chamber_litres": 17.0, "location": "Back room", "installed_on": "2025-03-01"}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn cycle(steriliser: &str, number: i64, started: DateTime<Utc>, packs: usize) -> Value {
    json!({
        "steriliser_id": steriliser,
        "cycle_number": number,
        "program": {"name": "134 °C / 3.5 min pre-vacuum", "temperature_c": 134.0, "hold_minutes": 3.5},
        "started_at": started.to_rfc3339(),
        "finished_at": (started + Duration::minutes(45)).to_rfc3339(),
        "peak_temperature_c": 135.2,
        "peak_pressure_kpa": 315.0,
        "hold_minutes": 4.0,
        "load_indicator": {"type": 5, "passed": true},
        "packs": (0..packs).map(|i| json!({"contents": format!("tube grips set {i}"), "indicator": {"type": 4, "passed": true}})).collect::<Vec<_>>(),
    })
}

async fn record(app: &TestApp, actor: &Actor, body: &Value) -> Value {
    let res = app.post(&app.clinic_path("/cycles"), actor, body).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn pack_state(app: &TestApp, code: &str) -> String {
    let pack: Value = app
        .get(&app.clinic_path(&format!("/packs/{code}")), &app.technician)
        .await
        .json()
        .await
        .unwrap();
    pack["state"].as_str().unwrap().to_owned()
}

async fn place_spore_test(
    app: &TestApp,
    steriliser: &str,
    cycle_id: &str,
    placed: DateTime<Utc>,
) -> String {
    let res = app
        .post(
            &app.clinic_path("/spore-tests"),
            &app.technician,
            &json!({"steriliser_id": steriliser, "cycle_id": cycle_id, "bi_product": "Attest 1292",
                    "bi_lot": "2026-07A", "placed_at": placed.to_rfc3339(),
                    "incubation": {"kind": "in_house", "hours": 24}}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn read_spore_test(
    app: &TestApp,
    id: &str,
    result: &str,
    at: DateTime<Utc>,
) -> reqwest::Response {
    app.post(
        &app.clinic_path(&format!("/spore-tests/{id}/result")),
        &app.technician,
        &json!({"result": result, "control_result": "growth", "read_at": at.to_rfc3339()}),
    )
    .await
}

fn codes(cycle: &Value) -> Vec<String> {
    cycle["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn owners_register_sterilisers_and_technicians_read_them() {
    let app = TestApp::spawn().await;
    let id = register(&app, "SN-001", "pre_vacuum").await;
    let list: Value = app
        .get(&app.clinic_path("/sterilisers"), &app.technician)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["serial_number"], "SN-001");
    assert_eq!(list["items"][0]["in_service"], true);

    let body = json!({"make": "X", "model": "Y", "serial_number": "SN-002", "kind": "gravity"});
    assert_problem(
        app.post(&app.clinic_path("/sterilisers"), &app.technician, &body)
            .await,
        403,
        None,
    )
    .await;
    assert_problem(
        app.post(&app.clinic_path("/sterilisers"), &app.inspector, &body)
            .await,
        403,
        None,
    )
    .await;
    let dup = json!({"make": "X", "model": "Y", "serial_number": " SN-001 ", "kind": "gravity"});
    assert_problem(
        app.post(&app.clinic_path("/sterilisers"), &app.owner, &dup)
            .await,
        409,
        None,
    )
    .await;
    let bad = json!({"make": " ", "model": "Y", "serial_number": "SN-3", "kind": "gravity", "chamber_litres": -1});
    let problem = assert_problem(
        app.post(&app.clinic_path("/sterilisers"), &app.owner, &bad)
            .await,
        422,
        Some("make"),
    )
    .await;
    assert!(problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["field"] == "chamber_litres"));
    let bad_kind = json!({"make": "X", "model": "Y", "serial_number": "SN-3", "kind": "microwave"});
    assert_problem(
        app.post(&app.clinic_path("/sterilisers"), &app.owner, &bad_kind)
            .await,
        422,
        Some("kind"),
    )
    .await;

    // Out of service and back, each with a reason.
    let path = app.clinic_path(&format!("/sterilisers/{id}/out-of-service"));
    let out: Value = app
        .post(&path, &app.owner, &json!({"reason": "annual service"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(out["in_service"], false);
    assert_eq!(out["status_reason"], "annual service");
    assert_problem(
        app.post(&path, &app.owner, &json!({"reason": "again"}))
            .await,
        409,
        None,
    )
    .await;
    assert_problem(
        app.post(&path, &app.technician, &json!({"reason": "x"}))
            .await,
        403,
        None,
    )
    .await;
    let back = app
        .post(
            &app.clinic_path(&format!("/sterilisers/{id}/return-to-service")),
            &app.owner,
            &json!({"reason": "serviced, validation passed"}),
        )
        .await;
    assert_eq!(back.status(), 200);

    let actions: Vec<String> = app
        .audit_events()
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        actions.ends_with(&[
            "steriliser.registered".into(),
            "steriliser.taken_out_of_service".into(),
            "steriliser.returned_to_service".into()
        ]),
        "{actions:?}"
    );
}

#[actix_web::test]
async fn a_cycle_derives_its_outcome_and_makes_labelled_packs() {
    let app = TestApp::spawn().await;
    let steriliser = register(&app, "SN-1", "pre_vacuum").await;
    let started = common::load_time_hours_ago(4);
    common::qualify_steriliser(&app, &steriliser, 100, started).await;
    let view = record(&app, &app.technician, &cycle(&steriliser, 101, started, 5)).await;
    assert_eq!(view["outcome"], "pass");
    assert_eq!(view["mechanical"]["passed"], true);
    assert_eq!(view["chemical_passed"], true);
    assert_eq!(view["biological"], "none");
    assert_eq!(view["operator_id"], app.technician.user_id.as_str());
    assert_eq!(view["operator_initials"], "T");
    assert!(view["warnings"].as_array().unwrap().is_empty());
    let made = codes(&view);
    assert_eq!(made.len(), 5);
    let unique: std::collections::HashSet<&String> = made.iter().collect();
    assert_eq!(unique.len(), 5);

    // Packs are listed in the order of the load as it was entered.
    let contents: Vec<&str> = view["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["contents"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        (0..5)
            .map(|i| format!("tube grips set {i}"))
            .collect::<Vec<_>>()
    );
    let typed = made[0].to_lowercase().replace('-', "");
    let pack: Value = app
        .get(&app.clinic_path(&format!("/packs/{typed}")), &app.inspector)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pack["state"], "released");
    assert_eq!(pack["cycle_number"], 101);
    let expires: DateTime<Utc> = pack["expires_at"].as_str().unwrap().parse().unwrap();
    let finished: DateTime<Utc> = view["finished_at"].as_str().unwrap().parse().unwrap();
    // The default shelf life ends with the clinic-local day 30 days after the load finished.
    let london = |t: DateTime<Utc>| t.with_timezone(&chrono_tz::Europe::London);
    assert_eq!(
        london(expires).date_naive(),
        london(finished).date_naive() + Duration::days(31),
        "default shelf life: it ends at the midnight that ends the 30th day"
    );
    assert_eq!(
        pack["use_by"].as_str().unwrap(),
        (london(finished).date_naive() + Duration::days(30)).to_string()
    );
    assert_eq!(
        london(expires).time(),
        chrono::NaiveTime::MIN,
        "to the end of that day"
    );

    let label = app
        .get(
            &app.clinic_path(&format!("/packs/{}/label", made[0])),
            &app.technician,
        )
        .await;
    assert_eq!(label.status(), 200);
    assert_eq!(label.headers()["content-type"], "image/svg+xml");
    let svg = label.text().await.unwrap();
    assert!(svg.contains(&made[0]) && svg.contains("Cycle 101") && svg.contains("Operator T"));
    assert!(svg.matches("<rect").count() > 50, "a QR code is drawn");
    assert!(
        svg.contains(r#"width="62mm""#) && svg.contains("Use by "),
        "{svg}"
    );
    // The smaller stock is laid out to fit; an unknown size says which there are.
    let small = app
        .get(
            &app.clinic_path(&format!("/packs/{}/label?size=54x25", made[0])),
            &app.technician,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        small.contains(r#"width="54mm""#) && small.contains("Sterilised "),
        "{small}"
    );
    let problem = assert_problem(
        app.get(
            &app.clinic_path(&format!("/packs/{}/label?size=a4", made[0])),
            &app.technician,
        )
        .await,
        422,
        Some("size"),
    )
    .await;
    assert!(problem["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("62x29"));
    assert_problem(
        app.get(&app.clinic_path("/packs/ZZZ-ZZZ"), &app.owner)
            .await,
        404,
        None,
    )
    .await;

    // A failed indicator fails the load and quarantines its packs.
    let mut failed = cycle(&steriliser, 102, started + Duration::minutes(50), 1);
    failed["peak_temperature_c"] = json!(133.0);
    failed["peak_pressure_kpa"] = json!(295.0);
    let view = record(&app, &app.technician, &failed).await;
    assert_eq!(view["mechanical"]["passed"], false);
    assert_eq!(view["outcome"], "fail");
    assert_eq!(pack_state(&app, &codes(&view)[0]).await, "quarantined");

    let mut bad_ci = cycle(&steriliser, 103, started + Duration::minutes(100), 2);
    bad_ci["packs"][1]["indicator"]["passed"] = json!(false);
    let view = record(&app, &app.technician, &bad_ci).await;
    assert_eq!(view["chemical_passed"], false);
    assert_eq!(view["outcome"], "fail");
}

#[actix_web::test]
async fn impossible_cycles_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let steriliser = register(&app, "SN-1", "pre_vacuum").await;
    let other_steriliser = {
        let res = app
            .post(
                &format!("/api/v1/clinics/{}/sterilisers", app.other_clinic_id),
                &app.other_owner,
                &json!({"make": "X", "model": "Y", "serial_number": "OTHER-1", "kind": "gravity"}),
            )
            .await;
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let events_before = app.audit_events().await.len();
    let started = Utc::now() - Duration::hours(3);
    let with = |field: &str, value: Value| {
        let mut body = cycle(&steriliser, 1, started, 2);
        body[field] = value;
        body
    };
    let cases = [
        (
            with("peak_temperature_c", json!(300.0)),
            "peak_temperature_c",
        ),
        (with("peak_pressure_kpa", json!(150.0)), "peak_pressure_kpa"),
        (with("hold_minutes", json!(0)), "hold_minutes"),
        (
            with(
                "finished_at",
                json!((started - Duration::minutes(1)).to_rfc3339()),
            ),
            "finished_at",
        ),
        (
            with(
                "finished_at",
                json!((Utc::now() + Duration::hours(1)).to_rfc3339()),
            ),
            "finished_at",
        ),
        (with("cycle_number", json!(0)), "cycle_number"),
        (
            with("load_indicator", json!({"type": 9, "passed": true})),
            "load_indicator.type",
        ),
        (with("started_at", json!("yesterday")), "started_at"),
        (
            with("operator_id", json!(app.other_owner.user_id)),
            "operator_id",
        ),
        (
            with("operator_id", json!(app.inspector.user_id)),
            "operator_id",
        ),
    ];
    for (body, field) in cases {
        assert_problem(
            app.post(&app.clinic_path("/cycles"), &app.owner, &body)
                .await,
            422,
            Some(field),
        )
        .await;
    }
    let unknown = app
        .post(
            &app.clinic_path("/cycles"),
            &app.owner,
            &with(
                "steriliser_id",
                json!("01a00000-0000-7000-8000-00000000dead"),
            ),
        )
        .await;
    let unknown = assert_problem(unknown, 404, Some("steriliser_id")).await;
    let foreign = app
        .post(
            &app.clinic_path("/cycles"),
            &app.owner,
            &with("steriliser_id", json!(other_steriliser)),
        )
        .await;
    let foreign = assert_problem(foreign, 404, Some("steriliser_id")).await;
    assert_eq!(
        unknown, foreign,
        "another clinic's steriliser looks like a missing one"
    );
    let inspector = app
        .post(
            &app.clinic_path("/cycles"),
            &app.inspector,
            &cycle(&steriliser, 1, started, 1),
        )
        .await;
    assert_problem(inspector, 403, None).await;

    let list: Value = app
        .get(&app.clinic_path("/cycles"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    assert_eq!(app.audit_events().await.len(), events_before);
}

#[actix_web::test]
async fn cycle_numbers_are_unique_per_steriliser_and_gaps_are_flagged() {
    let app = TestApp::spawn().await;
    let a = register(&app, "SN-A", "pre_vacuum").await;
    let b = register(&app, "SN-B", "gravity").await;
    let t0 = Utc::now() - Duration::hours(10);
    record(&app, &app.technician, &cycle(&a, 7, t0, 1)).await;
    let dup = app
        .post(
            &app.clinic_path("/cycles"),
            &app.technician,
            &cycle(&a, 7, t0 + Duration::hours(1), 1),
        )
        .await;
    assert_problem(dup, 409, None).await;
    // The same number on another steriliser is fine.
    record(&app, &app.technician, &cycle(&b, 7, t0, 1)).await;
    let gap = record(
        &app,
        &app.technician,
        &cycle(&a, 10, t0 + Duration::hours(2), 1),
    )
    .await;
    let warning = gap["warnings"][0].as_str().unwrap();
    assert!(warning.contains("8 to 9"), "{warning}");

    // Lists filter by steriliser and time, newest first, with a cursor.
    let listed: Value = app
        .get(
            &app.clinic_path(&format!("/cycles?steriliser_id={a}")),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    let numbers: Vec<i64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cycle_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [10, 7]);
    let page: Value = app
        .get(&app.clinic_path("/cycles?limit=2"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(
            &app.clinic_path(&format!("/cycles?limit=2&cursor={cursor}")),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let from = (t0 + Duration::minutes(30))
        .to_rfc3339()
        .replace('+', "%2B");
    let recent: Value = app
        .get(
            &app.clinic_path(&format!("/cycles?from={from}")),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(recent["items"].as_array().unwrap().len(), 1);
    assert_problem(
        app.get(&app.clinic_path("/cycles?cursor=nonsense"), &app.owner)
            .await,
        422,
        Some("cursor"),
    )
    .await;
}

/// The derived states the issue names: a pack from a load whose spore test later turns positive
/// becomes quarantined; a retest re-enables the steriliser.
#[actix_web::test]
async fn a_positive_spore_test_quarantines_back_to_the_last_negative_until_a_retest_passes() {
    let app = TestApp::spawn().await;
    // Gravity: no air-removal test is needed, so the spore tests alone decide.
    let s = register(&app, "SN-1", "gravity").await;
    let t0 = Utc::now() - Duration::days(3);

    // Load 1 carries a spore test that reads negative.
    let c1 = record(&app, &app.technician, &cycle(&s, 1, t0, 1)).await;
    let bi1 = place_spore_test(&app, &s, c1["id"].as_str().unwrap(), t0).await;
    assert_eq!(
        pack_state(&app, &codes(&c1)[0]).await,
        "pending",
        "its spore test is incubating"
    );
    assert_eq!(
        read_spore_test(&app, &bi1, "negative", t0 + Duration::hours(24))
            .await
            .status(),
        201
    );
    assert_eq!(pack_state(&app, &codes(&c1)[0]).await, "released");

    // Loads 2 and 3; load 3 carries a spore test that reads positive.
    let c2 = record(
        &app,
        &app.technician,
        &cycle(&s, 2, t0 + Duration::hours(25), 2),
    )
    .await;
    let c3 = record(
        &app,
        &app.technician,
        &cycle(&s, 3, t0 + Duration::hours(26), 1),
    )
    .await;
    assert_eq!(pack_state(&app, &codes(&c2)[0]).await, "released");
    let bi3 = place_spore_test(
        &app,
        &s,
        c3["id"].as_str().unwrap(),
        t0 + Duration::hours(26),
    )
    .await;
    let res = read_spore_test(&app, &bi3, "positive", t0 + Duration::hours(50)).await;
    assert_eq!(res.status(), 201);
    let test: Value = res.json().await.unwrap();
    assert_eq!(test["outcome"], "positive");
    // A second result for the same test is a conflict.
    assert_problem(
        read_spore_test(&app, &bi3, "negative", t0 + Duration::hours(51)).await,
        409,
        None,
    )
    .await;

    let steriliser: Value = app
        .get(&app.clinic_path(&format!("/sterilisers/{s}")), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(steriliser["in_service"], false);
    assert_eq!(steriliser["quarantined"], true);
    assert_eq!(
        pack_state(&app, &codes(&c1)[0]).await,
        "released",
        "before the last negative test"
    );
    for code in codes(&c2).iter().chain(codes(&c3).iter()) {
        assert_eq!(pack_state(&app, code).await, "quarantined", "{code}");
    }
    let failed_cycle: Value = app
        .get(
            &app.clinic_path(&format!("/cycles/{}", c3["id"].as_str().unwrap())),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed_cycle["outcome"], "fail");

    // While quarantined: no loads, no return to service.
    let refused = app
        .post(
            &app.clinic_path("/cycles"),
            &app.technician,
            &cycle(&s, 4, t0 + Duration::hours(52), 1),
        )
        .await;
    assert_problem(refused, 409, None).await;
    let early = app
        .post(
            &app.clinic_path(&format!("/sterilisers/{s}/return-to-service")),
            &app.owner,
            &json!({"reason": "looks fine"}),
        )
        .await;
    assert_problem(early, 409, None).await;

    // An empty-chamber rechallenge with a negative spore test allows the return.
    let retest = record(
        &app,
        &app.technician,
        &cycle(&s, 4, t0 + Duration::hours(53), 0),
    )
    .await;
    let bi4 = place_spore_test(
        &app,
        &s,
        retest["id"].as_str().unwrap(),
        t0 + Duration::hours(53),
    )
    .await;
    assert_eq!(
        read_spore_test(&app, &bi4, "negative", t0 + Duration::hours(60))
            .await
            .status(),
        201
    );
    // One passing retest is not enough where the profile follows CDC and AAMI ST79: three
    // consecutive negatives, each in an empty chamber.
    let one = app
        .post(
            &app.clinic_path(&format!("/sterilisers/{s}/return-to-service")),
            &app.owner,
            &json!({"reason": "retest negative"}),
        )
        .await;
    let problem = assert_problem(one, 409, None).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("3 consecutive"),
        "{problem}"
    );
    for (n, h) in [(5, 54), (6, 55)] {
        let rechallenge = record(
            &app,
            &app.technician,
            &cycle(&s, n, t0 + Duration::hours(h), 0),
        )
        .await;
        let bi = place_spore_test(
            &app,
            &s,
            rechallenge["id"].as_str().unwrap(),
            t0 + Duration::hours(h),
        )
        .await;
        assert_eq!(
            read_spore_test(&app, &bi, "negative", t0 + Duration::hours(h + 7))
                .await
                .status(),
            201
        );
    }
    let back = app
        .post(
            &app.clinic_path(&format!("/sterilisers/{s}/return-to-service")),
            &app.owner,
            &json!({"reason": "retest negative"}),
        )
        .await;
    assert_eq!(back.status(), 200);
    assert_eq!(back.json::<Value>().await.unwrap()["quarantined"], false);

    // Packs of the suspect loads stay quarantined, and the view still names each one on the
    // shelf; new loads are released.
    assert_eq!(pack_state(&app, &codes(&c2)[0]).await, "quarantined");
    let view: Value = app
        .get(&app.clinic_path("/compliance"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    for code in codes(&c2).iter().chain(codes(&c3).iter()) {
        assert!(
            view["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["subject"] == format!("pack:{code}").as_str()
                    && f["severity"] == "blocker"),
            "{code}: {view}"
        );
    }
    let c5 = record(
        &app,
        &app.technician,
        &cycle(&s, 7, t0 + Duration::hours(63), 1),
    )
    .await;
    assert_eq!(pack_state(&app, &codes(&c5)[0]).await, "released");

    let actions: Vec<String> = app
        .audit_events()
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.contains(&"steriliser.quarantined".to_owned()));
    let v: Value = app
        .get(&app.clinic_path("/audit/verify"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], true);
}

#[actix_web::test]
async fn spore_test_bad_input() {
    let app = TestApp::spawn().await;
    let s1 = register(&app, "SN-1", "gravity").await;
    let s2 = register(&app, "SN-2", "gravity").await;
    let t0 = Utc::now() - Duration::days(1);
    let c1 = record(&app, &app.technician, &cycle(&s1, 1, t0, 1)).await;
    let c1_id = c1["id"].as_str().unwrap();
    let body = |steriliser: &str, cycle_id: &str, incubation: Value| {
        json!({"steriliser_id": steriliser, "cycle_id": cycle_id, "bi_product": "Attest", "bi_lot": "L1",
               "placed_at": t0.to_rfc3339(), "incubation": incubation})
    };
    let path = app.clinic_path("/spore-tests");
    let wrong_cycle = app
        .post(
            &path,
            &app.technician,
            &body(&s2, c1_id, json!({"kind": "in_house", "hours": 24})),
        )
        .await;
    assert_problem(wrong_cycle, 422, Some("cycle_id")).await;
    let no_cycle = app
        .post(
            &path,
            &app.technician,
            &body(&s1, "nope", json!({"kind": "in_house", "hours": 24})),
        )
        .await;
    assert_problem(no_cycle, 404, Some("cycle_id")).await;
    let deadline = app
        .post(&path, &app.technician, &body(&s1, c1_id, json!({"kind": "mail_in", "posted_on": "2026-01-10", "lab_name": "BioLab", "lab_deadline": "2026-01-01"})))
        .await;
    assert_problem(deadline, 422, Some("incubation.posted_on")).await;
    let no_hours = app
        .post(
            &path,
            &app.technician,
            &body(&s1, c1_id, json!({"kind": "in_house", "hours": 0})),
        )
        .await;
    assert_problem(no_hours, 422, Some("incubation.hours")).await;
    let inspector = app
        .post(
            &path,
            &app.inspector,
            &body(&s1, c1_id, json!({"kind": "in_house", "hours": 24})),
        )
        .await;
    assert_problem(inspector, 403, None).await;

    let mail_in = app
        .post(&path, &app.technician, &body(&s1, c1_id, json!({"kind": "mail_in", "posted_on": t0.date_naive().to_string(), "lab_name": "BioLab", "lab_deadline": t0.date_naive().to_string()})))
        .await;
    assert_eq!(mail_in.status(), 201);
    let test: Value = mail_in.json().await.unwrap();
    let id = test["id"].as_str().unwrap();
    let early = app
        .post(&app.clinic_path(&format!("/spore-tests/{id}/result")), &app.technician,
              &json!({"result": "negative", "control_result": "growth", "read_at": (t0 - Duration::hours(1)).to_rfc3339()}))
        .await;
    assert_problem(early, 422, Some("read_at")).await;
    let invalid = app
        .post(&app.clinic_path(&format!("/spore-tests/{id}/result")), &app.technician,
              &json!({"result": "negative", "control_result": "no_growth", "read_at": Utc::now().to_rfc3339(), "lab_reference": "R-1"}))
        .await;
    let invalid: Value = invalid.json().await.unwrap();
    assert_eq!(invalid["outcome"], "invalid");
    assert_eq!(
        pack_state(&app, &codes(&c1)[0]).await,
        "pending",
        "an invalid test proves nothing"
    );
}

#[actix_web::test]
async fn shelf_life_comes_from_clinic_settings_and_expired_packs_say_so() {
    let app = TestApp::spawn().await;
    let s = register(&app, "SN-1", "gravity").await;
    common::qualify_steriliser(&app, &s, 90, Utc::now() - Duration::days(4)).await;
    let settings = app.clinic_path("/settings");
    assert_problem(
        app.request(Method::PUT, &settings, &app.technician)
            .json(&json!({"pack_shelf_life_days": 1}))
            .send()
            .await
            .unwrap(),
        403,
        None,
    )
    .await;
    assert_problem(
        app.request(Method::PUT, &settings, &app.owner)
            .json(&json!({"pack_shelf_life_days": 0}))
            .send()
            .await
            .unwrap(),
        422,
        Some("pack_shelf_life_days"),
    )
    .await;
    assert_problem(
        app.request(Method::PUT, &settings, &app.owner)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        422,
        Some("pack_shelf_life_days"),
    )
    .await;
    let res = app
        .request(Method::PUT, &settings, &app.owner)
        .json(&json!({"pack_shelf_life_days": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["pack_shelf_life_days"],
        1
    );
    // Every member reads the settings back, with the jurisdiction's limit and its source.
    let read: Value = app
        .get(&settings, &app.technician)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["pack_shelf_life_days"], 1);
    assert!(read["jurisdiction_pack_shelf_life_source"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(read["timezone"], "Europe/London");

    let old = record(
        &app,
        &app.technician,
        &cycle(&s, 1, Utc::now() - Duration::days(3), 1),
    )
    .await;
    let pack: Value = app
        .get(
            &app.clinic_path(&format!("/packs/{}", codes(&old)[0])),
            &app.technician,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pack["state"], "expired");
    assert!(pack["state_reason"]
        .as_str()
        .unwrap()
        .contains("shelf life"));

    let res = app
        .request(Method::PUT, &settings, &app.owner)
        .json(&json!({"pack_shelf_life_days": null}))
        .send()
        .await
        .unwrap();
    assert!(res.json::<Value>().await.unwrap()["pack_shelf_life_days"].is_null());
    let event_related = record(
        &app,
        &app.technician,
        &cycle(&s, 2, Utc::now() - Duration::days(400), 1),
    )
    .await;
    let pack: Value = app
        .get(
            &app.clinic_path(&format!("/packs/{}", codes(&event_related)[0])),
            &app.technician,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(pack["expires_at"].is_null());
    assert_eq!(pack["state"], "released");
    // The first pack keeps the policy it was made under.
    assert_eq!(pack_state(&app, &codes(&old)[0]).await, "expired");
}

#[actix_web::test]
async fn air_removal_tests_are_for_pre_vacuum_sterilisers() {
    let app = TestApp::spawn().await;
    let vacuum = register(&app, "SN-V", "pre_vacuum").await;
    let gravity = register(&app, "SN-G", "gravity").await;
    let path = app.clinic_path("/air-removal-tests");
    let body = |s: &str| json!({"steriliser_id": s, "performed_at": (Utc::now() - Duration::hours(1)).to_rfc3339(), "test_type": "bowie_dick", "passed": true});
    let res = app.post(&path, &app.technician, &body(&vacuum)).await;
    assert_eq!(res.status(), 201);
    let test: Value = res.json().await.unwrap();
    assert_problem(
        app.post(&path, &app.technician, &body(&gravity)).await,
        422,
        Some("steriliser_id"),
    )
    .await;
    assert_problem(
        app.post(&path, &app.inspector, &body(&vacuum)).await,
        403,
        None,
    )
    .await;
    let mut future = body(&vacuum);
    future["performed_at"] = json!((Utc::now() + Duration::hours(2)).to_rfc3339());
    assert_problem(
        app.post(&path, &app.technician, &future).await,
        422,
        Some("performed_at"),
    )
    .await;

    let amended = app
        .post(&app.clinic_path(&format!("/air-removal-tests/{}/amendments", test["id"].as_str().unwrap())), &app.technician,
              &json!({"reason": "the sheet showed a non-uniform colour change", "changes": {"passed": false}}))
        .await;
    assert_eq!(amended.status(), 201);
    let list: Value = app
        .get(
            &app.clinic_path(&format!("/air-removal-tests?steriliser_id={vacuum}")),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["passed"], false);
    assert_eq!(list["items"][0]["version"], 2);
}

#[actix_web::test]
async fn amendments_keep_every_version_with_its_reason() {
    let app = TestApp::spawn().await;
    let s = register(&app, "SN-1", "pre_vacuum").await;
    let c = record(
        &app,
        &app.technician,
        &cycle(&s, 1, Utc::now() - Duration::hours(5), 2),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let path = app.clinic_path(&format!("/cycles/{id}/amendments"));

    assert_problem(
        app.post(
            &path,
            &app.technician,
            &json!({"reason": " ", "changes": {"hold_minutes": 5}}),
        )
        .await,
        422,
        Some("reason"),
    )
    .await;
    assert_problem(
        app.post(
            &path,
            &app.technician,
            &json!({"reason": "typo", "changes": {"colour": "red"}}),
        )
        .await,
        422,
        Some("changes.colour"),
    )
    .await;
    assert_problem(
        app.post(
            &path,
            &app.technician,
            &json!({"reason": "typo", "changes": {}}),
        )
        .await,
        422,
        Some("changes"),
    )
    .await;
    assert_problem(
        app.post(
            &path,
            &app.technician,
            &json!({"reason": "typo", "changes": {"peak_temperature_c": 300}}),
        )
        .await,
        422,
        Some("peak_temperature_c"),
    )
    .await;
    assert_problem(
        app.post(
            &path,
            &app.inspector,
            &json!({"reason": "typo", "changes": {"hold_minutes": 5}}),
        )
        .await,
        403,
        None,
    )
    .await;

    let res = app
        .post(
            &path,
            &app.technician,
            &json!({"reason": "printer showed 5.0 min hold", "changes": {"hold_minutes": 5.0}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let amended: Value = res.json().await.unwrap();
    assert_eq!(amended["version"], 2);
    assert_eq!(amended["hold_minutes"], 5.0);
    assert_eq!(codes(&amended), codes(&c), "the packs stay with the cycle");

    let full: Value = app
        .get(&app.clinic_path(&format!("/cycles/{id}")), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let history = full["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0]["reason"].is_null());
    assert_eq!(history[1]["reason"], "printer showed 5.0 min hold");
    assert_eq!(
        history[1]["changes"],
        json!({"hold_minutes": {"from": 4.0, "to": 5.0}})
    );

    let sterile_amend = app
        .post(
            &app.clinic_path(&format!("/sterilisers/{s}/amendments")),
            &app.owner,
            &json!({"reason": "moved", "changes": {"location": "Room 2"}}),
        )
        .await;
    assert_eq!(sterile_amend.status(), 201);
    let steriliser: Value = app
        .get(
            &app.clinic_path(&format!("/sterilisers/{s}")),
            &app.technician,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(steriliser["location"], "Room 2");
    assert_eq!(steriliser["history"].as_array().unwrap().len(), 2);

    let events = app.audit_events().await;
    let amendment = events
        .iter()
        .find(|e| e["action"] == "cycle.amended")
        .unwrap();
    assert_eq!(amendment["reason"], "printer showed 5.0 min hold");
    assert_eq!(amendment["payload"]["hold_minutes"], 5.0);
}

/// Every sterilisation route, called by another clinic's owner with this clinic's ids, answers
/// exactly as for ids that do not exist, and changes nothing.
#[actix_web::test]
async fn another_clinic_sees_and_changes_no_sterilisation_record() {
    let app = TestApp::spawn().await;
    let s = register(&app, "SN-1", "pre_vacuum").await;
    let t0 = Utc::now() - Duration::days(1);
    let c = record(&app, &app.technician, &cycle(&s, 1, t0, 1)).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    let code = codes(&c)[0].clone();
    let bi = place_spore_test(&app, &s, &cid, t0).await;
    let air: Value = app
        .post(&app.clinic_path("/air-removal-tests"), &app.technician, &json!({"steriliser_id": s, "performed_at": t0.to_rfc3339(), "test_type": "helix", "passed": true}))
        .await
        .json()
        .await
        .unwrap();
    let air = air["id"].as_str().unwrap().to_owned();
    let before = app.audit_events().await.len();
    let amendment = json!({"reason": "x", "changes": {"notes": "x"}});
    let reason = json!({"reason": "x"});
    let routes: Vec<(Method, String, Value)> = vec![
        (Method::GET, "/sterilisers".into(), Value::Null),
        (Method::GET, format!("/sterilisers/{s}"), Value::Null),
        (
            Method::POST,
            format!("/sterilisers/{s}/amendments"),
            json!({"reason": "x", "changes": {"location": "x"}}),
        ),
        (
            Method::POST,
            format!("/sterilisers/{s}/out-of-service"),
            reason.clone(),
        ),
        (
            Method::POST,
            format!("/sterilisers/{s}/return-to-service"),
            reason,
        ),
        (Method::GET, format!("/cycles/{cid}"), Value::Null),
        (
            Method::POST,
            format!("/cycles/{cid}/amendments"),
            amendment.clone(),
        ),
        (Method::GET, format!("/packs/{code}"), Value::Null),
        (Method::GET, format!("/packs/{code}/label"), Value::Null),
        (Method::GET, format!("/spore-tests/{bi}"), Value::Null),
        (
            Method::POST,
            format!("/spore-tests/{bi}/result"),
            json!({"result": "positive", "control_result": "growth", "read_at": Utc::now().to_rfc3339()}),
        ),
        (
            Method::POST,
            format!("/spore-tests/{bi}/amendments"),
            json!({"reason": "x", "changes": {"bi_lot": "x"}}),
        ),
        (
            Method::GET,
            format!("/air-removal-tests/{air}"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/air-removal-tests/{air}/amendments"),
            amendment,
        ),
        (Method::GET, "/cycles".into(), Value::Null),
        (Method::GET, "/spore-tests".into(), Value::Null),
        (Method::GET, "/air-removal-tests".into(), Value::Null),
        (
            Method::PUT,
            "/settings".into(),
            json!({"pack_shelf_life_days": 5}),
        ),
    ];
    common::assert_foreign_looks_missing(&app, &routes).await;
    // Within its own clinic, the other owner cannot reach these records by id either.
    let other = |rest: &str| format!("/api/v1/clinics/{}{rest}", app.other_clinic_id);
    for rest in [
        format!("/sterilisers/{s}"),
        format!("/cycles/{cid}"),
        format!("/packs/{code}"),
        format!("/spore-tests/{bi}"),
        format!("/air-removal-tests/{air}"),
    ] {
        assert_problem(app.get(&other(&rest), &app.other_owner).await, 404, None).await;
    }
    let mine: Value = app
        .get(&other("/cycles"), &app.other_owner)
        .await
        .json()
        .await
        .unwrap();
    assert!(mine["items"].as_array().unwrap().is_empty());
    assert_eq!(app.audit_events().await.len(), before);
    let state = pack_state(&app, &code).await;
    assert_eq!(state, "pending", "the foreign result was not recorded");
}
