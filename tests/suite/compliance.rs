//! The compliance view: findings from the clinic's records and its jurisdiction profile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::{Duration, Utc};
use common::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

async fn view(app: &TestApp) -> Value {
    let res = app
        .get(&app.clinic_path("/compliance"), &app.inspector)
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn rules_for(v: &Value, subject_prefix: &str) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["subject"].as_str().unwrap().starts_with(subject_prefix))
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn findings_follow_the_records() {
    let app = TestApp::spawn().await;
    let v = view(&app).await;
    assert_eq!(v["jurisdiction"], "baseline");
    // Nobody has credentials yet: each staff member is blocked three times over.
    let tech = rules_for(&v, &format!("member:{}", app.technician.user_id));
    assert_eq!(
        tech,
        vec![("technician_eligibility".to_owned(), "blocker".to_owned()); 3]
    );

    // A pre-vacuum steriliser with no spore test and no air-removal test today.
    let s: Value = app
        .post(
            &app.clinic_path("/sterilisers"),
            &app.owner,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "S1", "kind": "pre_vacuum"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let sid = s["id"].as_str().unwrap();
    let v = view(&app).await;
    let mut found = rules_for(&v, &format!("steriliser:{sid}"));
    found.sort();
    assert_eq!(
        found,
        [
            ("daily_air_removal".to_owned(), "info".to_owned()),
            ("spore_test_interval".to_owned(), "blocker".to_owned())
        ]
    );

    // A load today without the air-removal test makes that a blocker; the test clears it.
    // Kept short; in the first minutes after the clinic's midnight the test waits until a whole
    // load fits into today.
    let london = Utc::now().with_timezone(&chrono_tz::Europe::London);
    let since_midnight = chrono::Timelike::num_seconds_from_midnight(&london);
    if since_midnight < 8 * 60 {
        tokio::time::sleep(std::time::Duration::from_secs(u64::from(
            8 * 60 - since_midnight,
        )))
        .await;
    }
    let started = Utc::now() - Duration::minutes(6);
    let c: Value = app
        .post(&app.clinic_path("/cycles"), &app.owner, &json!({
            "steriliser_id": sid, "cycle_number": 1, "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
            "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(5)).to_rfc3339(),
            "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0, "load_indicator": {"type": 5, "passed": true}, "packs": []}))
        .await
        .json()
        .await
        .unwrap();
    let v = view(&app).await;
    assert!(rules_for(&v, &format!("steriliser:{sid}"))
        .contains(&("daily_air_removal".to_owned(), "blocker".to_owned())));
    app.post(&app.clinic_path("/air-removal-tests"), &app.owner, &json!({"steriliser_id": sid, "performed_at": (started - Duration::minutes(1)).to_rfc3339(), "test_type": "bowie_dick", "passed": true})).await;
    // A negative spore test in that load satisfies the interval.
    let bi: Value = app.post(&app.clinic_path("/spore-tests"), &app.owner, &json!({"steriliser_id": sid, "cycle_id": c["id"], "bi_product": "A", "bi_lot": "B", "placed_at": started.to_rfc3339(), "incubation": {"kind": "in_house", "hours": 24}})).await.json().await.unwrap();
    app.post(&app.clinic_path(&format!("/spore-tests/{}/result", bi["id"].as_str().unwrap())), &app.owner, &json!({"result": "negative", "control_result": "growth", "read_at": Utc::now().to_rfc3339()})).await;
    let v = view(&app).await;
    assert!(
        rules_for(&v, &format!("steriliser:{sid}")).is_empty(),
        "{v}"
    );

    // A recalled lot and an overdue incident follow-up.
    let lot: Value = app.post(&app.clinic_path("/lots"), &app.owner, &json!({"kind": "pigment", "manufacturer": "M", "product_name": "P", "lot_number": "L1", "expiry_date": (Utc::now() + Duration::days(300)).date_naive().to_string(), "sterilisation_method": "gamma", "received_on": (Utc::now() - Duration::days(5)).date_naive().to_string(), "quantity_received": 1})).await.json().await.unwrap();
    app.post(
        &app.clinic_path(&format!("/lots/{}/recall", lot["id"].as_str().unwrap())),
        &app.owner,
        &json!({"reason": "r", "reference": "R"}),
    )
    .await;
    let incident: Value = app
        .post(&app.clinic_path("/incidents"), &app.technician, &json!({"kind": "blood_body_fluid_exposure", "occurred_at": (Utc::now() - Duration::days(20)).to_rfc3339(), "location": "Chair 1", "description": "splash", "immediate_actions": "rinsed"}))
        .await
        .json()
        .await
        .unwrap();
    let v = view(&app).await;
    assert_eq!(
        rules_for(&v, &format!("lot:{}", lot["id"].as_str().unwrap())),
        [("lot_recalled".to_owned(), "blocker".to_owned())]
    );
    assert_eq!(
        rules_for(
            &v,
            &format!("incident:{}", incident["id"].as_str().unwrap())
        )
        .len(),
        1
    );
    let summary = &v["summary"];
    let total = summary["blocker"].as_u64().unwrap()
        + summary["warning"].as_u64().unwrap()
        + summary["info"].as_u64().unwrap();
    assert_eq!(total as usize, v["findings"].as_array().unwrap().len());
    assert_eq!(v["findings"][0]["severity"], "blocker", "most severe first");
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| !f["reference"].as_str().unwrap().is_empty()));
}

#[actix_web::test]
async fn another_clinic_cannot_read_the_compliance_view() {
    let app = TestApp::spawn().await;
    common::assert_foreign_looks_missing(
        &app,
        &[(Method::GET, "/compliance".to_owned(), Value::Null)],
    )
    .await;
    let own: Value = app
        .get(
            &format!("/api/v1/clinics/{}/compliance", app.other_clinic_id),
            &app.other_owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["jurisdiction"], "gb-eng");
}

async fn view_at(app: &TestApp, at: &str) -> reqwest::Response {
    app.get(
        &app.clinic_path(&format!("/compliance?at={}", urlencode(at))),
        &app.owner,
    )
    .await
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

#[actix_web::test]
async fn the_view_as_of_a_past_moment_ignores_what_came_later() {
    let app = TestApp::spawn().await;
    let o = &app.owner;
    let s = ok(app
        .post(
            &app.clinic_path("/sterilisers"),
            o,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "S1", "kind": "gravity", "location": "Back room"}),
        )
        .await)
    .await;
    let sid = s["id"].as_str().unwrap().to_owned();
    let started = Utc::now() - Duration::hours(3);
    let c = ok(app.post(&app.clinic_path("/cycles"), o, &json!({
        "steriliser_id": sid, "cycle_number": 1, "program": {"name": "121", "temperature_c": 121.0, "hold_minutes": 30.0},
        "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(50)).to_rfc3339(),
        "peak_temperature_c": 122.0, "peak_pressure_kpa": 213.0, "hold_minutes": 31.0, "load_indicator": {"type": 5, "passed": true}, "packs": []})).await).await;
    let bi = ok(app.post(&app.clinic_path("/spore-tests"), o, &json!({"steriliser_id": sid, "cycle_id": c["id"], "bi_product": "A", "bi_lot": "B", "placed_at": started.to_rfc3339(), "incubation": {"kind": "in_house", "hours": 1}})).await).await;
    ok(app.post(&app.clinic_path(&format!("/spore-tests/{}/result", bi["id"].as_str().unwrap())), o, &json!({"result": "negative", "control_result": "growth", "read_at": Utc::now().to_rfc3339()})).await).await;
    let lot = ok(app.post(&app.clinic_path("/lots"), o, &json!({"kind": "pigment", "manufacturer": "M", "product_name": "P", "lot_number": "L1", "expiry_date": (Utc::now() + Duration::days(300)).date_naive().to_string(), "sterilisation_method": "gamma", "received_on": (Utc::now() - Duration::days(5)).date_naive().to_string(), "quantity_received": 1})).await).await;
    let lot_id = lot["id"].as_str().unwrap().to_owned();

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let then = Utc::now();
    let before = ok(view_at(&app, &then.to_rfc3339()).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // After that moment: the steriliser moves (an amendment), the lot is recalled, the
    // technician's credentials are recorded and verified, and the technician leaves.
    ok(app.post(&app.clinic_path(&format!("/sterilisers/{sid}/amendments")), o, &json!({"reason": "moved to the new decontamination room", "changes": {"location": "Decon room"}})).await).await;
    ok(app
        .post(
            &app.clinic_path(&format!("/lots/{lot_id}/recall")),
            o,
            &json!({"reason": "r", "reference": "R"}),
        )
        .await)
    .await;
    let owner_id = o.user_id.clone();
    for body in [
        json!({"user_id": owner_id, "kind": "bloodborne_pathogen_training", "issued_on": (Utc::now() - Duration::days(30)).date_naive().to_string()}),
        json!({"user_id": owner_id, "kind": "hepatitis_b", "hepatitis_b_status": "vaccinated"}),
    ] {
        let cred = ok(app.post(&app.clinic_path("/credentials"), o, &body).await).await;
        ok(app
            .post(
                &app.clinic_path(&format!(
                    "/credentials/{}/verify",
                    cred["id"].as_str().unwrap()
                )),
                o,
                &json!({}),
            )
            .await)
        .await;
    }
    ok(app
        .post(
            &app.clinic_path(&format!("/members/{}/deactivate", app.technician.user_id)),
            o,
            &json!({"reason": "left the studio"}),
        )
        .await)
    .await;

    let now = view(&app).await;
    assert_eq!(now["as_of"], false);
    assert!(rules_for(&now, &format!("steriliser:{sid}"))
        .contains(&("spore_test_after_event".to_owned(), "blocker".to_owned())));
    assert_eq!(
        rules_for(&now, &format!("lot:{lot_id}")),
        [("lot_recalled".to_owned(), "blocker".to_owned())]
    );
    assert!(rules_for(&now, &format!("member:{}", app.technician.user_id)).is_empty());
    assert_eq!(rules_for(&now, &format!("member:{owner_id}")).len(), 1);

    // As of the earlier moment, none of that had happened: asked again now, the answer is the
    // same as it was then.
    let after = ok(view_at(&app, &then.to_rfc3339()).await).await;
    assert_eq!(after["as_of"], true);
    assert_eq!(after["findings"], before["findings"]);
    assert_eq!(after["summary"], before["summary"]);
    assert_eq!(after["chain"], before["chain"]);
    assert!(
        rules_for(&after, &format!("steriliser:{sid}")).is_empty(),
        "{after}"
    );
    assert!(rules_for(&after, &format!("lot:{lot_id}")).is_empty());
    assert_eq!(
        rules_for(&after, &format!("member:{}", app.technician.user_id)).len(),
        3
    );
    assert_eq!(rules_for(&after, &format!("member:{owner_id}")).len(), 3);
    assert!(
        after["chain"]["seq"].as_i64().unwrap() < now["chain"]["seq"].as_i64().unwrap(),
        "the past view stands on an earlier event of the chain"
    );
    // The same moment in another offset is the same moment.
    let local = then.with_timezone(&chrono::FixedOffset::east_opt(5 * 3600).unwrap());
    let shifted = ok(view_at(&app, &local.to_rfc3339()).await).await;
    assert_eq!(shifted["findings"], before["findings"]);
}

#[actix_web::test]
async fn a_bad_moment_is_refused() {
    let app = TestApp::spawn().await;
    for at in ["yesterday", "2026-03-03", "2026-03-03T17:00:00"] {
        common::assert_problem(view_at(&app, at).await, 422, Some("at")).await;
    }
    let future = (Utc::now() + Duration::hours(1)).to_rfc3339();
    common::assert_problem(view_at(&app, &future).await, 422, Some("at")).await;
    let before_the_clinic = (Utc::now() - Duration::days(400)).to_rfc3339();
    common::assert_problem(view_at(&app, &before_the_clinic).await, 422, Some("at")).await;
    let at = urlencode(&Utc::now().to_rfc3339());
    common::assert_foreign_looks_missing(
        &app,
        &[(Method::GET, format!("/compliance?at={at}"), Value::Null)],
    )
    .await;
}

#[actix_web::test]
async fn packs_on_the_shelf_from_a_failed_load_or_past_their_shelf_life_are_flagged() {
    let app = TestApp::spawn().await;
    let o = &app.owner;
    let s = ok(app
        .post(
            &app.clinic_path("/sterilisers"),
            o,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "S1", "kind": "gravity"}),
        )
        .await)
    .await;
    let sid = s["id"].as_str().unwrap();
    common::qualify_steriliser(&app, sid, 100, Utc::now() - Duration::hours(50)).await;
    ok(app
        .request(Method::PUT, &app.clinic_path("/settings"), o)
        .json(&json!({"pack_shelf_life_days": 1}))
        .send()
        .await
        .unwrap())
    .await;
    let load = |n: i64, hold: f64, hours_ago: i64| {
        let started = Utc::now() - Duration::hours(hours_ago);
        json!({
            "steriliser_id": sid, "cycle_number": n, "program": {"name": "121", "temperature_c": 121.0, "hold_minutes": 30.0},
            "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(50)).to_rfc3339(),
            "peak_temperature_c": 122.0, "peak_pressure_kpa": 213.0, "hold_minutes": hold,
            "load_indicator": {"type": 5, "passed": true}, "packs": [{"contents": "grips"}]})
    };
    // Load 1 held too short; load 2 passed two days ago, so its pack is past one day's shelf life;
    // load 3 passed an hour ago.
    let failed = ok(app
        .post(&app.clinic_path("/cycles"), o, &load(1, 10.0, 3))
        .await)
    .await;
    let old = ok(app
        .post(&app.clinic_path("/cycles"), o, &load(2, 31.0, 49))
        .await)
    .await;
    let fresh = ok(app
        .post(&app.clinic_path("/cycles"), o, &load(3, 31.0, 2))
        .await)
    .await;
    let v = view(&app).await;
    let code = |c: &Value| c["packs"][0]["code"].as_str().unwrap().to_owned();
    assert_eq!(
        rules_for(&v, &format!("pack:{}", code(&failed))),
        [("load_release".to_owned(), "blocker".to_owned())]
    );
    assert_eq!(
        rules_for(&v, &format!("pack:{}", code(&old))),
        [("pack_shelf_life".to_owned(), "blocker".to_owned())]
    );
    assert!(rules_for(&v, &format!("pack:{}", code(&fresh))).is_empty());
}

