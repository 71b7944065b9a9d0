//! Clinics and members: roles, deactivation, the last-owner guard, and tenancy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{accept_invitation, assert_problem, mailed_invitation_token, TestApp, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

fn new_tech(email: &str) -> Value {
    json!({"email": email, "display_name": "Sam Tech", "role": "technician"})
}

#[actix_web::test]
async fn members_of_a_clinic_read_the_clinic() {
    let app = TestApp::spawn().await;
    for actor in [&app.owner, &app.technician, &app.inspector] {
        let res = app.get(&app.clinic_path(""), actor).await;
        assert_eq!(res.status(), 200);
        let clinic: Value = res.json().await.unwrap();
        assert_eq!(clinic["name"], "Ink & Needle");
        assert_eq!(clinic["timezone"], "Europe/London");
        assert_eq!(clinic["jurisdiction"], "baseline");
    }
}

#[actix_web::test]
async fn an_invited_technician_chooses_a_password_and_joins_on_accepting() {
    let app = TestApp::spawn().await;
    let before = app.audit_events().await.len();
    let res = app
        .post(
            &app.clinic_path("/members"),
            &app.owner,
            &new_tech("Sam@Ink.Example"),
        )
        .await;
    assert_eq!(res.status(), 202);
    let invited: Value = res.json().await.unwrap();
    assert_eq!(invited["email"], "sam@ink.example");
    assert_eq!(invited["role"], "technician");
    assert_eq!(invited["status"], "invited");
    assert_eq!(invited["works_on_clients"], true);
    // Not a member until they accept.
    let list: Value = app
        .get(&app.clinic_path("/members"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.login("sam@ink.example", "a long enough passphrase")
            .await
            .status(),
        401
    );

    let token = mailed_invitation_token(&app, "sam@ink.example").await;
    let weak = accept_invitation(&app, &token, "short").await;
    assert_problem(weak, 422, Some("password")).await;
    let res = accept_invitation(&app, &token, "a long enough passphrase").await;
    assert_eq!(res.status(), 204);
    let again = accept_invitation(&app, &token, "a long enough passphrase").await;
    assert_problem(again, 422, Some("token")).await;

    let sam = app
        .login_with("sam@ink.example", "a long enough passphrase")
        .await;
    let me: Value = app.get("/api/v1/me", &sam).await.json().await.unwrap();
    assert_eq!(me["memberships"][0]["clinic_id"], app.clinic_id.as_str());

    let events = app.audit_events().await;
    let actions: Vec<&str> = events[before..]
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["member.invited", "member.added"]);
    let invitation = &events[before];
    assert_eq!(invitation["actor_id"], app.owner.user_id.as_str());
    assert!(invitation["request_id"].as_str().is_some());
    let joined = events.last().unwrap();
    assert_eq!(joined["actor_kind"], "user");
    assert_eq!(joined["actor_id"], sam.user_id.as_str());
    assert_eq!(joined["payload"]["email"], "sam@ink.example");
    assert_eq!(joined["payload"]["role"], "technician");

    let list: Value = app
        .get(&app.clinic_path("/members"), &app.technician)
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "owner@ink.example",
            "tech@ink.example",
            "inspector@council.example",
            "sam@ink.example"
        ]
    );
}

