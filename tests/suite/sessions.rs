//! Client sessions: checklist, packs, lots, the start rule with every refusal, override, trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::{Duration, Utc};
use common::{assert_problem, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

async fn created(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status == 201 || status == 200, "{status}: {body}");
    body
}

/// Everything a session needs, all in order: a released pack, a usable lot with a GTIN, a verified
/// technician, an adult client, and a session with every checklist item done.
struct Setup {
    steriliser: String,
    pack: String,
    lot: String,
    client: String,
    session: String,
    credentials: Vec<String>,
}

async fn setup(app: &TestApp) -> Setup {
    setup_with(app, true).await
}

/// A session ready to start; `with_pigment: false` leaves out the pigment lot that the clinic's
/// jurisdiction requires on every session.
async fn setup_with(app: &TestApp, with_pigment: bool) -> Setup {
    let o = &app.owner;
    let steriliser = created(
        app.post(
            &app.clinic_path("/sterilisers"),
            o,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "S1", "kind": "pre_vacuum"}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = common::load_time_hours_ago(6);
    common::qualify_steriliser(app, &steriliser, 1, started).await;
    let cycle = created(app.post(&app.clinic_path("/cycles"), o, &json!({
        "steriliser_id": steriliser, "cycle_number": 2,
        "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
        "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(40)).to_rfc3339(),
        "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
        "load_indicator": {"type": 5, "passed": true},
        "packs": [{"contents": "grips"}, {"contents": "tips"}]})).await).await;
    let pack = cycle["packs"][0]["code"].as_str().unwrap().to_owned();
    let lot = created(app.post(&app.clinic_path("/lots"), o, &json!({
        "kind": "needle_cartridge", "manufacturer": "Cheyenne", "product_name": "Craft", "gtin": "09506000134352",
        "lot_number": "ABC123", "expiry_date": (Utc::now() + Duration::days(300)).date_naive().to_string(),
        "sterilisation_method": "ethylene_oxide", "received_on": (Utc::now() - Duration::days(3)).date_naive().to_string(),
        "quantity_received": 20})).await).await["id"].as_str().unwrap().to_owned();
    let credentials = common::verified_credentials(app, &app.technician.user_id).await;
    let client = created(app.post(&app.clinic_path("/clients"), &app.technician, &json!({"name": "Alex Client", "contact": "+44 7700 900123", "date_of_birth": "1990-04-02"})).await).await["id"].as_str().unwrap().to_owned();
    let session = created(
        app.post(
            &app.clinic_path("/sessions"),
            &app.technician,
            &json!({
        "client_id": client, "station": "Chair 2", "procedure": "SMP session 1 of 3, crown",
        "planned_at": Utc::now().to_rfc3339()}),
        )
        .await,
    )
    .await;
    let session_id = session["id"].as_str().unwrap().to_owned();
    let answers: Vec<Value> = session["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            let value = match line["key"].as_str().unwrap() {
                "cartridge_lot" => json!(lot),
                "surface_disinfectant" => json!("Mikrozid AF liquid"),
                "contact_time" => json!(60),
                _ => json!(true),
            };
            json!({"item_key": line["key"], "value": value})
        })
        .collect();
    created(
        app.post(
            &app.clinic_path(&format!("/sessions/{session_id}/answers")),
            &app.technician,
            &json!({"answers": answers}),
        )
        .await,
    )
    .await;
    created(
        app.post(
            &app.clinic_path(&format!("/sessions/{session_id}/packs")),
            &app.technician,
            &json!({"code": pack.to_lowercase()}),
        )
        .await,
    )
    .await;
    created(
        app.post(
            &app.clinic_path(&format!("/sessions/{session_id}/lots")),
            &app.technician,
            &json!({"barcode": "(01)09506000134352(17)290101(10)ABC123"}),
        )
        .await,
    )
    .await;
    if with_pigment {
        let pigment = created(app.post(&app.clinic_path("/lots"), o, &json!({
            "kind": "pigment", "manufacturer": "Scalp Ink Co", "product_name": "Dark Brown 3",
            "lot_number": "P-77", "expiry_date": (Utc::now() + Duration::days(400)).date_naive().to_string(),
            "sterilisation_method": "gamma", "received_on": (Utc::now() - Duration::days(3)).date_naive().to_string(),
            "quantity_received": 5})).await).await["id"].as_str().unwrap().to_owned();
        created(
            app.post(
                &app.clinic_path(&format!("/sessions/{session_id}/lots")),
                &app.technician,
                &json!({"lot_id": pigment}),
            )
            .await,
        )
        .await;
    }
    Setup {
        steriliser,
        pack,
        lot,
        client,
        session: session_id,
        credentials,
    }
}

async fn start(app: &TestApp, s: &Setup) -> reqwest::Response {
    app.post(
        &app.clinic_path(&format!("/sessions/{}/start", s.session)),
        &app.technician,
        &json!({}),
    )
    .await
}

/// Starts and expects a refusal naming `field`.
async fn refused_for(app: &TestApp, s: &Setup, field: &str) -> Value {
    let problem = assert_problem(start(app, s).await, 409, Some(field)).await;
    assert_eq!(problem["type"], "https://aseptic.dev/problems/refused");
    let trace: Value = app
        .get(
            &app.clinic_path(&format!("/sessions/{}", s.session)),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        trace["status"], "planned",
        "a refused start changes nothing"
    );
    problem
}