#[actix_web::test]
async fn a_spore_test_placed_in_time_meets_the_interval_while_it_incubates() {
    let app = TestApp::spawn().await;
    let o = &app.owner;
    // A gravity steriliser (no air-removal test), London time; baseline: weekly spore tests.
    let s = ok(app
        .post(
            &app.clinic_path("/sterilisers"),
            o,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "S-INC", "kind": "gravity"}),
        )
        .await)
    .await;
    let load = |number: i64, started: chrono::DateTime<Utc>| {
        json!({"steriliser_id": s["id"], "cycle_number": number,
            "program": {"name": "121", "temperature_c": 121.0, "hold_minutes": 30.0},
            "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(50)).to_rfc3339(),
            "peak_temperature_c": 122.0, "peak_pressure_kpa": 213.0, "hold_minutes": 31.0,
            "load_indicator": {"type": 5, "passed": true}, "packs": [{"contents": "tips"}]})
    };
    let place = |cycle: &Value| {
        json!({"steriliser_id": s["id"], "cycle_id": cycle["id"], "bi_product": "Attest", "bi_lot": "B",
            "placed_at": cycle["started_at"], "incubation": {"kind": "in_house", "hours": 24}})
    };
    // Read negative: a load seven days ago, so the next test is due today.
    let week_ago = Utc::now() - Duration::days(7);
    let first = ok(app
        .post(&app.clinic_path("/cycles"), o, &load(1, week_ago))
        .await)
    .await;
    let t = ok(app
        .post(&app.clinic_path("/spore-tests"), o, &place(&first))
        .await)
    .await;
    ok(app
        .post(
            &app.clinic_path(&format!("/spore-tests/{}/result", t["id"].as_str().unwrap())),
            o,
            &json!({"result": "negative", "control_result": "growth", "read_at": (week_ago + Duration::hours(24)).to_rfc3339()}),
        )
        .await)
    .await;
    let subject = format!("steriliser:{}", s["id"].as_str().unwrap());
    let due = rules_for(&view(&app).await, &subject);
    assert!(
        due.contains(&("spore_test_interval".into(), "warning".into())),
        "due today: {due:?}"
    );
    // Today's test is placed and incubating: the interval is met, nothing to warn about.
    let now = Utc::now() - Duration::minutes(55);
    let second = ok(app
        .post(&app.clinic_path("/cycles"), o, &load(2, now))
        .await)
    .await;
    ok(app
        .post(&app.clinic_path("/spore-tests"), o, &place(&second))
        .await)
    .await;
    let incubating = rules_for(&view(&app).await, &subject);
    assert!(
        !incubating
            .iter()
            .any(|(rule, _)| rule.starts_with("spore_test")),
        "{incubating:?}"
    );
}