/// Adding staff tells the owner nothing about whether an email has an account, and an existing
/// account joins only when its owner accepts, with its own password.
#[actix_web::test]
async fn adding_an_existing_account_answers_as_for_a_new_one_and_waits_for_its_owner() {
    let app = TestApp::spawn().await;
    let other = format!("/api/v1/clinics/{}/members", app.other_clinic_id);
    let existing = app
        .post(
            &other,
            &app.other_owner,
            &json!({"email": "tech@ink.example", "role": "technician"}),
        )
        .await;
    let unknown = app
        .post(
            &other,
            &app.other_owner,
            &json!({"email": "nobody@ink.example", "role": "technician"}),
        )
        .await;
    assert_eq!(existing.status(), 202);
    assert_eq!(unknown.status(), 202);
    let mut a: Value = existing.json().await.unwrap();
    let mut b: Value = unknown.json().await.unwrap();
    for v in [&mut a, &mut b] {
        v.as_object_mut().unwrap().remove("email");
        v.as_object_mut().unwrap().remove("expires_at");
    }
    assert_eq!(a, b, "the same answer whether or not the account exists");
    assert!(
        a.get("display_name").is_none() && a.get("user_id").is_none(),
        "no name or account is given away: {a}"
    );

    // Not linked yet: the technician still belongs to one clinic.
    let me: Value = app
        .get("/api/v1/me", &app.technician)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["memberships"].as_array().unwrap().len(), 1);

    let token = mailed_invitation_token(&app, "tech@ink.example").await;
    let wrong = accept_invitation(&app, &token, "not my password at all").await;
    assert_problem(wrong, 422, Some("password")).await;
    assert_eq!(
        accept_invitation(&app, &token, PASSWORD).await.status(),
        204
    );
    let me: Value = app
        .get("/api/v1/me", &app.technician)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["memberships"].as_array().unwrap().len(), 2);
    // The account's own password is unchanged.
    assert_eq!(app.login("tech@ink.example", PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn bad_member_requests_name_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let path = app.clinic_path("/members");
    let before = app.audit_events().await.len();
    let cases = [
        (
            json!({"email": "not-an-email", "display_name": "X", "role": "technician"}),
            "email",
        ),
        (
            json!({"email": "x@ink.example", "display_name": "X", "role": "janitor"}),
            "role",
        ),
        (
            json!({"email": "x@ink.example", "display_name": "X", "role": "technician", "password": "a long enough passphrase"}),
            "password",
        ),
        (
            json!({"email": "x@ink.example", "display_name": "X", "role": "inspector"}),
            "role",
        ),
        (
            json!({"email": "x@ink.example", "display_name": " ", "role": "technician"}),
            "display_name",
        ),
        (json!({"display_name": "X", "role": "technician"}), "email"),
    ];
    for (body, field) in cases {
        assert_problem(app.post(&path, &app.owner, &body).await, 422, Some(field)).await;
    }
    // A duplicate email in the same clinic conflicts.
    let dup = app
        .post(&path, &app.owner, &new_tech("TECH@ink.example"))
        .await;
    assert_problem(dup, 409, None).await;
    assert_eq!(
        app.audit_events().await.len(),
        before,
        "rejected requests leave no trace"
    );
    let list: Value = app.get(&path, &app.owner).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn technicians_and_inspectors_cannot_manage_staff() {
    let app = TestApp::spawn().await;
    let target = &app.technician.user_id;
    for actor in [&app.technician, &app.inspector] {
        let calls = [
            (app.clinic_path("/members"), new_tech("new@ink.example")),
            (
                app.clinic_path(&format!("/members/{target}/role")),
                json!({"role": "owner"}),
            ),
            (
                app.clinic_path(&format!("/members/{target}/deactivate")),
                json!({"reason": "left"}),
            ),
            (
                app.clinic_path(&format!("/members/{target}/reactivate")),
                json!({"reason": "back"}),
            ),
            (
                app.clinic_path(&format!("/members/{}/works-on-clients", app.owner.user_id)),
                json!({"works_on_clients": false, "reason": "x"}),
            ),
        ];
        for (path, body) in calls {
            assert_problem(app.post(&path, actor, &body).await, 403, None).await;
        }
    }
}

#[actix_web::test]
async fn role_changes_and_deactivation_take_effect_on_the_next_request() {
    let app = TestApp::spawn().await;
    let tech = app.technician.user_id.clone();
    let res = app
        .post(
            &app.clinic_path(&format!("/members/{tech}/role")),
            &app.owner,
            &json!({"role": "owner"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    // The same token now carries owner rights: roles are read per request, not baked into tokens.
    let added = app
        .post(
            &app.clinic_path("/members"),
            &app.technician,
            &new_tech("n@ink.example"),
        )
        .await;
    assert_eq!(added.status(), 202);

    let res = app
        .post(
            &app.clinic_path(&format!("/members/{tech}/deactivate")),
            &app.owner,
            &json!({"reason": "left the studio"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let member: Value = res.json().await.unwrap();
    assert_eq!(member["active"], false);
    // The deactivated member's token no longer opens the clinic: it answers as if it did not exist.
    assert_problem(
        app.get(&app.clinic_path(""), &app.technician).await,
        404,
        None,
    )
    .await;
    let again = app
        .post(
            &app.clinic_path(&format!("/members/{tech}/deactivate")),
            &app.owner,
            &json!({"reason": "twice"}),
        )
        .await;
    assert_problem(again, 409, None).await;

    let back = app
        .post(
            &app.clinic_path(&format!("/members/{tech}/reactivate")),
            &app.owner,
            &json!({"reason": "rehired"}),
        )
        .await;
    assert_eq!(back.status(), 200);
    assert_eq!(
        app.get(&app.clinic_path(""), &app.technician)
            .await
            .status(),
        200
    );

    let actions: Vec<String> = app
        .audit_events()
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        actions.ends_with(&[
            "member.role_changed".to_owned(),
            "member.invited".to_owned(),
            "member.deactivated".to_owned(),
            "member.reactivated".to_owned()
        ]),
        "{actions:?}"
    );
    let events = app.audit_events().await;
    let deactivation = events
        .iter()
        .find(|e| e["action"] == "member.deactivated")
        .unwrap();
    assert_eq!(deactivation["reason"], "left the studio");
    let role_change = events
        .iter()
        .find(|e| e["action"] == "member.role_changed")
        .unwrap();
    assert_eq!(role_change["payload"]["previous_role"], "technician");
}

#[actix_web::test]
async fn the_last_owner_cannot_be_demoted_or_deactivated() {
    let app = TestApp::spawn().await;
    let owner = app.owner.user_id.clone();
    let demote = app
        .post(
            &app.clinic_path(&format!("/members/{owner}/role")),
            &app.owner,
            &json!({"role": "technician"}),
        )
        .await;
    assert_problem(demote, 409, None).await;
    let deactivate = app
        .post(
            &app.clinic_path(&format!("/members/{owner}/deactivate")),
            &app.owner,
            &json!({"reason": "x"}),
        )
        .await;
    assert_problem(deactivate, 409, None).await;
    let no_reason = app
        .post(
            &app.clinic_path(&format!("/members/{owner}/deactivate")),
            &app.owner,
            &json!({"reason": "  "}),
        )
        .await;
    assert_problem(no_reason, 422, Some("reason")).await;
    assert_eq!(
        app.get(&app.clinic_path(""), &app.owner).await.status(),
        200
    );
}

/// Every clinic route, called by a user of another clinic with this clinic's ids, answers exactly
/// as for a clinic that does not exist.
#[actix_web::test]
async fn another_clinics_users_see_nothing_and_change_nothing() {
    let app = TestApp::spawn().await;
    let before = app.audit_events().await.len();
    let tech = app.technician.user_id.clone();
    let routes: Vec<(Method, String, Value)> = vec![
        (Method::GET, String::new(), Value::Null),
        (Method::GET, "/members".into(), Value::Null),
        (Method::GET, format!("/members/{tech}"), Value::Null),
        (
            Method::POST,
            "/members".into(),
            new_tech("intruder@other.example"),
        ),
        (
            Method::POST,
            format!("/members/{tech}/role"),
            json!({"role": "owner"}),
        ),
        (
            Method::POST,
            format!("/members/{tech}/deactivate"),
            json!({"reason": "x"}),
        ),
        (
            Method::POST,
            format!("/members/{tech}/reactivate"),
            json!({"reason": "x"}),
        ),
        (
            Method::POST,
            format!("/members/{tech}/works-on-clients"),
            json!({"works_on_clients": false, "reason": "x"}),
        ),
        (Method::GET, "/audit/events".into(), Value::Null),
        (Method::GET, "/audit/verify".into(), Value::Null),
    ];
    common::assert_foreign_looks_missing(&app, &routes).await;
    assert_eq!(app.audit_events().await.len(), before);
    // And the other clinic's owner still sees their own clinic.
    let own = app
        .get(
            &format!("/api/v1/clinics/{}", app.other_clinic_id),
            &app.other_owner,
        )
        .await;
    assert_eq!(own.status(), 200);
}

#[actix_web::test]
async fn a_member_of_another_clinic_is_not_found_through_this_one() {
    let app = TestApp::spawn().await;
    let res = app
        .get(
            &app.clinic_path(&format!("/members/{}", app.other_owner.user_id)),
            &app.owner,
        )
        .await;
    assert_problem(res, 404, None).await;
    let res = app
        .post(
            &app.clinic_path(&format!("/members/{}/deactivate", app.other_owner.user_id)),
            &app.owner,
            &json!({"reason": "x"}),
        )
        .await;
    assert_problem(res, 404, None).await;
}