#[actix_web::test]
async fn a_ready_session_starts_completes_and_traces_everything() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let trace = created(start(&app, &s).await).await;
    assert_eq!(trace["status"], "in_progress");
    assert!(trace["start"]["override_reason"].is_null());
    assert_eq!(
        trace["technician_at_start"]["eligibility"]["eligible"],
        true
    );
    // The pack is now used.
    let pack: Value = app
        .get(&app.clinic_path(&format!("/packs/{}", s.pack)), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pack["state"], "used");

    assert_problem(start(&app, &s).await, 409, None).await;
    let done = created(
        app.post(
            &app.clinic_path(&format!("/sessions/{}/complete", s.session)),
            &app.technician,
            &json!({"notes": "healed well"}),
        )
        .await,
    )
    .await;
    assert_eq!(done["status"], "completed");
    assert_problem(
        app.post(
            &app.clinic_path(&format!("/sessions/{}/complete", s.session)),
            &app.technician,
            &json!({}),
        )
        .await,
        409,
        None,
    )
    .await;

    let trace: Value = app
        .get(
            &app.clinic_path(&format!("/sessions/{}", s.session)),
            &app.inspector,
        )
        .await
        .json()
        .await
        .unwrap();
    // The inspector reads the client by pseudonymous id; staff read the name.
    assert!(trace["client_name"].is_null(), "{trace}");
    let staff_view: Value = app
        .get(
            &app.clinic_path(&format!("/sessions/{}", s.session)),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(staff_view["client_name"], "Alex Client");
    assert_eq!(trace["checklist_version"], 1);
    assert!(trace["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["done"] == true));
    assert_eq!(trace["packs"][0]["code"], s.pack.as_str());
    assert_eq!(
        trace["packs"][0]["state"], "released",
        "as it stood when opened"
    );
    assert_eq!(trace["lots"][0]["id"], s.lot.as_str());
    assert_eq!(trace["lots"][0]["lot_number"], "ABC123");
    assert_eq!(trace["completion"]["notes"], "healed well");
    // Setup cannot change after the start.
    let late = app
        .post(
            &app.clinic_path(&format!("/sessions/{}/answers", s.session)),
            &app.technician,
            &json!({"answers": [{"item_key": "gloves", "value": true}]}),
        )
        .await;
    assert_problem(late, 409, None).await;
    // A pack opened once cannot be opened for another session.
    let other = created(app.post(&app.clinic_path("/sessions"), &app.technician, &json!({"client_id": s.client, "station": "2", "procedure": "p", "planned_at": Utc::now().to_rfc3339()})).await).await;
    let reuse = app
        .post(
            &app.clinic_path(&format!(
                "/sessions/{}/packs",
                other["id"].as_str().unwrap()
            )),
            &app.technician,
            &json!({"code": s.pack}),
        )
        .await;
    assert_problem(reuse, 409, None).await;
}

#[actix_web::test]
async fn start_is_refused_for_an_unfinished_checklist_item() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    created(
        app.post(
            &app.clinic_path(&format!("/sessions/{}/answers", s.session)),
            &app.technician,
            &json!({"answers": [{"item_key": "sharps_container", "value": false}]}),
        )
        .await,
    )
    .await;
    refused_for(&app, &s, "checklist.sharps_container").await;
}

#[actix_web::test]
async fn start_is_refused_for_a_pack_that_is_not_released() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let cycle_id = app
        .get(&app.clinic_path(&format!("/packs/{}", s.pack)), &app.owner)
        .await
        .json::<Value>()
        .await
        .unwrap()["cycle_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A spore test rides in the pack's load and has not been read: the pack is pending.
    created(app.post(&app.clinic_path("/spore-tests"), &app.owner, &json!({"steriliser_id": s.steriliser, "cycle_id": cycle_id, "bi_product": "Attest", "bi_lot": "B1", "placed_at": (Utc::now() - Duration::hours(6)).to_rfc3339(), "incubation": {"kind": "in_house", "hours": 24}})).await).await;
    let problem = refused_for(&app, &s, &format!("packs.{}", s.pack)).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("pending"),
        "{problem}"
    );
}

#[actix_web::test]
async fn start_is_refused_when_the_packs_steriliser_is_quarantined() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let cycle_id = app
        .get(&app.clinic_path(&format!("/packs/{}", s.pack)), &app.owner)
        .await
        .json::<Value>()
        .await
        .unwrap()["cycle_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bi = created(app.post(&app.clinic_path("/spore-tests"), &app.owner, &json!({"steriliser_id": s.steriliser, "cycle_id": cycle_id, "bi_product": "Attest", "bi_lot": "B1", "placed_at": (Utc::now() - Duration::hours(6)).to_rfc3339(), "incubation": {"kind": "in_house", "hours": 24}})).await).await;
    created(app.post(&app.clinic_path(&format!("/spore-tests/{}/result", bi["id"].as_str().unwrap())), &app.owner, &json!({"result": "positive", "control_result": "growth", "read_at": Utc::now().to_rfc3339()})).await).await;
    let problem = refused_for(&app, &s, &format!("packs.{}", s.pack)).await;
    let reasons: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("quarantined after a positive spore test")),
        "{reasons:?}"
    );
}