#[actix_web::test]
async fn packs_from_a_load_run_while_the_spore_test_was_overdue_wait_for_the_next_negative() {
    let app = TestApp::spawn().await;
    let o = &app.owner;
    let s = ok(app
        .post(
            &app.clinic_path("/sterilisers"),
            o,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "S-OVD", "kind": "gravity"}),
        )
        .await)
    .await;
    let load = |number: i64, started: chrono::DateTime<Utc>, packs: usize| {
        json!({"steriliser_id": s["id"], "cycle_number": number,
            "program": {"name": "121", "temperature_c": 121.0, "hold_minutes": 30.0},
            "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(50)).to_rfc3339(),
            "peak_temperature_c": 122.0, "peak_pressure_kpa": 213.0, "hold_minutes": 31.0,
            "load_indicator": {"type": 5, "passed": true},
            "packs": (0..packs).map(|i| json!({"contents": format!("kit {i}")})).collect::<Vec<_>>()})
    };
    let spore = |cycle: &Value, read: chrono::DateTime<Utc>| {
        let (cycle, read) = (cycle.clone(), read);
        let app = &app;
        async move {
            let t = ok(app
                .post(&app.clinic_path("/spore-tests"), &app.owner, &json!({"steriliser_id": cycle["steriliser_id"], "cycle_id": cycle["id"], "bi_product": "Attest", "bi_lot": "B", "placed_at": cycle["started_at"], "incubation": {"kind": "in_house", "hours": 1}}))
                .await)
            .await;
            ok(app
                .post(
                    &app.clinic_path(&format!("/spore-tests/{}/result", t["id"].as_str().unwrap())),
                    &app.owner,
                    &json!({"result": "negative", "control_result": "growth", "read_at": read.to_rfc3339()}),
                )
                .await)
            .await;
        }
    };
    // The last negative test rode in a load ten days ago: weekly testing is overdue.
    let ten_days_ago = Utc::now() - Duration::days(10);
    let tested = ok(app
        .post(&app.clinic_path("/cycles"), o, &load(1, ten_days_ago, 0))
        .await)
    .await;
    spore(&tested, ten_days_ago + Duration::hours(2)).await;
    let today = Utc::now() - Duration::hours(3);
    let c = ok(app
        .post(&app.clinic_path("/cycles"), o, &load(2, today, 1))
        .await)
    .await;
    let code = c["packs"][0]["code"].as_str().unwrap().to_owned();
    let pack = ok(app
        .get(&app.clinic_path(&format!("/packs/{code}")), o)
        .await)
    .await;
    assert_eq!(pack["state"], "pending", "{pack}");
    assert!(
        pack["state_reason"].as_str().unwrap().contains("overdue"),
        "{pack}"
    );
    let held = view(&app).await;
    assert!(
        held["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "spore_test_interval"
                && f["subject"] == format!("pack:{code}").as_str()
                && f["severity"] == "blocker"),
        "{held}"
    );
    // A spore test in a later load reads negative: the pack is released.
    let retest = ok(app
        .post(
            &app.clinic_path("/cycles"),
            o,
            &load(3, today + Duration::minutes(60), 0),
        )
        .await)
    .await;
    spore(&retest, Utc::now()).await;
    let pack = ok(app
        .get(&app.clinic_path(&format!("/packs/{code}")), o)
        .await)
    .await;
    assert_eq!(pack["state"], "released", "{pack}");
    assert!(!view(&app).await["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["subject"] == format!("pack:{code}").as_str()));
}

/// A clinic whose jurisdiction profile is not installed is not judged by another one: every
/// answer that needs the profile says which profile is missing.
#[actix_web::test]
async fn a_clinic_whose_profile_is_not_installed_gets_an_error_that_names_it() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE clinics SET jurisdiction = 'xx-gone' WHERE id = '{}'",
            app.clinic_id
        ))
        .unwrap();
    for path in ["/compliance", "/cycles"] {
        let res = app.get(&app.clinic_path(path), &app.owner).await;
        let body = common::assert_problem(res, 500, None).await;
        assert_eq!(
            body["type"], "https://aseptic.dev/problems/misconfigured",
            "{body}"
        );
        assert!(
            body["detail"].as_str().unwrap().contains("xx-gone"),
            "{body}"
        );
    }
}

