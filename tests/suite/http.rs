//! The HTTP contract every route shares: problem documents, request ids, idempotency keys,
//! operations endpoints and the OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{assert_problem, Actor, TestApp};
use reqwest::{Method, Response};
use serde_json::{json, Value};

/// POST `body` to `path` as `actor` with an Idempotency-Key.
async fn post_keyed(app: &TestApp, path: &str, actor: &Actor, key: &str, body: &Value) -> Response {
    app.request(Method::POST, path, actor)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn new_tech(email: &str) -> Value {
    json!({"email": email, "display_name": "Sam Tech", "role": "technician"})
}

#[actix_web::test]
async fn unknown_routes_and_wrong_methods_are_problem_documents() {
    let app = TestApp::spawn().await;
    assert_problem(
        app.client
            .get(app.url("/no/such/route"))
            .send()
            .await
            .unwrap(),
        404,
        None,
    )
    .await;
    assert_problem(app.get("/api/v1/nothing-here", &app.owner).await, 404, None).await;

    let res = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    assert_problem(res, 405, None).await;
    let res = app
        .client
        .get(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "POST");
    assert_problem(res, 405, None).await;
    let res = app
        .request(Method::DELETE, &app.clinic_path("/members"), &app.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, POST");
    assert_problem(res, 405, None).await;
}

#[actix_web::test]
async fn wrong_content_type_oversized_and_malformed_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let path = app.clinic_path("/members");
    let text = app
        .request(Method::POST, &path, &app.owner)
        .header("content-type", "text/plain")
        .body(new_tech("a@ink.example").to_string())
        .send()
        .await
        .unwrap();
    assert_problem(text, 415, None).await;
    let none = app
        .request(Method::POST, &path, &app.owner)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(none, 415, None).await;

    let huge =
        json!({"email": "a@ink.example", "display_name": "x".repeat(70_000), "role": "technician"});
    assert_problem(app.post(&path, &app.owner, &huge).await, 413, None).await;

    let broken = app
        .request(Method::POST, &path, &app.owner)
        .header("content-type", "application/json")
        .body("{\"email\": \"a@ink.example\",")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(broken, 400, None).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("line 1"),
        "{problem}"
    );
    let members: Value = app.get(&path, &app.owner).await.json().await.unwrap();
    assert_eq!(
        members["items"].as_array().unwrap().len(),
        3,
        "nothing was created"
    );
}

#[actix_web::test]
async fn every_response_has_a_request_id_and_a_callers_id_is_kept() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36);
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc.123");
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "bad id with spaces");

    // The request id reaches the audit trail.
    let res = app
        .request(Method::POST, &app.clinic_path("/members"), &app.owner)
        .header("x-request-id", "create-sam-1")
        .json(&new_tech("sam@ink.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let events = app.audit_events().await;
    assert_eq!(events.last().unwrap()["request_id"], "create-sam-1");
}

#[actix_web::test]
async fn an_idempotency_key_replays_the_first_answer_and_creates_nothing_twice() {
    let app = TestApp::spawn().await;
    let path = app.clinic_path("/members");
    let first = post_keyed(
        &app,
        &path,
        &app.owner,
        "key-1",
        &new_tech("sam@ink.example"),
    )
    .await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body: Value = first.json().await.unwrap();
    let events_after_first = app.audit_events().await.len();

    let retry = post_keyed(
        &app,
        &path,
        &app.owner,
        "key-1",
        &new_tech("sam@ink.example"),
    )
    .await;
    assert_eq!(retry.status(), 202);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first_body);
    assert_eq!(
        app.audit_events().await.len(),
        events_after_first,
        "no second record or event"
    );

    let other_body = post_keyed(
        &app,
        &path,
        &app.owner,
        "key-1",
        &new_tech("someone-else@ink.example"),
    )
    .await;
    assert_problem(other_body, 422, None).await;

    // Keys are scoped to the caller: another user's identical key is a new request.
    let other_clinic = post_keyed(
        &app,
        &format!("/api/v1/clinics/{}/members", app.other_clinic_id),
        &app.other_owner,
        "key-1",
        &new_tech("sam@ink.example"),
    )
    .await;
    assert_eq!(other_clinic.status(), 202);
    assert!(other_clinic.headers().get("idempotent-replayed").is_none());

    let bad_key = post_keyed(&app, &path, &app.owner, "", &new_tech("x@ink.example")).await;
    assert_problem(bad_key, 422, Some("Idempotency-Key")).await;
}

#[actix_web::test]
async fn a_refused_request_is_replayed_as_refused() {
    let app = TestApp::spawn().await;
    let path = app.clinic_path("/members");
    for _ in 0..2 {
        let res = post_keyed(
            &app,
            &path,
            &app.owner,
            "dup",
            &new_tech("tech@ink.example"),
        )
        .await;
        assert_problem(res, 409, None).await;
    }
}