#[actix_web::test]
async fn start_is_refused_for_an_expired_lot() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let yesterday = (Utc::now() - Duration::days(1)).date_naive().to_string();
    let received = (Utc::now() - Duration::days(3)).date_naive().to_string();
    created(app.post(&app.clinic_path(&format!("/lots/{}/amendments", s.lot)), &app.owner, &json!({"reason": "label misread", "changes": {"expiry_date": yesterday, "received_on": received}})).await).await;
    refused_for(&app, &s, &format!("lots.{}", s.lot)).await;
}

#[actix_web::test]
async fn start_is_refused_for_a_recalled_lot() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    created(
        app.post(
            &app.clinic_path(&format!("/lots/{}/recall", s.lot)),
            &app.owner,
            &json!({"reason": "sterility breach", "reference": "R-1"}),
        )
        .await,
    )
    .await;
    let problem = refused_for(&app, &s, &format!("lots.{}", s.lot)).await;
    assert!(problem["detail"].as_str().unwrap().contains("recalled"));
}

#[actix_web::test]
async fn start_is_refused_for_a_technician_who_is_not_eligible() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    // Correcting the licence makes a new, unverified version.
    created(
        app.post(
            &app.clinic_path(&format!("/credentials/{}/amendments", s.credentials[2])),
            &app.owner,
            &json!({"reason": "new card", "changes": {"number": "BA-2"}}),
        )
        .await,
    )
    .await;
    let problem = refused_for(&app, &s, "technician").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("not verified"),
        "{problem}"
    );
}

#[actix_web::test]
async fn start_is_refused_for_an_under_age_client() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let dob = (Utc::now() - Duration::days(17 * 365))
        .date_naive()
        .to_string();
    created(
        app.post(
            &app.clinic_path(&format!("/clients/{}/amendments", s.client)),
            &app.technician,
            &json!({"reason": "ID checked", "changes": {"date_of_birth": dob}}),
        )
        .await,
    )
    .await;
    refused_for(&app, &s, "client").await;
    // Where the jurisdiction allows an exception (the baseline, Texas's cover-up with a parent's
    // consent), an owner may start with the reason.
    let overridden = app
        .post(
            &app.clinic_path(&format!("/sessions/{}/start", s.session)),
            &app.owner,
            &json!({"override_reason": "covering an existing tattoo; mother present and signed the consent"}),
        )
        .await;
    assert_eq!(
        overridden.status(),
        201,
        "{}",
        overridden.text().await.unwrap()
    );
}

/// England's Tattooing of Minors Act 1969 has no exception: no one may start the session.
#[actix_web::test]
async fn an_absolute_minimum_age_refuses_even_an_owner() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE clinics SET jurisdiction = 'gb-eng' WHERE id = '{}'",
            app.clinic_id
        ))
        .unwrap();
    let dob = (Utc::now() - Duration::days(17 * 365))
        .date_naive()
        .to_string();
    created(
        app.post(
            &app.clinic_path(&format!("/clients/{}/amendments", s.client)),
            &app.technician,
            &json!({"reason": "ID checked", "changes": {"date_of_birth": dob}}),
        )
        .await,
    )
    .await;
    let refused = app
        .post(
            &app.clinic_path(&format!("/sessions/{}/start", s.session)),
            &app.owner,
            &json!({"override_reason": "parent consents"}),
        )
        .await;
    let problem = assert_problem(refused, 409, Some("client")).await;
    assert!(
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "client"
                && e["reason"]
                    .as_str()
                    .unwrap()
                    .contains("Tattooing of Minors Act 1969")),
        "{problem}"
    );
}

