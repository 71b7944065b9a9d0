//! What an outside review tried as an attacker and as an operator under faults: retried requests
//! after a failure, replays by callers who lost their access, racing retries, invitations,
//! lock-outs, the order of authorisation and validation, and who practitioner rules apply to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{assert_problem, is_postgres, Actor, TestApp, PASSWORD};
use diesel::connection::SimpleConnection;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::time::Duration;

fn client_body(name: &str) -> Value {
    json!({"name": name, "contact": "+44 7700 900123", "date_of_birth": "1990-04-02"})
}

async fn post_keyed(app: &TestApp, actor: &Actor, key: &str, body: &Value) -> Response {
    app.request(Method::POST, &app.clinic_path("/clients"), actor)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn count(app: &TestApp, sql: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .get_result::<N>(&mut **app.raw_connection())
        .unwrap()
        .n
}

fn clients_named(app: &TestApp, name: &str) -> i64 {
    count(
        app,
        &format!(
            "SELECT COUNT(*) AS n FROM clients WHERE clinic_id = '{}' AND name = '{name}'",
            app.clinic_id
        ),
    )
}

/// When the answer cannot be stored, the record it answers is not kept either: the key stays
/// unused and the client's retry creates exactly one record. (The answer used to be stored in a
/// second transaction; a failure or a crash between the two left the record with its key "in
/// flight", and the retry a minute later made a second one.)
#[actix_web::test]
async fn a_record_and_its_stored_answer_commit_together() {
    let app = TestApp::spawn().await;
    let events_before = app.audit_events().await.len();
    let (block, unblock) = if is_postgres() {
        (
            "CREATE FUNCTION refuse_keys() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse_keys BEFORE INSERT ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION refuse_keys();",
            "DROP TRIGGER refuse_keys ON idempotency_keys; DROP FUNCTION refuse_keys();",
        )
    } else {
        (
            "CREATE TRIGGER refuse_keys BEFORE INSERT ON idempotency_keys BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            "DROP TRIGGER refuse_keys;",
        )
    };
    app.raw_connection().batch_execute(block).unwrap();
    let failed = post_keyed(&app, &app.technician, "k-1", &client_body("Kim Retry")).await;
    assert_eq!(failed.status(), 503, "nothing acknowledged");
    assert!(failed.headers().contains_key("retry-after"));
    assert_eq!(
        clients_named(&app, "Kim Retry"),
        0,
        "no record without its answer"
    );
    assert_eq!(app.audit_events().await.len(), events_before);

    app.raw_connection().batch_execute(unblock).unwrap();
    let retried = post_keyed(&app, &app.technician, "k-1", &client_body("Kim Retry")).await;
    assert_eq!(retried.status(), 201, "the retry runs for real, at once");
    let again = post_keyed(&app, &app.technician, "k-1", &client_body("Kim Retry")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(clients_named(&app, "Kim Retry"), 1);
}

/// A replay answers only a caller who may make the request now.
#[actix_web::test]
async fn a_replayed_key_is_authorised_like_a_new_request() {
    let app = TestApp::spawn().await;
    let first = post_keyed(&app, &app.technician, "k-1", &client_body("Lee Replay")).await;
    assert_eq!(first.status(), 201);

    // Deactivated: the stored 201 is not theirs to see any more.
    let tech = app.technician.user_id.clone();
    let res = app
        .post(
            &app.clinic_path(&format!("/members/{tech}/deactivate")),
            &app.owner,
            &json!({"reason": "left"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let replay = post_keyed(&app, &app.technician, "k-1", &client_body("Lee Replay")).await;
    assert_problem(replay, 404, None).await;

    // A token from before a password change is refused, replay or not.
    let owner_before = app.owner.clone();
    let first = post_keyed(&app, &owner_before, "k-2", &client_body("Max Replay")).await;
    assert_eq!(first.status(), 201);
    let res = app
        .post(
            "/api/v1/me/password",
            &owner_before,
            &json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status(), 204);
    let replay = post_keyed(&app, &owner_before, "k-2", &client_body("Max Replay")).await;
    assert_problem(replay, 401, None).await;
    assert_eq!(clients_named(&app, "Lee Replay"), 1);
    assert_eq!(clients_named(&app, "Max Replay"), 1);
}

/// Parallel requests with one key: one record, and every other answer is its replay or "still in
/// progress", never a bare conflict.
#[actix_web::test]
async fn racing_requests_with_one_key_make_one_record() {
    let app = TestApp::spawn().await;
    let body = client_body("Ray Race");
    let sends = (0..16).map(|_| post_keyed(&app, &app.owner, "race", &body));
    let answers = futures_util::future::join_all(sends).await;
    let mut created = 0;
    for res in answers {
        match res.status().as_u16() {
            201 => created += 1,
            409 => {
                let body = assert_problem(res, 409, None).await;
                assert_eq!(
                    body["type"], "https://aseptic.dev/problems/idempotency-key-in-flight",
                    "{body}"
                );
            }
            other => panic!("unexpected {other}: {}", res.text().await.unwrap()),
        }
    }
    assert!(created >= 1);
    assert_eq!(clients_named(&app, "Ray Race"), 1);
}

/// An inspector's write with a broken body hears 403, a technician on an owner's route 403, an
/// anonymous caller 401, whatever the body or the Idempotency-Key.
#[actix_web::test]
async fn authorisation_is_answered_before_the_body_is_judged() {
    let app = TestApp::spawn().await;
    for path in ["/clients", "/lots", "/cycles", "/sessions", "/incidents"] {
        let res = app
            .post(
                &app.clinic_path(path),
                &app.inspector,
                &json!({"nonsense": 1}),
            )
            .await;
        assert_problem(res, 403, None).await;
        let res = app
            .request(Method::POST, &app.clinic_path(path), &app.inspector)
            .header("content-type", "text/plain")
            .body("{")
            .send()
            .await
            .unwrap();
        assert_problem(res, 403, None).await;
    }
    for path in ["/members", "/inspectors", "/exports", "/mail/settings"] {
        let method = if path == "/mail/settings" {
            Method::PUT
        } else {
            Method::POST
        };
        let res = app
            .request(method, &app.clinic_path(path), &app.technician)
            .json(&json!({"nonsense": 1}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 403, None).await;
    }
    let tech = app.technician.user_id.clone();
    let res = app
        .post(
            &app.clinic_path(&format!("/members/{tech}/role")),
            &app.technician,
            &json!({"role": "janitor"}),
        )
        .await;
    assert_problem(res, 403, None).await;
    let anonymous = app
        .client
        .post(app.url(&app.clinic_path("/clients")))
        .header("idempotency-key", "")
        .json(&json!({"nonsense": 1}))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401, None).await;
}

/// Invitations: an unknown token is refused before the password is even judged, and accepting is
/// throttled per address like login.
#[actix_web::test]
async fn accepting_an_invitation_checks_the_token_first_and_is_throttled() {
    let app = TestApp::spawn_with(|s| {
        s.auth.login_per_address_burst = 8;
        s.auth.login_per_address_per_minute = 1;
    })
    .await;
    let res = common::accept_invitation(&app, "no-such-token", "x").await;
    assert_problem(res, 422, Some("token")).await;
    let mut throttled = None;
    for _ in 0..10 {
        let res =
            common::accept_invitation(&app, "no-such-token", "a long enough passphrase").await;
        if res.status() == 429 {
            throttled = Some(res);
            break;
        }
        assert_problem(res, 422, Some("token")).await;
    }
    let res = throttled.expect("throttled within the address's burst");
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429, None).await;
}

fn from(app: &TestApp, address: &str, email: &str, password: &str) -> reqwest::RequestBuilder {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({"email": email, "password": password}))
}

/// Someone who knows an owner's email cannot lock the owner out: guessing exhausts the limit for
/// the guesser's address only.
#[actix_web::test]
async fn guessing_a_password_does_not_lock_out_the_accounts_owner() {
    let app = TestApp::spawn_with(|s| s.server.trust_forwarded_for = true).await;
    let mut locked = false;
    for _ in 0..30 {
        let res = from(
            &app,
            "203.0.113.66",
            "owner@ink.example",
            "a wrong guess here",
        )
        .send()
        .await
        .unwrap();
        if res.status() == 429 {
            locked = true;
            break;
        }
        assert_eq!(res.status(), 401);
    }
    assert!(locked, "the guesser is throttled");
    let res = from(&app, "203.0.113.66", "owner@ink.example", PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        429,
        "even with the right password, from there"
    );
    let res = from(&app, "198.51.100.7", "owner@ink.example", PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "the owner, from their own address, gets in"
    );
}

/// An invited account that has not accepted answers a login exactly as an unknown email does.
#[actix_web::test]
async fn an_invited_account_answers_a_login_like_an_unknown_one() {
    let app = TestApp::spawn().await;
    let res = app
        .post(
            &app.clinic_path("/members"),
            &app.owner,
            &json!({"email": "pending@ink.example", "role": "technician"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let invited = assert_problem(
        app.login("pending@ink.example", "a guess at it").await,
        401,
        None,
    )
    .await;
    let unknown = assert_problem(
        app.login("ghost@ink.example", "a guess at it").await,
        401,
        None,
    )
    .await;
    assert_eq!(invited, unknown);
}

fn eligibility_findings(view: &Value, user_id: &str) -> usize {
    view["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["rule"] == "technician_eligibility" && f["subject"] == format!("member:{user_id}")
        })
        .count()
}

/// Practitioner rules apply to those who work on clients: technicians always, owners as they say.
#[actix_web::test]
async fn an_owner_who_does_not_work_on_clients_is_not_flagged_for_credentials() {
    let app = TestApp::spawn().await;
    let owner = app.owner.user_id.clone();
    let tech = app.technician.user_id.clone();
    let view: Value = app
        .get(&app.clinic_path("/compliance"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert!(eligibility_findings(&view, &owner) > 0, "{view}");
    assert!(eligibility_findings(&view, &tech) > 0);

    let path = app.clinic_path(&format!("/members/{owner}/works-on-clients"));
    let res = app
        .post(
            &path,
            &app.owner,
            &json!({"works_on_clients": false, "reason": "runs the front desk"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let member: Value = res.json().await.unwrap();
    assert_eq!(member["works_on_clients"], false);
    let view: Value = app
        .get(&app.clinic_path("/compliance"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(eligibility_findings(&view, &owner), 0, "{view}");
    assert!(
        eligibility_findings(&view, &tech) > 0,
        "technicians still are"
    );
    let eligibility: Value = app
        .get(
            &app.clinic_path(&format!("/members/{owner}/eligibility")),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(eligibility["eligible"], false);
    assert_eq!(
        eligibility["blocked_by"],
        "the member does not work on clients"
    );

    // A technician always works on clients.
    let res = app
        .post(
            &app.clinic_path(&format!("/members/{tech}/works-on-clients")),
            &app.owner,
            &json!({"works_on_clients": false, "reason": "x"}),
        )
        .await;
    assert_problem(res, 409, None).await;
    let event = app
        .audit_events()
        .await
        .into_iter()
        .rev()
        .find(|e| e["action"] == "member.practice_changed")
        .unwrap();
    assert_eq!(event["reason"], "runs the front desk");
    assert_eq!(event["payload"]["works_on_clients"], false);
}

/// A clinic made on the command line has an owner who does not work on clients unless told so,
/// and no blocker about the owner's licence.
#[actix_web::test]
async fn a_new_clinics_owner_has_no_practitioner_blocker_by_default() {
    let app = TestApp::spawn().await;
    let mut conn = app.raw_connection();
    let profiles = aseptic::load_profiles(&app.settings).unwrap();
    let (clinic, owner) = aseptic::clinics::usecases::create_clinic(
        &mut conn,
        &aseptic::audit::AuditContext::operator(),
        &profiles,
        &aseptic::clinics::model::NewClinic {
            name: "Front Desk Studio".into(),
            timezone: "Europe/London".into(),
            jurisdiction: "baseline".into(),
            address: None,
            registration_number: None,
            owner_works_on_clients: false,
        },
        "desk@front.example",
        aseptic::clinics::usecases::OwnerAccount::New {
            display_name: "Desk Owner".into(),
            password_hash: aseptic::auth::password::hash(PASSWORD).unwrap(),
        },
    )
    .unwrap();
    drop(conn);
    let desk = app.login_as("desk@front.example").await;
    let view: Value = app
        .get(&format!("/api/v1/clinics/{}/compliance", clinic.id), &desk)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(eligibility_findings(&view, &owner.id), 0, "{view}");
}

/// Inspectors read clients by pseudonymous id everywhere, as in exports, unless an owner's grant
/// (audited, with its purpose) lets them see contact details for an investigation.
#[actix_web::test]
async fn inspectors_see_clients_pseudonymously_unless_a_grant_allows_details() {
    let app = TestApp::spawn().await;
    let client: Value = app
        .post(&app.clinic_path("/clients"), &app.technician, &json!({"name": "Alex Client", "contact": "+44 7700 900123", "date_of_birth": "1990-04-02"}))
        .await
        .json()
        .await
        .unwrap();
    let id = client["id"].as_str().unwrap().to_owned();
    let session: Value = app
        .post(&app.clinic_path("/sessions"), &app.technician, &json!({"client_id": id, "station": "1", "procedure": "SMP", "planned_at": chrono::Utc::now().to_rfc3339()}))
        .await
        .json()
        .await
        .unwrap();
    let sid = session["id"].as_str().unwrap().to_owned();
    let reads = [
        "/clients".to_owned(),
        format!("/clients/{id}"),
        "/sessions".to_owned(),
        format!("/sessions/{sid}"),
    ];
    for path in &reads {
        let res = app.get(&app.clinic_path(path), &app.inspector).await;
        assert_eq!(res.status(), 200, "{path}");
        let text = res.text().await.unwrap();
        for secret in ["Alex Client", "7700 900123", "1990-04-02"] {
            assert!(!text.contains(secret), "{path} shows {secret}: {text}");
        }
        assert!(text.contains(&id), "{path} names the client by id");
    }
    let staff = app
        .get(&app.clinic_path(&format!("/clients/{id}")), &app.owner)
        .await
        .text()
        .await
        .unwrap();
    assert!(staff.contains("Alex Client"));

    // A grant for an investigation needs its purpose, is on the record, and shows details.
    let until = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let no_purpose = app
        .post(&app.clinic_path("/inspectors"), &app.owner, &json!({"email": "inspector@council.example", "valid_until": until, "client_details": true}))
        .await;
    assert_problem(no_purpose, 422, Some("purpose")).await;
    let res = app
        .post(&app.clinic_path("/inspectors"), &app.owner, &json!({"email": "inspector@council.example", "valid_until": until, "client_details": true, "purpose": "suspected infection, case 2026-117"}))
        .await;
    assert_eq!(res.status(), 201);
    let event = app
        .audit_events()
        .await
        .into_iter()
        .rev()
        .find(|e| e["action"] == "inspector.granted")
        .unwrap();
    assert_eq!(event["payload"]["client_details"], true);
    let text = app
        .get(&app.clinic_path(&format!("/clients/{id}")), &app.inspector)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("Alex Client") && text.contains("7700 900123"),
        "{text}"
    );
}

fn blockers(view: &Value) -> i64 {
    view["summary"]["blocker"].as_i64().unwrap()
}

/// The audit summary is judged at the moment it names (the same moment as the report it
/// carries), names it to the second with the zone, and agrees with the compliance view as of
/// that moment even when records made later have changed the live view.
#[actix_web::test]
async fn a_summary_names_the_moment_it_is_judged_at_and_agrees_with_the_view_then() {
    let app = TestApp::spawn().await;
    let requested = app
        .post(
            &app.clinic_path("/exports"),
            &app.owner,
            &json!({"from": (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339(), "to": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(requested.status(), 202);
    let id = requested.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    common::built_export(&app, &id).await;
    // A steriliser never spore-tested: a blocker from now on, after the export was requested.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let res = app
        .post(&app.clinic_path("/sterilisers"), &app.owner, &json!({"make": "W&H", "model": "Lisa", "serial_number": "S-LATE", "kind": "pre_vacuum"}))
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .post(
            &app.clinic_path(&format!("/exports/{id}/send")),
            &app.owner,
            &json!({"to": "inspector@council.example"}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());

    use aseptic::db::schema::mail_outbox;
    use diesel::prelude::*;
    let body: String = mail_outbox::table
        .filter(mail_outbox::kind.eq("summary"))
        .select(mail_outbox::body_text)
        .first(&mut **app.raw_connection())
        .unwrap();
    let heading = body
        .lines()
        .find(|l| l.starts_with("Readiness at "))
        .unwrap();
    assert!(
        heading.contains("(Europe/London)") && heading.matches(':').count() >= 2,
        "{heading}"
    );
    let moment = body
        .split("Judged as the records stood at ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the summary names its moment");
    let counts = body
        .lines()
        .skip_while(|l| !l.starts_with("Readiness at "))
        .nth(1)
        .unwrap();
    let summary_blockers: i64 = counts
        .trim_start_matches("- ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let then: Value = app
        .get(
            &app.clinic_path(&format!("/compliance?at={moment}")),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    let now: Value = app
        .get(&app.clinic_path("/compliance"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary_blockers, blockers(&then), "{body}\n{then}");
    assert!(
        blockers(&now) > blockers(&then),
        "the later steriliser is not in the summary"
    );
}
