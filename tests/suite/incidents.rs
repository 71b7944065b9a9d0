//! Incidents, their derived follow-ups, overdue visibility and closure, through HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::{Duration, Utc};
use common::{assert_problem, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

fn sharps(app: &TestApp, days_ago: i64) -> Value {
    json!({
        "kind": "sharps_injury",
        "occurred_at": (Utc::now() - Duration::days(days_ago)).to_rfc3339(),
        "location": "Chair 2",
        "people": [{"user_id": app.technician.user_id, "role": "injured"}],
        "description": "Needle stick while removing a used cartridge",
        "immediate_actions": "Wound washed with soap and water; reported to the owner",
        "sharps": {"device_type": "tattoo needle cartridge", "device_brand": "Cheyenne Craft", "work_area": "procedure station", "how_it_happened": "recapping"},
    })
}

async fn report(app: &TestApp, body: &Value) -> Value {
    let res = app
        .post(&app.clinic_path("/incidents"), &app.technician, body)
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

#[actix_web::test]
async fn an_exposure_gets_its_follow_ups_and_closes_when_they_are_done() {
    let app = TestApp::spawn().await;
    let incident = report(&app, &sharps(&app, 0)).await;
    let required: Vec<(&str, &str)> = incident["required_follow_ups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    // The evaluation is owed at once (29 CFR 1910.1030(f)(3)); the written opinion only once
    // the evaluation is completed.
    assert_eq!(required, [("evaluation_offered", "overdue")]);
    assert_eq!(incident["overdue"], true);
    assert_eq!(incident["sharps"]["work_area"], "procedure station");
    let id = incident["id"].as_str().unwrap();

    let close = app.clinic_path(&format!("/incidents/{id}/close"));
    assert_problem(
        app.post(&close, &app.technician, &json!({"summary": "done"}))
            .await,
        403,
        None,
    )
    .await;
    let refused = assert_problem(
        app.post(&close, &app.owner, &json!({"summary": "done"}))
            .await,
        409,
        Some("follow_ups.evaluation_offered"),
    )
    .await;
    assert_eq!(refused["errors"].as_array().unwrap().len(), 1);

    let follow = app.clinic_path(&format!("/incidents/{id}/follow-ups"));
    for kind in ["evaluation_offered", "evaluation_completed"] {
        let res = app
            .post(
                &follow,
                &app.technician,
                &json!({"kind": kind, "note": "with the occupational health clinic"}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    // Evaluated today: the written opinion is due by the end of the day 15 days on.
    let now: Value = app
        .get(&app.clinic_path(&format!("/incidents/{id}")), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let opinion = now["required_follow_ups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "written_opinion")
        .cloned()
        .unwrap_or_else(|| panic!("{now}"));
    assert_eq!(opinion["status"], "due");
    let due: chrono::DateTime<Utc> = opinion["due"].as_str().unwrap().parse().unwrap();
    assert!(due > Utc::now() + Duration::days(14) && due < Utc::now() + Duration::days(17));
    assert_eq!(now["overdue"], false);
    assert_problem(
        app.post(&close, &app.owner, &json!({"summary": "done"}))
            .await,
        409,
        Some("follow_ups.written_opinion"),
    )
    .await;
    for kind in ["written_opinion"] {
        let res = app
            .post(
                &follow,
                &app.technician,
                &json!({"kind": kind, "note": "done with the occupational health clinic"}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let closed: Value = app
        .post(
            &close,
            &app.owner,
            &json!({"summary": "source tested negative; no further action"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(closed["closed_at"].is_string());
    assert_problem(
        app.post(&close, &app.owner, &json!({"summary": "again"}))
            .await,
        409,
        None,
    )
    .await;
    assert_problem(
        app.post(
            &follow,
            &app.technician,
            &json!({"kind": "other", "note": "late"}),
        )
        .await,
        409,
        None,
    )
    .await;
}

#[actix_web::test]
async fn overdue_follow_ups_are_visible() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    // Texas asks for a report of a client's infection (25 TAC 229.410(a)).
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE clinics SET jurisdiction = 'us-tx' WHERE id = '{}'",
            app.clinic_id
        ))
        .unwrap();
    let old = report(&app, &sharps(&app, 20)).await;
    assert_eq!(old["overdue"], true);
    assert!(old["required_follow_ups"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["status"] == "overdue"));
    let mut infection = sharps(&app, 0);
    infection["kind"] = json!("suspected_infection");
    infection["sharps"] = Value::Null;
    infection["people"] = json!([{"name": "a client by phone", "role": "reporter"}]);
    let fresh = report(&app, &infection).await;
    assert_eq!(fresh["required_follow_ups"][0]["kind"], "authority_report");
    assert_eq!(fresh["overdue"], false);
    let listed: Value = app
        .get(&app.clinic_path("/incidents?overdue=true"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [old["id"].as_str().unwrap()]);
    let all: Value = app
        .get(&app.clinic_path("/incidents"), &app.inspector)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn bad_incidents_name_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let before = app.audit_events().await.len();
    let path = app.clinic_path("/incidents");
    let with = |field: &str, value: Value| {
        let mut body = sharps(&app, 1);
        body[field] = value;
        body
    };
    let other_client: Value = app
        .post(
            &format!("/api/v1/clinics/{}/clients", app.other_clinic_id),
            &app.other_owner,
            &json!({"name": "B", "contact": "b", "date_of_birth": "1980-01-01"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let cases = [
        (
            with(
                "occurred_at",
                json!((Utc::now() + Duration::hours(3)).to_rfc3339()),
            ),
            422,
            "occurred_at",
        ),
        (with("sharps", Value::Null), 422, "sharps"),
        (with("description", json!(" ")), 422, "description"),
        (
            with("people", json!([{"role": "injured"}])),
            422,
            "people[0]",
        ),
        (
            with("session_id", json!("no-such-session")),
            404,
            "session_id",
        ),
        (
            with(
                "people",
                json!([{"client_id": other_client["id"], "role": "client"}]),
            ),
            404,
            "people[0].client_id",
        ),
    ];
    for (body, status, field) in cases {
        assert_problem(
            app.post(&path, &app.technician, &body).await,
            status,
            Some(field),
        )
        .await;
    }
    assert_problem(
        app.post(&path, &app.inspector, &sharps(&app, 1)).await,
        403,
        None,
    )
    .await;
    assert_eq!(app.audit_events().await.len(), before);
}

#[actix_web::test]
async fn another_clinic_sees_and_changes_no_incident() {
    let app = TestApp::spawn().await;
    let incident = report(&app, &sharps(&app, 1)).await;
    let id = incident["id"].as_str().unwrap().to_owned();
    let before = app.audit_events().await.len();
    let routes: Vec<(Method, String, Value)> = vec![
        (Method::GET, "/incidents".into(), Value::Null),
        (Method::POST, "/incidents".into(), sharps(&app, 1)),
        (Method::GET, format!("/incidents/{id}"), Value::Null),
        (
            Method::POST,
            format!("/incidents/{id}/follow-ups"),
            json!({"kind": "other", "note": "x"}),
        ),
        (
            Method::POST,
            format!("/incidents/{id}/close"),
            json!({"summary": "x"}),
        ),
        (
            Method::POST,
            format!("/incidents/{id}/amendments"),
            json!({"reason": "x", "changes": {"location": "y"}}),
        ),
    ];
    common::assert_foreign_looks_missing(&app, &routes).await;
    assert_problem(
        app.get(
            &format!("/api/v1/clinics/{}/incidents/{id}", app.other_clinic_id),
            &app.other_owner,
        )
        .await,
        404,
        None,
    )
    .await;
    assert_eq!(app.audit_events().await.len(), before);
}

/// A report runs from the occurrence or from when the clinic learned of it, whichever is later,
/// and only where the jurisdiction asks for one.
#[actix_web::test]
async fn a_late_discovered_infection_is_not_overdue_on_recording_and_only_texas_asks() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    let mut infection = sharps(&app, 20);
    infection["kind"] = json!("suspected_infection");
    infection["sharps"] = Value::Null;
    infection["people"] = json!([{"name": "a client by phone", "role": "reporter"}]);
    let baseline = report(&app, &infection).await;
    assert!(
        baseline["required_follow_ups"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no source asks for a report: {baseline}"
    );
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE clinics SET jurisdiction = 'us-tx' WHERE id = '{}'",
            app.clinic_id
        ))
        .unwrap();
    let texas = report(&app, &infection).await;
    let required = &texas["required_follow_ups"][0];
    assert_eq!(required["kind"], "authority_report", "{texas}");
    assert_eq!(required["status"], "due", "learned of today: {texas}");
    let due: chrono::DateTime<Utc> = required["due"].as_str().unwrap().parse().unwrap();
    // Five working days from today: at least a week away only across a weekend or holiday,
    // never less than five days.
    assert!(due > Utc::now() + Duration::days(4), "{texas}");
}