#[actix_web::test]
async fn start_is_refused_without_a_lot_kind_the_jurisdiction_requires() {
    let app = TestApp::spawn().await;
    let s = setup_with(&app, false).await;
    let problem = refused_for(&app, &s, "lots").await;
    assert!(
        problem["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("pigment lot"),
        "{problem}"
    );
}

#[actix_web::test]
async fn every_reason_comes_at_once_and_only_an_owner_may_override() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    created(
        app.post(
            &app.clinic_path(&format!("/lots/{}/recall", s.lot)),
            &app.owner,
            &json!({"reason": "r", "reference": "R"}),
        )
        .await,
    )
    .await;
    created(
        app.post(
            &app.clinic_path(&format!("/sessions/{}/answers", s.session)),
            &app.technician,
            &json!({"answers": [{"item_key": "gloves", "value": false}]}),
        )
        .await,
    )
    .await;
    let problem = refused_for(&app, &s, "checklist.gloves").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");

    let path = app.clinic_path(&format!("/sessions/{}/start", s.session));
    assert_problem(
        app.post(
            &path,
            &app.technician,
            &json!({"override_reason": "client waiting"}),
        )
        .await,
        403,
        None,
    )
    .await;
    let trace = created(
        app.post(
            &path,
            &app.owner,
            &json!({"override_reason": "lot replaced from sealed stock; gloves changed"}),
        )
        .await,
    )
    .await;
    assert_eq!(trace["status"], "in_progress");
    assert_eq!(
        trace["start"]["override_reason"],
        "lot replaced from sealed stock; gloves changed"
    );
    assert_eq!(
        trace["start"]["overridden_refusals"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let events = app.audit_events().await;
    let started = events
        .iter()
        .find(|e| e["action"] == "session.started_with_override")
        .unwrap();
    assert_eq!(
        started["reason"],
        "lot replaced from sealed stock; gloves changed"
    );
}

#[actix_web::test]
async fn the_trace_keeps_credentials_and_lots_as_they_were_on_the_day() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    created(start(&app, &s).await).await;
    let before: Value = app
        .get(
            &app.clinic_path(&format!("/sessions/{}", s.session)),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    // Later corrections to the lot and the licence...
    created(
        app.post(
            &app.clinic_path(&format!("/lots/{}/amendments", s.lot)),
            &app.owner,
            &json!({"reason": "typo", "changes": {"lot_number": "ABC124"}}),
        )
        .await,
    )
    .await;
    created(
        app.post(
            &app.clinic_path(&format!("/credentials/{}/amendments", s.credentials[2])),
            &app.owner,
            &json!({"reason": "renewed", "changes": {"number": "BA-9"}}),
        )
        .await,
    )
    .await;
    // ...do not rewrite what the session used.
    let after: Value = app
        .get(
            &app.clinic_path(&format!("/sessions/{}", s.session)),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["lots"][0]["lot_number"], "ABC123");
    assert_eq!(after["lots"][0]["version"], 1);
    let licence = after["technician_at_start"]["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "licence")
        .unwrap();
    assert_eq!(licence["number"], "BA-1");
    assert_eq!(before, after);
}

#[actix_web::test]
async fn bad_session_input_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let before = app.audit_events().await.len();
    let session = |rest: &str| app.clinic_path(&format!("/sessions/{}{rest}", s.session));
    let wrong_item = app
        .post(
            &session("/answers"),
            &app.technician,
            &json!({"answers": [{"item_key": "not_an_item", "value": true}]}),
        )
        .await;
    assert_problem(wrong_item, 422, Some("answers[0].item_key")).await;
    let wrong_type = app
        .post(
            &session("/answers"),
            &app.technician,
            &json!({"answers": [{"item_key": "contact_time", "value": "long"}]}),
        )
        .await;
    assert_problem(wrong_type, 422, Some("answers[0].value")).await;
    let unknown = assert_problem(
        app.post(
            &session("/packs"),
            &app.technician,
            &json!({"code": "ZZZ-ZZZ"}),
        )
        .await,
        404,
        Some("code"),
    )
    .await;
    // A pack of another clinic answers exactly like an unknown one.
    let other_steriliser = created(
        app.post(
            &format!("/api/v1/clinics/{}/sterilisers", app.other_clinic_id),
            &app.other_owner,
            &json!({"make": "X", "model": "Y", "serial_number": "O1", "kind": "gravity"}),
        )
        .await,
    )
    .await;
    let t = Utc::now() - Duration::hours(3);
    let other_cycle = created(app.post(&format!("/api/v1/clinics/{}/cycles", app.other_clinic_id), &app.other_owner, &json!({
        "steriliser_id": other_steriliser["id"], "cycle_number": 1, "program": {"name": "121", "temperature_c": 121.0, "hold_minutes": 20.0},
        "started_at": t.to_rfc3339(), "finished_at": (t + Duration::minutes(50)).to_rfc3339(), "peak_temperature_c": 122.0,
        "peak_pressure_kpa": 211.0, "hold_minutes": 21.0, "load_indicator": {"type": 5, "passed": true}, "packs": [{"contents": "x"}]})).await).await;
    let foreign_code = other_cycle["packs"][0]["code"].as_str().unwrap();
    let foreign = assert_problem(
        app.post(
            &session("/packs"),
            &app.technician,
            &json!({"code": foreign_code}),
        )
        .await,
        404,
        Some("code"),
    )
    .await;
    assert_eq!(unknown["errors"], foreign["errors"]);
    let other_client = created(
        app.post(
            &format!("/api/v1/clinics/{}/clients", app.other_clinic_id),
            &app.other_owner,
            &json!({"name": "B", "contact": "b", "date_of_birth": "1980-01-01"}),
        )
        .await,
    )
    .await;
    let foreign_client = app.post(&app.clinic_path("/sessions"), &app.technician, &json!({"client_id": other_client["id"], "station": "1", "procedure": "p", "planned_at": Utc::now().to_rfc3339()})).await;
    assert_problem(foreign_client, 404, Some("client_id")).await;
    assert_problem(
        app.post(
            &session("/lots"),
            &app.technician,
            &json!({"barcode": "(01)09506000134352(10)NOPE"}),
        )
        .await,
        404,
        Some("barcode"),
    )
    .await;
    assert_problem(
        app.post(&session("/lots"), &app.technician, &json!({}))
            .await,
        422,
        Some("lot_id"),
    )
    .await;
    assert_problem(
        app.post(&session("/complete"), &app.technician, &json!({}))
            .await,
        409,
        None,
    )
    .await;
    assert_problem(
        app.post(&session("/start"), &app.inspector, &json!({}))
            .await,
        403,
        None,
    )
    .await;
    assert_eq!(
        app.audit_events().await.len(),
        before,
        "nothing was written to this clinic"
    );
}

#[actix_web::test]
async fn a_checklist_change_makes_a_new_version_and_old_sessions_keep_theirs() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let trace: Value = app
        .get(
            &app.clinic_path(&format!("/sessions/{}", s.session)),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    let template = trace["checklist_id"].as_str().unwrap();
    let current: Value = app
        .get(
            &app.clinic_path(&format!("/checklists/{template}")),
            &app.technician,
        )
        .await
        .json()
        .await
        .unwrap();
    let mut items = current["items"].as_array().unwrap().clone();
    items.push(json!({"key": "aftercare_given", "text": "Aftercare leaflet handed over", "required": true, "answer": "tick"}));
    assert_problem(
        app.post(
            &app.clinic_path(&format!("/checklists/{template}/amendments")),
            &app.technician,
            &json!({"reason": "x", "changes": {"items": items}}),
        )
        .await,
        403,
        None,
    )
    .await;
    let v2 = created(
        app.post(
            &app.clinic_path(&format!("/checklists/{template}/amendments")),
            &app.owner,
            &json!({"reason": "council guidance", "changes": {"items": items}}),
        )
        .await,
    )
    .await;
    assert_eq!(v2["version"], 2);
    let old: Value = app
        .get(
            &app.clinic_path(&format!("/sessions/{}", s.session)),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(old["checklist_version"], 1);
    assert!(old["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["key"] != "aftercare_given"));
    let new = created(app.post(&app.clinic_path("/sessions"), &app.technician, &json!({"client_id": s.client, "station": "1", "procedure": "p", "planned_at": Utc::now().to_rfc3339()})).await).await;
    assert_eq!(new["checklist_version"], 2);
    let bad = app.post(&app.clinic_path("/checklists"), &app.owner, &json!({"name": "x", "items": [{"key": "A B", "text": "t", "required": true, "answer": "tick"}]})).await;
    assert_problem(bad, 422, Some("items[0].key")).await;
}

#[actix_web::test]
async fn another_clinic_sees_and_changes_no_session_client_or_checklist() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let template: Value = app
        .get(&app.clinic_path("/checklists"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let template = template["items"][0]["id"].as_str().unwrap().to_owned();
    let before = app.audit_events().await.len();
    let sid = &s.session;
    let routes: Vec<(Method, String, Value)> = vec![
        (Method::GET, "/sessions".into(), Value::Null),
        (
            Method::POST,
            "/sessions".into(),
            json!({"client_id": s.client, "station": "1", "procedure": "p", "planned_at": Utc::now().to_rfc3339()}),
        ),
        (Method::GET, format!("/sessions/{sid}"), Value::Null),
        (
            Method::POST,
            format!("/sessions/{sid}/answers"),
            json!({"answers": [{"item_key": "gloves", "value": true}]}),
        ),
        (
            Method::POST,
            format!("/sessions/{sid}/packs"),
            json!({"code": s.pack}),
        ),
        (
            Method::POST,
            format!("/sessions/{sid}/lots"),
            json!({"lot_id": s.lot}),
        ),
        (Method::POST, format!("/sessions/{sid}/start"), json!({})),
        (Method::POST, format!("/sessions/{sid}/complete"), json!({})),
        (
            Method::GET,
            format!("/sessions/{sid}/readiness"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/sessions/{sid}/pack-removals"),
            json!({"code": s.pack, "reason": "x"}),
        ),
        (Method::GET, "/readiness".into(), Value::Null),
        (Method::GET, "/clients".into(), Value::Null),
        (
            Method::POST,
            "/clients".into(),
            json!({"name": "x", "contact": "y", "date_of_birth": "1990-01-01"}),
        ),
        (Method::GET, format!("/clients/{}", s.client), Value::Null),
        (
            Method::POST,
            format!("/clients/{}/amendments", s.client),
            json!({"reason": "x", "changes": {"name": "y"}}),
        ),
        (Method::GET, "/checklists".into(), Value::Null),
        (
            Method::POST,
            "/checklists".into(),
            json!({"name": "x", "items": [{"key": "a", "text": "t", "required": true, "answer": "tick"}]}),
        ),
        (Method::GET, format!("/checklists/{template}"), Value::Null),
        (
            Method::POST,
            format!("/checklists/{template}/amendments"),
            json!({"reason": "x", "changes": {"name": "y"}}),
        ),
    ];
    common::assert_foreign_looks_missing(&app, &routes).await;
    let other = |rest: &str| format!("/api/v1/clinics/{}{rest}", app.other_clinic_id);
    for rest in [
        format!("/sessions/{sid}"),
        format!("/clients/{}", s.client),
        format!("/checklists/{template}"),
    ] {
        assert_problem(app.get(&other(&rest), &app.other_owner).await, 404, None).await;
    }
    assert_eq!(app.audit_events().await.len(), before);
}

/// One judgement of packs: what the start refuses is a blocker on the view, and a refused start
/// leaves the pack on the shelf.
#[actix_web::test]
async fn the_start_and_the_view_agree_on_every_pack() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let o = &app.owner;
    let register = |serial: &'static str, kind: &'static str| {
        let app = &app;
        async move {
            created(
                app.post(
                    &app.clinic_path("/sterilisers"),
                    &app.owner,
                    &json!({"make": "W&H", "model": "Lisa", "serial_number": serial, "kind": kind}),
                )
                .await,
            )
            .await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let load = |steriliser: &str, n: i64, started: chrono::DateTime<Utc>| {
        json!({
            "steriliser_id": steriliser, "cycle_number": n,
            "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
            "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(40)).to_rfc3339(),
            "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
            "load_indicator": {"type": 5, "passed": true}, "packs": [{"contents": "grips"}]})
    };
    let view = || async {
        app.get(&app.clinic_path("/compliance"), &app.owner)
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    let finding = |v: &Value, subject: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["subject"] == subject)
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_owned(),
                    f["severity"].as_str().unwrap().to_owned(),
                )
            })
    };
    let pack_state = |code: String| {
        let app = &app;
        async move {
            app.get(&app.clinic_path(&format!("/packs/{code}")), &app.owner)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    // A steriliser never spore-tested: its pack is held, the view says so as a blocker, and the
    // start refuses it.
    let untested = register("S-NEW", "gravity").await;
    let c = created(
        app.post(
            &app.clinic_path("/cycles"),
            o,
            &load(&untested, 1, common::load_time_hours_ago(3)),
        )
        .await,
    )
    .await;
    let held = c["packs"][0]["code"].as_str().unwrap().to_owned();
    assert_eq!(pack_state(held.clone()).await["state"], "pending");
    let v = view().await;
    assert_eq!(
        finding(&v, &format!("pack:{held}")),
        Some(("spore_test_interval".into(), "blocker".into())),
        "{v}"
    );
    assert_eq!(
        finding(&v, &format!("steriliser:{untested}")),
        Some(("spore_test_interval".into(), "blocker".into())),
        "{v}"
    );

    // A load run before that day's air-removal test: the test recorded after it does not clear
    // it; its pack is quarantined and stays a blocker on the shelf.
    let late = register("S-LATE", "pre_vacuum").await;
    common::qualify_steriliser(&app, &late, 1, Utc::now() - Duration::days(5)).await;
    let started = common::load_time_hours_ago(2);
    let c = created(
        app.post(&app.clinic_path("/cycles"), o, &load(&late, 2, started))
            .await,
    )
    .await;
    let untested_load = c["packs"][0]["code"].as_str().unwrap().to_owned();
    created(app.post(&app.clinic_path("/air-removal-tests"), o, &json!({"steriliser_id": late,
        "performed_at": (started + Duration::minutes(45)).to_rfc3339(), "test_type": "bowie_dick", "passed": true})).await).await;
    let pack = pack_state(untested_load.clone()).await;
    assert_eq!(pack["state"], "quarantined", "{pack}");
    assert!(
        pack["state_reason"]
            .as_str()
            .unwrap()
            .contains("air-removal"),
        "{pack}"
    );
    assert_eq!(
        finding(&view().await, &format!("pack:{untested_load}")),
        Some(("daily_air_removal".into(), "blocker".into()))
    );

    // Both scanned into the session: the start refuses each, and a refused start leaves them on
    // the shelf, not used.
    for code in [&held, &untested_load] {
        created(
            app.post(
                &app.clinic_path(&format!("/sessions/{}/packs", s.session)),
                &app.technician,
                &json!({"code": code}),
            )
            .await,
        )
        .await;
    }
    let problem = refused_for(&app, &s, &format!("packs.{held}")).await;
    assert!(
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == format!("packs.{untested_load}")),
        "{problem}"
    );
    assert_eq!(pack_state(held.clone()).await["state"], "pending");
    assert_eq!(
        pack_state(untested_load.clone()).await["state"],
        "quarantined"
    );
    let v = view().await;
    assert!(
        finding(&v, &format!("pack:{held}")).is_some()
            && finding(&v, &format!("pack:{untested_load}")).is_some(),
        "{v}"
    );
}

/// The day's work: sessions by technician, by the clinic-local day, and by where they stand.
#[actix_web::test]
async fn sessions_are_filtered_by_technician_local_day_and_state() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    // A second session, planned for tomorrow (London), by the owner.
    let tomorrow = Utc::now() + Duration::days(1);
    let later = created(
        app.post(
            &app.clinic_path("/sessions"),
            &app.owner,
            &json!({"client_id": s.client, "station": "Chair 1", "procedure": "SMP session 2 of 3",
                    "planned_at": tomorrow.to_rfc3339(), "technician_id": app.owner.user_id}),
        )
        .await,
    )
    .await;
    assert_eq!(start(&app, &s).await.status(), 201);
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|i| {
                i["session"]["id"]
                    .as_str()
                    .or(i["id"].as_str())
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let list = |q: String| {
        let app = &app;
        async move {
            let res = app
                .get(&app.clinic_path(&format!("/sessions?{q}")), &app.owner)
                .await;
            assert_eq!(res.status(), 200, "{q}");
            res.json::<Value>().await.unwrap()
        }
    };
    let london =
        |t: chrono::DateTime<Utc>| t.with_timezone(&chrono_tz::Europe::London).date_naive();
    let today = london(Utc::now());
    let on_today = ids(&list(format!("date={today}")).await);
    assert!(on_today.contains(&s.session), "{on_today:?}");
    assert!(!on_today.contains(&later["id"].as_str().unwrap().to_owned()));
    let on_tomorrow = ids(&list(format!("date={}", london(tomorrow))).await);
    assert_eq!(on_tomorrow, [later["id"].as_str().unwrap().to_owned()]);
    let by_tech = ids(&list(format!("technician_id={}", app.technician.user_id)).await);
    assert_eq!(by_tech, vec![s.session.clone()]);
    assert_eq!(
        ids(&list("state=in_progress".into()).await),
        vec![s.session.clone()]
    );
    assert_eq!(
        ids(&list("state=planned".into()).await),
        [later["id"].as_str().unwrap().to_owned()]
    );
    assert!(ids(&list("state=completed".into()).await).is_empty());
    // A bad filter says what it expects.
    let res = app
        .get(&app.clinic_path("/sessions?date=31/05/2027"), &app.owner)
        .await;
    assert_eq!(res.status(), 422);
}

/// At the station a lot is named as the technician knows it: the lot number on the box (with the
/// manufacturer where two products share it) or the scanned code; the session keeps the lot.
#[actix_web::test]
async fn a_lot_is_named_by_its_number_or_its_scanned_code() {
    let app = TestApp::spawn().await;
    let s = setup_with(&app, false).await;
    let o = &app.owner;
    // Two pigments from different makers share a lot number.
    for maker in ["Scalp Ink Co", "Tint Works"] {
        created(app.post(&app.clinic_path("/lots"), o, &json!({
            "kind": "pigment", "manufacturer": maker, "product_name": "Dark Brown",
            "lot_number": "P-77", "expiry_date": (Utc::now() + Duration::days(400)).date_naive().to_string(),
            "sterilisation_method": "gamma", "received_on": (Utc::now() - Duration::days(3)).date_naive().to_string(),
            "quantity_received": 5})).await).await;
    }
    let lots = app.clinic_path(&format!("/sessions/{}/lots", s.session));
    let ambiguous = app
        .post(&lots, &app.technician, &json!({"lot_number": "P-77"}))
        .await;
    let problem = assert_problem(ambiguous, 422, Some("lot_number")).await;
    let reason = problem["errors"][0]["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.contains("Scalp Ink Co")
            && reason.contains("Tint Works")
            && reason.contains("manufacturer"),
        "{reason}"
    );
    let unknown = app
        .post(&lots, &app.technician, &json!({"lot_number": "NOPE-1"}))
        .await;
    assert_problem(unknown, 404, Some("lot_number")).await;
    let added = app
        .post(
            &lots,
            &app.technician,
            &json!({"lot_number": "P-77", "manufacturer": "tint works"}),
        )
        .await;
    assert_eq!(added.status(), 201, "{}", added.text().await.unwrap());
    let trace: Value = added.json().await.unwrap();
    assert!(trace.to_string().contains("Tint Works"), "{trace}");

    // A checklist answer names the cartridge lot by its number or by the scanned code; the
    // answer keeps the lot's id.
    let session: Value = app
        .get(
            &app.clinic_path(&format!("/sessions/{}", s.session)),
            &app.technician,
        )
        .await
        .json()
        .await
        .unwrap();
    let checklist = session["checklist"]
        .as_array()
        .unwrap_or_else(|| panic!("{session}"));
    let key = checklist
        .iter()
        .find(|l| l["key"] == "cartridge_lot")
        .map(|l| l["key"].as_str().unwrap().to_owned())
        .unwrap();
    let answers = app.clinic_path(&format!("/sessions/{}/answers", s.session));
    for value in ["ABC123", "(01)09506000134352(17)290101(10)ABC123"] {
        let res = app
            .post(
                &answers,
                &app.technician,
                &json!({"answers": [{"item_key": key, "value": value}]}),
            )
            .await;
        assert_eq!(res.status(), 201, "{value}: {}", res.text().await.unwrap());
    }
    let events = app.audit_events().await;
    let answered: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "session.checklist_answered")
        .collect();
    assert!(answered
        .iter()
        .rev()
        .take(2)
        .all(|e| e["payload"]["answers"][0]["value"] == s.lot.as_str()));
}

/// The readiness check says what the start would, without starting; a pack set aside with a
/// reason stays on the record and no longer counts.
#[actix_web::test]
async fn readiness_names_every_reason_and_a_pack_set_aside_no_longer_counts() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let path = |rest: &str| app.clinic_path(&format!("/sessions/{}{rest}", s.session));
    let ready: Value = app
        .get(&path("/readiness"), &app.technician)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["may_start"], true, "{ready}");
    assert!(ready["refusals"].as_array().unwrap().is_empty());

    let cycle_id = app
        .get(&app.clinic_path(&format!("/packs/{}", s.pack)), &app.owner)
        .await
        .json::<Value>()
        .await
        .unwrap()["cycle_id"]
        .as_str()
        .unwrap()
        .to_owned();
    created(app.post(&app.clinic_path("/spore-tests"), &app.owner, &json!({"steriliser_id": s.steriliser, "cycle_id": cycle_id, "bi_product": "Attest", "bi_lot": "B1", "placed_at": (Utc::now() - Duration::hours(6)).to_rfc3339(), "incubation": {"kind": "in_house", "hours": 24}})).await).await;
    let events_before = app.audit_events().await.len();
    let blocked: Value = app
        .get(&path("/readiness"), &app.technician)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(blocked["may_start"], false, "{blocked}");
    let reason = blocked["refusals"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "Pack {} comes from load 2 of W&H Lisa (S1) and is pending",
            s.pack
        )) && reason.ends_with("Do not use it; take another pack."),
        "{reason}"
    );
    // Reading it changed nothing.
    assert_eq!(app.audit_events().await.len(), events_before);
    let trace: Value = app.get(&path(""), &app.owner).await.json().await.unwrap();
    assert_eq!(trace["status"], "planned");

    // Set aside: a reason is required; an inspector may not; it stays on the record.
    assert_problem(
        app.post(
            &path("/pack-removals"),
            &app.technician,
            &json!({"code": s.pack, "reason": " "}),
        )
        .await,
        422,
        Some("reason"),
    )
    .await;
    assert_problem(
        app.post(
            &path("/pack-removals"),
            &app.inspector,
            &json!({"code": s.pack, "reason": "x"}),
        )
        .await,
        403,
        None,
    )
    .await;
    let trace = created(
        app.post(
            &path("/pack-removals"),
            &app.technician,
            &json!({"code": s.pack.to_lowercase(), "reason": "spore test still incubating: back on the shelf"}),
        )
        .await,
    )
    .await;
    assert!(trace["packs"].as_array().unwrap().is_empty(), "{trace}");
    assert_eq!(trace["removed_packs"][0]["code"], s.pack.as_str());
    assert_eq!(
        trace["removed_packs"][0]["set_aside_by"],
        app.technician.user_id.as_str()
    );
    assert_problem(
        app.post(
            &path("/pack-removals"),
            &app.technician,
            &json!({"code": s.pack, "reason": "again"}),
        )
        .await,
        404,
        None,
    )
    .await;
    assert_problem(
        app.post(&path("/packs"), &app.technician, &json!({"code": s.pack}))
            .await,
        409,
        None,
    )
    .await;
    let ready: Value = app
        .get(&path("/readiness"), &app.technician)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["may_start"], true, "{ready}");
    let events = app.audit_events().await;
    let last = events.last().unwrap();
    assert_eq!(last["action"], "session.pack_set_aside");
    assert_eq!(
        last["reason"],
        "spore test still incubating: back on the shelf"
    );
    // The pack was never opened: another session may use it once it is released.
    assert_foreign_pack_free(&app, &s.pack).await;
}