/// California wants a type 5 integrator in every load: a load with a type 4 indicator is not
/// released, and the pack view and the compliance view say the same.
#[actix_web::test]
async fn a_load_below_the_jurisdictions_indicator_type_is_held_everywhere() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE clinics SET jurisdiction = 'us-ca' WHERE id = '{}'",
            app.clinic_id
        ))
        .unwrap();
    let o = &app.owner;
    let s = ok(app
        .post(
            &app.clinic_path("/sterilisers"),
            o,
            &json!({"make": "Tuttnauer", "model": "2340M", "serial_number": "T1", "kind": "gravity"}),
        )
        .await)
    .await;
    let sid = s["id"].as_str().unwrap();
    let started = common::load_time_hours_ago(2);
    common::qualify_steriliser(&app, sid, 1, started).await;
    let load = |n: i64, indicator: i64| {
        json!({
            "steriliser_id": sid, "cycle_number": n, "program": {"name": "121", "temperature_c": 121.0, "hold_minutes": 30.0},
            "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(50)).to_rfc3339(),
            "peak_temperature_c": 122.0, "peak_pressure_kpa": 213.0, "hold_minutes": 31.0,
            "load_indicator": {"type": indicator, "passed": true}, "packs": [{"contents": "grips"}]})
    };
    let type4 = ok(app.post(&app.clinic_path("/cycles"), o, &load(2, 4)).await).await;
    let type5 = ok(app.post(&app.clinic_path("/cycles"), o, &load(3, 5)).await).await;
    let code = |c: &Value| c["packs"][0]["code"].as_str().unwrap().to_owned();
    assert_eq!(type4["packs"][0]["state"], "quarantined", "{type4}");
    assert!(type4["packs"][0]["state_reason"]
        .as_str()
        .unwrap()
        .contains("type 5"));
    assert_eq!(type5["packs"][0]["state"], "released", "{type5}");
    let v = view(&app).await;
    assert_eq!(
        rules_for(&v, &format!("pack:{}", code(&type4))),
        [("load_release".to_owned(), "blocker".to_owned())]
    );
    assert!(rules_for(&v, &format!("pack:{}", code(&type5))).is_empty());
}

