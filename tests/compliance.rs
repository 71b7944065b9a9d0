//! The compliance view: findings from the clinic's records and its jurisdiction profile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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
    // Kept short so that, but for the first minutes after midnight, it all falls on today.
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
        [("lot_recalled".to_owned(), "warning".to_owned())]
    );
    assert_eq!(
        rules_for(
            &v,
            &format!("incident:{}", incident["id"].as_str().unwrap())
        )
        .len(),
        2
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
