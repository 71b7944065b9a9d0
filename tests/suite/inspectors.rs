//! Inspector grants: read-only access for a period, enforced on every request, every read on
//! the record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::{Duration, Utc};
use common::{assert_problem, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

async fn grant(app: &TestApp, body: &Value) -> Value {
    let res = app
        .post(&app.clinic_path("/inspectors"), &app.owner, body)
        .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

#[actix_web::test]
async fn a_new_inspector_is_invited_reads_on_the_record_and_never_writes() {
    let app = TestApp::spawn().await;
    let g = grant(
        &app,
        &json!({"email": "Eho@Council.example", "display_name": "E. H. Officer",
            "valid_until": (Utc::now() + Duration::days(14)).to_rfc3339(), "purpose": "annual inspection"}),
    )
    .await;
    assert_eq!(g["status"], "active");
    assert_eq!(g["email"], "eho@council.example");
    let token = g["invitation"]["token"].as_str().unwrap().to_owned();
    // The invitation is mailed to the inspector (the default transport writes .eml files), and
    // once it is delivered the outbox no longer holds a usable token.
    let mut mailed = Value::Null;
    for _ in 0..100 {
        let all: Value = app
            .get(&app.clinic_path("/mail"), &app.owner)
            .await
            .json()
            .await
            .unwrap();
        if let Some(m) = all
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["kind"] == "invitation" && m["state"] == "sent")
        {
            mailed = m.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(mailed["recipient"], "eho@council.example", "{mailed}");
    let id = mailed["id"].as_str().unwrap();
    let eml = std::fs::read(app.dir.path().join("outbox").join(format!("{id}.eml"))).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&eml).unwrap();
    let text = msg.body_text(0).unwrap();
    assert!(text.contains(&token), "{text}");
    assert!(text.contains("/api/v1/auth/invitations/accept"), "{text}");
    // The access in the clinic's own times with the zone named, and the steps spelt out.
    assert!(text.contains("Europe/London time"), "{text}");
    assert!(!text.contains(" UTC"), "{text}");
    assert!(
        text.contains("curl -s ") && text.contains("/api/v1/auth/login"),
        "{text}"
    );
    assert!(msg.subject().unwrap().contains("Ink & Needle"));
    {
        use aseptic::db::schema::mail_outbox;
        use diesel::prelude::*;
        let kept: String = mail_outbox::table
            .find(id)
            .select(mail_outbox::body_text)
            .first(&mut **app.raw_connection())
            .unwrap();
        assert!(!kept.contains(&token), "{kept}");
    }
    // No password works before the invitation is accepted.
    assert_eq!(
        app.login("eho@council.example", "").await.status(),
        422,
        "an empty password is refused as input"
    );
    let res = app
        .client
        .post(app.url("/api/v1/auth/invitations/accept"))
        .json(&json!({"token": token, "password": "inspectors own passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // An invitation works once.
    let again = app
        .client
        .post(app.url("/api/v1/auth/invitations/accept"))
        .json(&json!({"token": token, "password": "another passphrase here"}))
        .send()
        .await
        .unwrap();
    assert_problem(again, 422, Some("token")).await;
    let eho = app
        .login_with("eho@council.example", "inspectors own passphrase")
        .await;

    let res = app.get(&app.clinic_path("/compliance"), &eho).await;
    assert_eq!(res.status(), 200);
    let events = app.audit_events().await;
    let read = events
        .iter()
        .rev()
        .find(|e| e["action"] == "inspector.read")
        .unwrap();
    assert_eq!(read["actor_id"], eho.user_id.as_str());
    assert_eq!(read["entity_id"], g["id"]);
    assert!(read["payload"]["path"]
        .as_str()
        .unwrap()
        .ends_with("/compliance"));

    // Writes are refused whatever the route, and leave nothing behind.
    let before = app.audit_events().await.len();
    for (path, body) in [
        (
            "/sterilisers",
            json!({"make": "W&H", "model": "Lisa", "serial_number": "S9", "kind": "gravity"}),
        ),
        (
            "/inspectors",
            json!({"email": "friend@council.example", "valid_until": (Utc::now() + Duration::days(1)).to_rfc3339()}),
        ),
        ("/members", json!({"email": "x@y.example", "role": "owner"})),
    ] {
        assert_problem(
            app.post(&app.clinic_path(path), &eho, &body).await,
            403,
            None,
        )
        .await;
    }
    assert_eq!(
        app.audit_events().await.len(),
        before,
        "refused writes leave no trace"
    );
    // The grant list is the owner's.
    assert_problem(
        app.get(&app.clinic_path("/inspectors"), &eho).await,
        403,
        None,
    )
    .await;
}

#[actix_web::test]
async fn access_ends_at_expiry_or_revocation_and_does_not_start_early() {
    let app = TestApp::spawn().await;
    // The standing inspector's grant is revoked: access ends at once.
    let grants: Value = app
        .get(&app.clinic_path("/inspectors"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let id = grants[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get(&app.clinic_path("/compliance"), &app.inspector)
            .await
            .status(),
        200
    );
    let revoke = |reason: &str| {
        let body = json!({"reason": reason});
        let path = app.clinic_path(&format!("/inspectors/{id}/revoke"));
        let app = &app;
        async move { app.post(&path, &app.owner, &body).await }
    };
    assert_problem(revoke(" ").await, 422, Some("reason")).await;
    let revoked: Value = revoke("inspection finished early")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["status"], "revoked");
    assert_problem(revoke("again").await, 409, None).await;
    assert_problem(
        app.get(&app.clinic_path("/compliance"), &app.inspector)
            .await,
        403,
        None,
    )
    .await;
    let events = app.audit_events().await;
    assert!(events
        .iter()
        .any(|e| e["action"] == "inspector.revoked" && e["reason"] == "inspection finished early"));

    // A grant that starts tomorrow does not open the door today.
    let later = grant(
        &app,
        &json!({"email": "inspector@council.example",
        "valid_from": (Utc::now() + Duration::days(1)).to_rfc3339(),
        "valid_until": (Utc::now() + Duration::days(3)).to_rfc3339()}),
    )
    .await;
    assert_eq!(later["status"], "upcoming");
    assert!(
        later.get("invitation").is_none(),
        "an existing account is not invited"
    );
    assert_problem(
        app.get(&app.clinic_path("/compliance"), &app.inspector)
            .await,
        403,
        None,
    )
    .await;

    // A grant that ends in a moment ends.
    grant(
        &app,
        &json!({"email": "inspector@council.example",
        "valid_from": (Utc::now() - Duration::hours(1)).to_rfc3339(),
        "valid_until": (Utc::now() + Duration::milliseconds(1500)).to_rfc3339()}),
    )
    .await;
    assert_eq!(
        app.get(&app.clinic_path("/compliance"), &app.inspector)
            .await
            .status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert_problem(
        app.get(&app.clinic_path("/compliance"), &app.inspector)
            .await,
        403,
        None,
    )
    .await;
}

#[actix_web::test]
async fn bad_grants_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let before = app.audit_events().await.len();
    let now = Utc::now();
    for (body, field) in [
        (
            json!({"email": "not-an-email", "valid_until": (now + Duration::days(1)).to_rfc3339()}),
            "email",
        ),
        (
            json!({"email": "a@b.example", "valid_from": (now + Duration::days(2)).to_rfc3339(), "valid_until": (now + Duration::days(1)).to_rfc3339()}),
            "valid_until",
        ),
        (
            json!({"email": "a@b.example", "valid_from": (now - Duration::days(3)).to_rfc3339(), "valid_until": (now - Duration::days(1)).to_rfc3339()}),
            "valid_until",
        ),
        (
            json!({"email": "a@b.example", "valid_until": (now + Duration::days(400)).to_rfc3339()}),
            "valid_until",
        ),
        (json!({"email": "a@b.example"}), "valid_until"),
    ] {
        assert_problem(
            app.post(&app.clinic_path("/inspectors"), &app.owner, &body)
                .await,
            422,
            Some(field),
        )
        .await;
    }
    // Staff cannot inspect their own clinic; technicians cannot grant.
    let staff =
        json!({"email": "tech@ink.example", "valid_until": (now + Duration::days(1)).to_rfc3339()});
    assert_problem(
        app.post(&app.clinic_path("/inspectors"), &app.owner, &staff)
            .await,
        409,
        None,
    )
    .await;
    let other =
        json!({"email": "c@d.example", "valid_until": (now + Duration::days(1)).to_rfc3339()});
    assert_problem(
        app.post(&app.clinic_path("/inspectors"), &app.technician, &other)
            .await,
        403,
        None,
    )
    .await;
    assert_eq!(app.audit_events().await.len(), before);
}

#[actix_web::test]
async fn another_clinic_sees_and_changes_no_grant() {
    let app = TestApp::spawn().await;
    let grants: Value = app
        .get(&app.clinic_path("/inspectors"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let id = grants[0]["id"].as_str().unwrap().to_owned();
    common::assert_foreign_looks_missing(
        &app,
        &[
            (Method::GET, "/inspectors".to_owned(), Value::Null),
            (
                Method::POST,
                "/inspectors".to_owned(),
                json!({"email": "z@z.example", "valid_until": (Utc::now() + Duration::days(1)).to_rfc3339()}),
            ),
            (Method::POST, format!("/inspectors/{id}/revoke"), json!({"reason": "x"})),
        ],
    )
    .await;
    // An inspector of this clinic asking for another clinic finds nothing there.
    let res = app
        .get(
            &format!("/api/v1/clinics/{}/compliance", app.other_clinic_id),
            &app.inspector,
        )
        .await;
    assert_problem(res, 404, None).await;
}