/// Oregon wants spore tests analysed by an independent laboratory: an in-house negative does
/// not qualify the steriliser; a laboratory's negative does. An in-house positive still fails.
#[actix_web::test]
async fn where_a_laboratory_must_read_spore_tests_an_in_house_negative_does_not_count() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE clinics SET jurisdiction = 'us-or' WHERE id = '{}'",
            app.clinic_id
        ))
        .unwrap();
    let o = &app.owner;
    let s = ok(app
        .post(
            &app.clinic_path("/sterilisers"),
            o,
            &json!({"make": "Tuttnauer", "model": "2340M", "serial_number": "T-OR", "kind": "gravity"}),
        )
        .await)
    .await;
    let sid = s["id"].as_str().unwrap();
    let started = common::load_time_hours_ago(3);
    // In-house only.
    common::qualify_steriliser(&app, sid, 1, started).await;
    let load = |n: i64, at: chrono::DateTime<Utc>, packs: usize| {
        json!({
            "steriliser_id": sid, "cycle_number": n, "program": {"name": "121", "temperature_c": 121.0, "hold_minutes": 30.0},
            "started_at": at.to_rfc3339(), "finished_at": (at + Duration::minutes(50)).to_rfc3339(),
            "peak_temperature_c": 122.0, "peak_pressure_kpa": 213.0, "hold_minutes": 31.0,
            "load_indicator": {"type": 5, "passed": true}, "packs": vec![json!({"contents": "grips"}); packs]})
    };
    let c = ok(app
        .post(&app.clinic_path("/cycles"), o, &load(2, started, 1))
        .await)
    .await;
    assert_eq!(c["packs"][0]["state"], "pending", "{c}");
    let v = view(&app).await;
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["subject"] == format!("steriliser:{sid}").as_str()
                && f["message"]
                    .as_str()
                    .unwrap()
                    .contains("read by a laboratory")),
        "{v}"
    );
    // A mail-in test in an earlier load reads negative at the laboratory.
    let lab_load = ok(app
        .post(
            &app.clinic_path("/cycles"),
            o,
            &load(3, started - Duration::hours(30), 0),
        )
        .await)
    .await;
    let placed = started - Duration::hours(30) + Duration::minutes(1);
    let test = ok(app
        .post(&app.clinic_path("/spore-tests"), o, &json!({
            "steriliser_id": sid, "cycle_id": lab_load["id"], "bi_product": "Attest 1292", "bi_lot": "L",
            "placed_at": placed.to_rfc3339(),
            "incubation": {"kind": "mail_in", "posted_on": placed.date_naive().to_string(),
                           "lab_name": "Oregon Sterilizer Monitoring", "lab_deadline": (placed + Duration::days(7)).date_naive().to_string()}}))
        .await)
    .await;
    ok(app
        .post(
            &app.clinic_path(&format!("/spore-tests/{}/result", test["id"].as_str().unwrap())),
            o,
            &json!({"result": "negative", "control_result": "growth", "read_at": (started - Duration::hours(1)).to_rfc3339(), "lab_reference": "OSM-1"}),
        )
        .await)
    .await;
    let pack = ok(app
        .get(
            &app.clinic_path(&format!(
                "/packs/{}",
                c["packs"][0]["code"].as_str().unwrap()
            )),
            o,
        )
        .await)
    .await;
    assert_eq!(pack["state"], "released", "{pack}");
}

