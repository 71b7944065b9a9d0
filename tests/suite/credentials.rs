//! Credentials, their verification, and eligibility to work on a client, through HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use common::{assert_problem, Actor, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

fn days_ago(n: i64) -> String {
    (Utc::now() - Duration::days(n)).date_naive().to_string()
}

fn bbp(user: &str, issued: &str) -> Value {
    json!({"user_id": user, "kind": "bloodborne_pathogen_training", "issuer": "Red Cross", "issued_on": issued})
}

fn hep_b(user: &str) -> Value {
    json!({"user_id": user, "kind": "hepatitis_b", "hepatitis_b_status": "vaccinated"})
}

fn licence(user: &str, expires: &str) -> Value {
    json!({"user_id": user, "kind": "licence", "issuer": "County Health", "number": "BA-2291", "issued_on": days_ago(300), "expires_on": expires})
}

async fn submit(app: &TestApp, actor: &Actor, body: &Value) -> String {
    let res = app
        .post(&app.clinic_path("/credentials"), actor, body)
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn verify(app: &TestApp, id: &str) {
    let res = app
        .post(
            &app.clinic_path(&format!("/credentials/{id}/verify")),
            &app.owner,
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

async fn eligibility(app: &TestApp, actor: &Actor, user: &str, at: Option<&str>) -> Value {
    let query = at
        .map(|a| format!("?at={}", a.replace('+', "%2B")))
        .unwrap_or_default();
    let res = app
        .get(
            &app.clinic_path(&format!("/members/{user}/eligibility{query}")),
            actor,
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[actix_web::test]
async fn a_technician_is_eligible_once_owner_verified_credentials_cover_the_profile() {
    let app = TestApp::spawn().await;
    let tech = app.technician.user_id.clone();
    let e = eligibility(&app, &app.technician, &tech, None).await;
    assert_eq!(e["eligible"], false);
    let missing: Vec<&str> = e["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["problem"].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["missing", "missing", "missing"]);

    // The technician submits their own; they do not count until an owner verifies them.
    let bbp_id = submit(&app, &app.technician, &bbp(&tech, &days_ago(100))).await;
    let hep_id = submit(&app, &app.technician, &hep_b(&tech)).await;
    let lic_id = submit(
        &app,
        &app.owner,
        &licence(
            &tech,
            &(Utc::now() + Duration::days(400)).date_naive().to_string(),
        ),
    )
    .await;
    let e = eligibility(&app, &app.owner, &tech, None).await;
    let problems: Vec<&str> = e["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["problem"].as_str().unwrap())
        .collect();
    assert_eq!(problems, ["unverified", "unverified", "unverified"]);

    // Only an owner verifies.
    let by_tech = app
        .post(
            &app.clinic_path(&format!("/credentials/{bbp_id}/verify")),
            &app.technician,
            &json!({}),
        )
        .await;
    assert_problem(by_tech, 403, None).await;
    for id in [&bbp_id, &hep_id, &lic_id] {
        verify(&app, id).await;
    }
    let again = app
        .post(
            &app.clinic_path(&format!("/credentials/{bbp_id}/verify")),
            &app.owner,
            &json!({}),
        )
        .await;
    assert_problem(again, 409, None).await;
    let e = eligibility(&app, &app.technician, &tech, None).await;
    assert_eq!(e["eligible"], true, "{e}");
    assert!(e["reasons"].as_array().unwrap().is_empty());

    // As of a moment before the training was taken, it does not count.
    let before = (Utc::now() - Duration::days(101)).to_rfc3339();
    let e = eligibility(&app, &app.owner, &tech, Some(&before)).await;
    assert_eq!(e["eligible"], false);
    assert_eq!(e["reasons"][0]["kind"], "bloodborne_pathogen_training");

    // A year after the training it has lapsed; a warning comes 30 days ahead.
    let lapsed = (Utc::now() + Duration::days(266)).to_rfc3339();
    let e = eligibility(&app, &app.owner, &tech, Some(&lapsed)).await;
    assert_eq!(e["reasons"][0]["problem"], "expired");
    let soon = (Utc::now() + Duration::days(250)).to_rfc3339();
    let e = eligibility(&app, &app.owner, &tech, Some(&soon)).await;
    assert_eq!(e["eligible"], true);
    assert!(e["warnings"][0].as_str().unwrap().contains("bloodborne"));

    // An amendment makes a new version that needs verifying again.
    let res = app
        .post(
            &app.clinic_path(&format!("/credentials/{lic_id}/amendments")),
            &app.owner,
            &json!({"reason": "renewed early; new card", "changes": {"number": "BA-3301"}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let amended: Value = res.json().await.unwrap();
    assert!(amended["verification"].is_null());
    let e = eligibility(&app, &app.owner, &tech, None).await;
    assert_eq!(e["reasons"][0]["kind"], "licence");
    assert_eq!(e["reasons"][0]["problem"], "unverified");

    let actions: Vec<String> = app
        .audit_events()
        .await
        .iter()
        .map(|ev| ev["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "credential.verified")
            .count(),
        3
    );
    assert!(actions.contains(&"credential.amended".to_owned()));
}

#[actix_web::test]
async fn bad_credentials_name_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let tech = app.technician.user_id.clone();
    let owner = app.owner.user_id.clone();
    let before = app.audit_events().await.len();
    let path = app.clinic_path("/credentials");
    let cases = [
        (
            json!({"user_id": tech, "kind": "hepatitis_b"}),
            422,
            "hepatitis_b_status",
        ),
        (
            json!({"user_id": tech, "kind": "hepatitis_b", "hepatitis_b_status": "declined"}),
            422,
            "declined_on",
        ),
        (
            json!({"user_id": tech, "kind": "licence", "issued_on": days_ago(10)}),
            422,
            "number",
        ),
        (
            json!({"user_id": tech, "kind": "first_aid_cpr", "issued_on": days_ago(10), "expires_on": days_ago(20)}),
            422,
            "expires_on",
        ),
        (
            json!({"user_id": tech, "kind": "bloodborne_pathogen_training"}),
            422,
            "issued_on",
        ),
        (
            json!({"user_id": tech, "kind": "sorcery", "issued_on": days_ago(1)}),
            422,
            "kind",
        ),
        (bbp(&app.other_owner.user_id, &days_ago(5)), 404, "user_id"),
        (bbp("no-such-user", &days_ago(5)), 404, "user_id"),
    ];
    for (body, status, field) in cases {
        assert_problem(
            app.post(&path, &app.owner, &body).await,
            status,
            Some(field),
        )
        .await;
    }
    // A technician may not submit for someone else; an inspector may not write at all.
    assert_problem(
        app.post(&path, &app.technician, &bbp(&owner, &days_ago(5)))
            .await,
        403,
        None,
    )
    .await;
    assert_problem(
        app.post(&path, &app.inspector, &bbp(&tech, &days_ago(5)))
            .await,
        403,
        None,
    )
    .await;
    let list: Value = app.get(&path, &app.owner).await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    assert_eq!(app.audit_events().await.len(), before);
}

#[actix_web::test]
async fn technicians_see_only_their_own_credentials() {
    let app = TestApp::spawn().await;
    let tech = app.technician.user_id.clone();
    let owner = app.owner.user_id.clone();
    let mine = submit(&app, &app.technician, &hep_b(&tech)).await;
    let owners = submit(&app, &app.owner, &json!({"user_id": owner, "kind": "hepatitis_b", "hepatitis_b_status": "declined", "declined_on": days_ago(30)})).await;
    let listed: Value = app
        .get(&app.clinic_path("/credentials"), &app.technician)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    assert_problem(
        app.get(
            &app.clinic_path(&format!("/credentials/{owners}")),
            &app.technician,
        )
        .await,
        404,
        None,
    )
    .await;
    let amend = app
        .post(
            &app.clinic_path(&format!("/credentials/{owners}/amendments")),
            &app.technician,
            &json!({"reason": "x", "changes": {"issuer": "x"}}),
        )
        .await;
    assert_problem(amend, 404, None).await;
    assert_problem(
        app.get(
            &app.clinic_path(&format!("/members/{owner}/eligibility")),
            &app.technician,
        )
        .await,
        403,
        None,
    )
    .await;
    // Owners and inspectors see everyone's.
    for actor in [&app.owner, &app.inspector] {
        let all: Value = app
            .get(&app.clinic_path("/credentials"), actor)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(all["items"].as_array().unwrap().len(), 2);
    }
    let by_user: Value = app
        .get(
            &app.clinic_path(&format!("/credentials?user_id={owner}")),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_user["items"][0]["hepatitis_b_status"], "declined");
    // The holder cannot be changed by an amendment.
    let moved = app
        .post(
            &app.clinic_path(&format!("/credentials/{mine}/amendments")),
            &app.owner,
            &json!({"reason": "x", "changes": {"user_id": owner}}),
        )
        .await;
    assert_problem(moved, 422, Some("changes.user_id")).await;
}

#[actix_web::test]
async fn eligibility_is_judged_on_the_clinics_local_day() {
    let app = TestApp::spawn().await;
    let tech = app.technician.user_id.clone();
    // The next 30 June to come, when London keeps BST (UTC+1): a licence that expires that day.
    let today = Utc::now().date_naive();
    let this_year = NaiveDate::from_ymd_opt(today.year(), 6, 30).unwrap();
    let june = if this_year > today {
        this_year
    } else {
        NaiveDate::from_ymd_opt(today.year() + 1, 6, 30).unwrap()
    };
    let lic = submit(&app, &app.owner, &json!({"user_id": tech, "kind": "licence", "number": "BA-1", "issued_on": "2025-07-01", "expires_on": june.to_string()})).await;
    let training = submit(&app, &app.owner, &bbp(&tech, &today.to_string())).await;
    let hep = submit(&app, &app.owner, &hep_b(&tech)).await;
    for id in [&lic, &training, &hep] {
        verify(&app, id).await;
    }
    // 23:30 UTC on 30 June is already 1 July in London: the licence has lapsed there.
    let e = eligibility(&app, &app.owner, &tech, Some(&format!("{june}T22:30:00Z"))).await;
    assert_eq!(e["on"], june.to_string());
    assert_eq!(e["eligible"], true, "{e}");
    let e = eligibility(&app, &app.owner, &tech, Some(&format!("{june}T23:30:00Z"))).await;
    assert_eq!(e["on"], (june + Duration::days(1)).to_string());
    assert_eq!(e["eligible"], false);
    assert_eq!(e["reasons"][0]["kind"], "licence");
    // Asked about a moment before any of it was recorded, the answer is what it was then.
    let before = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let e = eligibility(&app, &app.owner, &tech, Some(&before)).await;
    assert_eq!(e["eligible"], false);
    assert_eq!(e["reasons"].as_array().unwrap().len(), 3, "{e}");
    // Inspectors are never eligible to work on clients.
    let inspector = eligibility(&app, &app.owner, &app.inspector.user_id, None).await;
    assert_eq!(inspector["eligible"], false);
    assert!(inspector["blocked_by"].as_str().is_some());
}

#[actix_web::test]
async fn another_clinic_sees_and_changes_no_credential() {
    let app = TestApp::spawn().await;
    let tech = app.technician.user_id.clone();
    let id = submit(&app, &app.owner, &hep_b(&tech)).await;
    let before = app.audit_events().await.len();
    let routes: Vec<(Method, String, Value)> = vec![
        (Method::GET, "/credentials".into(), Value::Null),
        (Method::POST, "/credentials".into(), hep_b(&tech)),
        (Method::GET, format!("/credentials/{id}"), Value::Null),
        (Method::POST, format!("/credentials/{id}/verify"), json!({})),
        (
            Method::POST,
            format!("/credentials/{id}/amendments"),
            json!({"reason": "x", "changes": {"issuer": "x"}}),
        ),
        (
            Method::GET,
            format!("/members/{tech}/eligibility"),
            Value::Null,
        ),
    ];
    common::assert_foreign_looks_missing(&app, &routes).await;
    // Through their own clinic, the other owner cannot reach this clinic's people or records.
    let other = |rest: &str| format!("/api/v1/clinics/{}{rest}", app.other_clinic_id);
    assert_problem(
        app.get(&other(&format!("/credentials/{id}")), &app.other_owner)
            .await,
        404,
        None,
    )
    .await;
    assert_problem(
        app.get(
            &other(&format!("/members/{tech}/eligibility")),
            &app.other_owner,
        )
        .await,
        404,
        None,
    )
    .await;
    assert_problem(
        app.post(&other("/credentials"), &app.other_owner, &hep_b(&tech))
            .await,
        404,
        Some("user_id"),
    )
    .await;
    assert_eq!(app.audit_events().await.len(), before);
}

/// The clinic's jurisdiction profile decides which credentials count: the test clinic follows
/// the baseline (BBP training, hepatitis B, licence); the other clinic follows England's
/// profile, where registration with the council is what is required.
#[actix_web::test]
async fn the_jurisdiction_profile_decides_which_credentials_count() {
    let app = TestApp::spawn().await;
    let owner = app.other_owner.user_id.clone();
    let other = |rest: &str| format!("/api/v1/clinics/{}{rest}", app.other_clinic_id);
    let before: Value = app
        .get(
            &other(&format!("/members/{owner}/eligibility")),
            &app.other_owner,
        )
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = before["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["licence"]);
    let res = app
        .post(&other("/credentials"), &app.other_owner, &json!({"user_id": owner, "kind": "licence", "number": "LBX-77", "issued_on": days_ago(100)}))
        .await;
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &other(&format!("/credentials/{id}/verify")),
        &app.other_owner,
        &json!({}),
    )
    .await;
    let after: Value = app
        .get(
            &other(&format!("/members/{owner}/eligibility")),
            &app.other_owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["eligible"], true, "{after}");

    let baseline = eligibility(&app, &app.owner, &app.technician.user_id, None).await;
    assert_eq!(baseline["requirements"].as_array().unwrap().len(), 3);
}

/// OSHA asks that the hepatitis B vaccine be offered: "offered" meets the baseline. California
/// asks for vaccination or immunity: there "offered" does not, and the reason says which
/// statuses would.
#[actix_web::test]
async fn a_hepatitis_b_offer_meets_osha_but_not_california() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    let tech = app.technician.user_id.clone();
    for body in [
        bbp(&tech, &days_ago(30)),
        json!({"user_id": tech, "kind": "hepatitis_b", "hepatitis_b_status": "offered"}),
        licence(&tech, &days_ago(-200)),
    ] {
        let id = submit(&app, &app.owner, &body).await;
        verify(&app, &id).await;
    }
    let e = eligibility(&app, &app.owner, &tech, None).await;
    assert_eq!(e["eligible"], true, "{e}");
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE clinics SET jurisdiction = 'us-ca' WHERE id = '{}'",
            app.clinic_id
        ))
        .unwrap();
    let e = eligibility(&app, &app.owner, &tech, None).await;
    assert_eq!(e["eligible"], false, "{e}");
    let reasons = e["reasons"].as_array().unwrap();
    let hep = reasons
        .iter()
        .find(|r| r["kind"] == "hepatitis_b")
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(hep["problem"], "not_accepted");
    assert!(
        hep["message"].as_str().unwrap().contains("vaccinated"),
        "{e}"
    );
}
