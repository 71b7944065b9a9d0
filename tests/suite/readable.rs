//! What people read when something is wrong: every bad field at once in plain words, and a
//! missing record named by its kind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{assert_problem, TestApp};
use serde_json::{json, Value};

fn reasons(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn every_wrong_field_of_a_request_is_named_at_once_in_plain_words() {
    let app = TestApp::spawn().await;
    let before = app.audit_events().await.len();
    let res = app
        .post(
            &app.clinic_path("/spore-tests"),
            &app.technician,
            &json!({"steriliser_id": 7, "bi_product": "Attest", "bi_lot": "L",
                    "placed_at": "31/05/2027", "incubation": "oven", "colour": "blue"}),
        )
        .await;
    let problem = assert_problem(res, 422, Some("placed_at")).await;
    let all = reasons(&problem);
    let reason = |field: &str| {
        all.iter()
            .find(|(f, _)| f == field)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{field} is named: {problem}"))
    };
    assert_eq!(reason("steriliser_id"), "must be text");
    assert_eq!(reason("cycle_id"), "is required: text");
    assert!(
        reason("placed_at").starts_with("must be a date and time"),
        "{problem}"
    );
    assert_eq!(reason("colour"), "is not a field of this request");
    assert!(reason("incubation").starts_with("must be"), "{problem}");
    for (field, r) in &all {
        for parser_word in ["expected", "i64", "internally tagged", "invalid characters"] {
            assert!(!r.contains(parser_word), "{field}: {r}");
        }
    }
    // Nothing was recorded.
    assert_eq!(app.audit_events().await.len(), before);

    // An enum's choices are named.
    let res = app
        .post(
            &app.clinic_path("/sterilisers"),
            &app.owner,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "S", "kind": "steam",
                    "chamber_litres": "big"}),
        )
        .await;
    let problem = assert_problem(res, 422, Some("kind")).await;
    let all = reasons(&problem);
    assert!(
        all.contains(&(
            "kind".to_owned(),
            "must be one of: pre_vacuum, gravity, other".to_owned()
        )),
        "{all:?}"
    );
    assert!(all.contains(&("chamber_litres".to_owned(), "must be a number".to_owned())));
}

#[actix_web::test]
async fn a_missing_record_is_named_by_its_kind_and_another_clinics_reads_the_same() {
    let app = TestApp::spawn().await;
    let res = app
        .get(&app.clinic_path("/sessions/no-such-id"), &app.owner)
        .await;
    let problem = assert_problem(res, 404, None).await;
    assert_eq!(problem["detail"], "no such session in this clinic");
    let res = app
        .get(&app.clinic_path("/sterilisers/no-such-id"), &app.owner)
        .await;
    let problem = assert_problem(res, 404, None).await;
    assert_eq!(problem["detail"], "no such steriliser in this clinic");
    // A steriliser of another clinic reads exactly like one that does not exist.
    let other = app
        .post(
            &format!("/api/v1/clinics/{}/sterilisers", app.other_clinic_id),
            &app.other_owner,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "OTHER-1", "kind": "gravity"}),
        )
        .await;
    assert_eq!(other.status(), 201, "{}", other.text().await.unwrap());
    let id = other.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .get(&app.clinic_path(&format!("/sterilisers/{id}")), &app.owner)
        .await;
    let theirs = assert_problem(res, 404, None).await;
    assert_eq!(theirs["detail"], problem["detail"]);
    assert_eq!(theirs["title"], problem["title"]);
}

#[actix_web::test]
async fn every_wrong_query_parameter_is_named_at_once_and_only_after_authorisation() {
    let app = TestApp::spawn().await;
    let res = app
        .get(
            &app.clinic_path("/cycles?limit=abc&from=31/05/2027&colour=blue"),
            &app.owner,
        )
        .await;
    let problem = assert_problem(res, 422, Some("limit")).await;
    let all = reasons(&problem);
    assert!(
        all.contains(&("limit".to_owned(), "must be a whole number".to_owned())),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|(f, r)| f == "from" && r.starts_with("must be a date and time")),
        "{all:?}"
    );
    for (field, r) in &all {
        assert!(
            !r.contains("deserialize") && !r.contains("invalid digit"),
            "{field}: {r}"
        );
    }
    let res = app
        .get(&app.clinic_path("/audit/events?order=sideways"), &app.owner)
        .await;
    let problem = assert_problem(res, 422, Some("order")).await;
    assert_eq!(
        reasons(&problem),
        [("order".to_owned(), "must be one of: asc, desc".to_owned())]
    );
    // A technician may not read the audit chain: refused before the parameters are looked at.
    let res = app
        .get(
            &app.clinic_path("/audit/events?order=sideways"),
            &app.technician,
        )
        .await;
    assert_eq!(res.status(), 403);
}

/// A follow-up finding says which incident it is about: what, who, where and when, in the
/// clinic's time; a client is never named in it.
#[actix_web::test]
async fn an_incident_finding_names_the_incident_and_who_it_involved() {
    let app = TestApp::spawn().await;
    let me: Value = app
        .get("/api/v1/me", &app.technician)
        .await
        .json()
        .await
        .unwrap();
    let name = me["display_name"].as_str().unwrap().to_owned();
    let res = app
        .post(
            &app.clinic_path("/incidents"),
            &app.technician,
            &json!({"kind": "blood_body_fluid_exposure",
                    "occurred_at": "2026-11-28T15:10:00Z", "location": "Chair 1",
                    "people": [{"user_id": app.technician.user_id, "role": "exposed"},
                               {"name": "Pat Visitor", "role": "witness"}],
                    "description": "splash", "immediate_actions": "rinsed"}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let view: Value = app
        .get(&app.clinic_path("/compliance"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let finding = view["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "incident_follow_up")
        .unwrap_or_else(|| panic!("{view}"));
    let message = finding["message"].as_str().unwrap();
    for part in [
        "blood body fluid exposure",
        &format!("{name} (exposed)"),
        "Pat Visitor (witness)",
        "Chair 1",
        "Saturday 28 November 2026, 15:10 GMT",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    assert!(finding["reference"].as_str().unwrap().contains("1910.1030"));
}