async fn assert_foreign_pack_free(app: &TestApp, code: &str) {
    let pack: Value = app
        .get(&app.clinic_path(&format!("/packs/{code}")), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(pack["state"], "used", "{pack}");
}

/// The readiness dashboard: owners and inspectors read it (an inspector without clients'
/// details), technicians may not.
#[actix_web::test]
async fn the_readiness_dashboard_is_for_owners_and_inspectors() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    created(start(&app, &s).await).await;
    let cycle_id = app
        .get(&app.clinic_path(&format!("/packs/{}", s.pack)), &app.owner)
        .await
        .json::<Value>()
        .await
        .unwrap()["cycle_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bi = created(app.post(&app.clinic_path("/spore-tests"), &app.owner, &json!({"steriliser_id": s.steriliser, "cycle_id": cycle_id, "bi_product": "Attest", "bi_lot": "B1", "placed_at": (Utc::now() - Duration::hours(6)).to_rfc3339(), "incubation": {"kind": "in_house", "hours": 24}})).await).await;
    created(app.post(&app.clinic_path(&format!("/spore-tests/{}/result", bi["id"].as_str().unwrap())), &app.owner, &json!({"result": "positive", "control_result": "growth", "read_at": Utc::now().to_rfc3339()})).await).await;
    let owner: Value = app
        .get(&app.clinic_path("/readiness"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let failure = &owner["failures"][0];
    assert_eq!(failure["trigger"], "spore_test", "{owner}");
    assert_eq!(
        failure["lookback"]["sessions"][0]["client_name"],
        "Alex Client"
    );
    assert!(owner["compliance"]["summary"]["blocker"].as_u64().unwrap() >= 1);
    assert_eq!(
        owner["sterilisers"][0]["last_spore_test_outcome"],
        "positive"
    );
    let inspector: Value = app
        .get(&app.clinic_path("/readiness"), &app.inspector)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        inspector["failures"][0]["lookback"]["sessions"][0]["client_name"].is_null(),
        "{inspector}"
    );
    assert_problem(
        app.get(&app.clinic_path("/readiness"), &app.technician)
            .await,
        403,
        None,
    )
    .await;
    assert_problem(
        app.get(&app.clinic_path("/readiness?at=yesterday"), &app.owner)
            .await,
        422,
        Some("at"),
    )
    .await;
}

/// A pack opened in a started session has left the shelf. When its load is later found unsafe,
/// the compliance view holds the pack still on the shelf and not the one already used (that one
/// is for the look-back to trace to its client).
#[actix_web::test]
async fn a_pack_opened_in_a_started_session_is_no_longer_on_the_shelf() {
    let app = TestApp::spawn().await;
    let o = &app.owner;
    let s = setup(&app).await;
    created(start(&app, &s).await).await;
    let pack = created(
        app.get(&app.clinic_path(&format!("/packs/{}", s.pack)), o)
            .await,
    )
    .await;
    let cycle = created(
        app.get(
            &app.clinic_path(&format!("/cycles/{}", pack["cycle_id"].as_str().unwrap())),
            o,
        )
        .await,
    )
    .await;
    let on_shelf: Vec<String> = cycle["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .filter(|code| *code != s.pack)
        .collect();
    assert_eq!(on_shelf.len(), 1, "{cycle}");

    let test = created(
        app.post(
            &app.clinic_path("/spore-tests"),
            o,
            &json!({"steriliser_id": s.steriliser, "cycle_id": cycle["id"], "bi_product": "Attest 1292",
                "bi_lot": "2026-07A", "placed_at": cycle["started_at"],
                "incubation": {"kind": "in_house", "hours": 1}}),
        )
        .await,
    )
    .await;
    created(
        app.post(
            &app.clinic_path(&format!("/spore-tests/{}/result", test["id"].as_str().unwrap())),
            o,
            &json!({"result": "positive", "control_result": "growth", "read_at": Utc::now().to_rfc3339()}),
        )
        .await,
    )
    .await;
    let view = created(app.get(&app.clinic_path("/compliance"), o).await).await;
    let held: Vec<&str> = view["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "blocker")
        .filter_map(|f| f["subject"].as_str()?.strip_prefix("pack:"))
        .collect();
    assert_eq!(held, [on_shelf[0].as_str()], "{view}");
}