/// A load run before that day's air-removal test stays a finding after the clinic's midnight,
/// as long as its pack is on the shelf; in a zone far east of UTC as in London.
#[actix_web::test]
async fn a_load_before_the_days_air_removal_test_is_still_found_the_next_day() {
    use diesel::connection::SimpleConnection;
    for zone in ["Europe/London", "Pacific/Auckland"] {
        let app = TestApp::spawn().await;
        app.raw_connection()
            .batch_execute(&format!(
                "UPDATE clinics SET timezone = '{zone}' WHERE id = '{}'",
                app.clinic_id
            ))
            .unwrap();
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        let o = &app.owner;
        let s = ok(app
            .post(
                &app.clinic_path("/sterilisers"),
                o,
                &json!({"make": "W&H", "model": "Lisa", "serial_number": "S-AR", "kind": "pre_vacuum"}),
            )
            .await)
        .await;
        let sid = s["id"].as_str().unwrap();
        // Yesterday at 10:00, clinic time: the load, then the day's test an hour after it.
        let yesterday = Utc::now().with_timezone(&tz).date_naive() - Duration::days(1);
        let started = yesterday
            .and_hms_opt(10, 0, 0)
            .unwrap()
            .and_local_timezone(tz)
            .earliest()
            .unwrap()
            .with_timezone(&Utc);
        common::qualify_steriliser(&app, sid, 1, started - Duration::days(3)).await;
        let c = ok(app
            .post(&app.clinic_path("/cycles"), o, &json!({
                "steriliser_id": sid, "cycle_number": 2,
                "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
                "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(40)).to_rfc3339(),
                "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
                "load_indicator": {"type": 5, "passed": true}, "packs": [{"contents": "grips"}]}))
            .await)
        .await;
        ok(app
            .post(&app.clinic_path("/air-removal-tests"), o, &json!({"steriliser_id": sid,
                "performed_at": (started + Duration::hours(1)).to_rfc3339(), "test_type": "bowie_dick", "passed": true}))
            .await)
        .await;
        let code = c["packs"][0]["code"].as_str().unwrap().to_owned();
        let v = view(&app).await;
        assert_eq!(
            rules_for(&v, &format!("pack:{code}")),
            [("daily_air_removal".to_owned(), "blocker".to_owned())],
            "{zone}: {v}"
        );
    }
}