#[actix_web::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let health: Value = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    let expected = if common::is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(ready["database"], expected);

    // /metrics is exercised in operations.rs: it is not on the main listener by default.
}

#[actix_web::test]
async fn the_openapi_document_covers_every_route_and_the_docs_are_served() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me/password", "post"),
        ("/api/v1/clinics/{clinic}", "get"),
        ("/api/v1/clinics/{clinic}/members", "get"),
        ("/api/v1/clinics/{clinic}/members", "post"),
        ("/api/v1/clinics/{clinic}/members/{user}", "get"),
        ("/api/v1/clinics/{clinic}/members/{user}/role", "post"),
        ("/api/v1/clinics/{clinic}/members/{user}/deactivate", "post"),
        ("/api/v1/clinics/{clinic}/members/{user}/reactivate", "post"),
        ("/api/v1/clinics/{clinic}/audit/events", "get"),
        ("/api/v1/clinics/{clinic}/audit/verify", "get"),
        ("/api/v1/clinics/{clinic}/settings", "get"),
        ("/api/v1/clinics/{clinic}/settings", "put"),
        ("/api/v1/clinics/{clinic}/sterilisers", "get"),
        ("/api/v1/clinics/{clinic}/sterilisers", "post"),
        ("/api/v1/clinics/{clinic}/sterilisers/{id}", "get"),
        ("/api/v1/clinics/{clinic}/sterilisers/{id}/imports", "post"),
        (
            "/api/v1/clinics/{clinic}/sterilisers/{id}/csv-mapping",
            "get",
        ),
        (
            "/api/v1/clinics/{clinic}/sterilisers/{id}/csv-mapping",
            "put",
        ),
        ("/api/v1/clinics/{clinic}/imported-cycles", "get"),
        ("/api/v1/clinics/{clinic}/imported-cycles/{id}", "get"),
        ("/api/v1/clinics/{clinic}/device-files/{id}", "get"),
        (
            "/api/v1/clinics/{clinic}/sterilisers/{id}/amendments",
            "post",
        ),
        (
            "/api/v1/clinics/{clinic}/sterilisers/{id}/out-of-service",
            "post",
        ),
        (
            "/api/v1/clinics/{clinic}/sterilisers/{id}/return-to-service",
            "post",
        ),
        ("/api/v1/clinics/{clinic}/cycles", "get"),
        ("/api/v1/clinics/{clinic}/cycles", "post"),
        ("/api/v1/clinics/{clinic}/cycles/{id}", "get"),
        ("/api/v1/clinics/{clinic}/cycles/{id}/amendments", "post"),
        ("/api/v1/clinics/{clinic}/packs/{code}", "get"),
        ("/api/v1/clinics/{clinic}/packs/{code}/label", "get"),
        ("/api/v1/clinics/{clinic}/spore-tests", "get"),
        ("/api/v1/clinics/{clinic}/spore-tests", "post"),
        ("/api/v1/clinics/{clinic}/spore-tests/{id}", "get"),
        ("/api/v1/clinics/{clinic}/spore-tests/{id}/result", "post"),
        (
            "/api/v1/clinics/{clinic}/spore-tests/{id}/result/corrections",
            "post",
        ),
        (
            "/api/v1/clinics/{clinic}/spore-tests/{id}/amendments",
            "post",
        ),
        ("/api/v1/clinics/{clinic}/air-removal-tests", "get"),
        ("/api/v1/clinics/{clinic}/air-removal-tests", "post"),
        ("/api/v1/clinics/{clinic}/air-removal-tests/{id}", "get"),
        (
            "/api/v1/clinics/{clinic}/air-removal-tests/{id}/amendments",
            "post",
        ),
        ("/api/v1/clinics/{clinic}/lots", "get"),
        ("/api/v1/clinics/{clinic}/lots", "post"),
        ("/api/v1/clinics/{clinic}/lots/parse-barcode", "post"),
        ("/api/v1/clinics/{clinic}/lots/{id}", "get"),
        ("/api/v1/clinics/{clinic}/lots/{id}/amendments", "post"),
        ("/api/v1/clinics/{clinic}/lots/{id}/recall", "post"),
        ("/api/v1/clinics/{clinic}/lots/{id}/withdraw", "post"),
        ("/api/v1/clinics/{clinic}/credentials", "get"),
        ("/api/v1/clinics/{clinic}/credentials", "post"),
        ("/api/v1/clinics/{clinic}/credentials/{id}", "get"),
        ("/api/v1/clinics/{clinic}/credentials/{id}/verify", "post"),
        (
            "/api/v1/clinics/{clinic}/credentials/{id}/amendments",
            "post",
        ),
        ("/api/v1/clinics/{clinic}/members/{user}/eligibility", "get"),
        ("/api/v1/clinics/{clinic}/checklists", "get"),
        ("/api/v1/clinics/{clinic}/checklists", "post"),
        ("/api/v1/clinics/{clinic}/checklists/{id}", "get"),
        (
            "/api/v1/clinics/{clinic}/checklists/{id}/amendments",
            "post",
        ),
        ("/api/v1/clinics/{clinic}/clients", "get"),
        ("/api/v1/clinics/{clinic}/clients", "post"),
        ("/api/v1/clinics/{clinic}/clients/{id}", "get"),
        ("/api/v1/clinics/{clinic}/clients/{id}/amendments", "post"),
        ("/api/v1/clinics/{clinic}/sessions", "get"),
        ("/api/v1/clinics/{clinic}/sessions", "post"),
        ("/api/v1/clinics/{clinic}/sessions/{id}", "get"),
        ("/api/v1/clinics/{clinic}/sessions/{id}/answers", "post"),
        ("/api/v1/clinics/{clinic}/sessions/{id}/packs", "post"),
        ("/api/v1/clinics/{clinic}/sessions/{id}/lots", "post"),
        (
            "/api/v1/clinics/{clinic}/sessions/{id}/pack-removals",
            "post",
        ),
        ("/api/v1/clinics/{clinic}/sessions/{id}/readiness", "get"),
        ("/api/v1/clinics/{clinic}/sessions/{id}/start", "post"),
        ("/api/v1/clinics/{clinic}/sessions/{id}/complete", "post"),
        ("/api/v1/clinics/{clinic}/incidents", "get"),
        ("/api/v1/clinics/{clinic}/incidents", "post"),
        ("/api/v1/clinics/{clinic}/incidents/{id}", "get"),
        ("/api/v1/clinics/{clinic}/incidents/{id}/follow-ups", "post"),
        ("/api/v1/clinics/{clinic}/incidents/{id}/close", "post"),
        ("/api/v1/clinics/{clinic}/incidents/{id}/amendments", "post"),
        ("/api/v1/clinics/{clinic}/lookbacks", "get"),
        ("/api/v1/clinics/{clinic}/compliance", "get"),
        ("/api/v1/clinics/{clinic}/readiness", "get"),
        ("/.well-known/aseptic/export-key", "get"),
        ("/api/v1/clinics/{clinic}/inspectors", "get"),
        ("/api/v1/clinics/{clinic}/inspectors", "post"),
        ("/api/v1/clinics/{clinic}/inspectors/{id}/revoke", "post"),
        ("/api/v1/auth/invitations/accept", "post"),
        (
            "/api/v1/clinics/{clinic}/members/{user}/works-on-clients",
            "post",
        ),
        ("/api/v1/clinics/{clinic}/exports", "get"),
        ("/api/v1/clinics/{clinic}/exports", "post"),
        ("/api/v1/clinics/{clinic}/exports/{id}", "get"),
        ("/api/v1/clinics/{clinic}/exports/{id}/download", "get"),
        ("/api/v1/clinics/{clinic}/exports/{id}/send", "post"),
        ("/api/v1/clinics/{clinic}/mail", "get"),
        ("/api/v1/clinics/{clinic}/mail/settings", "get"),
        ("/api/v1/clinics/{clinic}/mail/settings", "put"),
        ("/api/v1/clinics/{clinic}/mail/{id}/resend", "post"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        expected.len(),
        "a route was added: list it here and test it"
    );

    let ui = app.client.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
    let redirect = app.client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(redirect.status(), 200, "/api/docs redirects to the UI");
}

#[actix_web::test]
async fn the_export_key_is_published_and_stays_the_same_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export-key.pem").display().to_string();
    let fetch = |app: &TestApp| {
        let url = app.url("/.well-known/aseptic/export-key");
        let client = app.client.clone();
        async move {
            let res = client.get(url).send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let first = {
        let path = path.clone();
        let app = TestApp::spawn_with(move |s| s.exports.signing_key_path = path).await;
        fetch(&app).await
    };
    assert_eq!(first["algorithm"], "Ed25519");
    assert!(first["public_key_pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(first["fingerprint_sha256"].as_str().unwrap().len(), 64);
    // The private key stays in its file, never in the database or the answer.
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!first.to_string().contains("PRIVATE"));
    let app = TestApp::spawn_with(move |s| s.exports.signing_key_path = path).await;
    assert_eq!(fetch(&app).await, first, "the same key after a restart");
    let res = app
        .client
        .get(app.url("/.well-known/aseptic/export-key?format=pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/x-pem-file"
    );
    assert_eq!(
        res.text().await.unwrap(),
        first["public_key_pem"].as_str().unwrap()
    );
}
