//! Two instances of the service on one database, as a chain of clinics runs them behind a load
//! balancer: whatever one instance is told, the other honours on its very next request. Nothing
//! an instance keeps in memory may let a revoked caller in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{assert_problem, TestApp, PASSWORD};
use serde_json::{json, Value};

#[actix_web::test]
async fn a_revocation_on_one_instance_counts_on_the_next_request_to_the_other() {
    let app = TestApp::spawn_binary().await;
    let other = app.second_instance().await;
    let client = reqwest::Client::new();
    let get = |path: String, token: String| {
        let client = client.clone();
        let url = other.url(&path);
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let compliance = app.clinic_path("/compliance");
    let settings = app.clinic_path("/settings");

    // Everyone is let in by the other instance, and it has read what it reads for them.
    for actor in [&app.owner, &app.technician, &app.inspector] {
        let res = get(app.clinic_path("/sessions"), actor.token.clone()).await;
        assert_eq!(res.status(), 200, "{}", actor.email);
    }
    let before: Value = get(settings.clone(), app.owner.token.clone())
        .await
        .json()
        .await
        .unwrap();

    // A clinic setting changed through the first instance is what the second answers next.
    let days = if before["pack_shelf_life_days"] == json!(20) {
        25
    } else {
        20
    };
    let res = app
        .request(reqwest::Method::PUT, &settings, &app.owner)
        .json(&json!({"pack_shelf_life_days": days}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let after: Value = get(settings.clone(), app.owner.token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["pack_shelf_life_days"], json!(days));

    // The inspector's grant is revoked on the first instance: the second refuses at once.
    let grants: Value = app
        .get(&app.clinic_path("/inspectors"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let grant = grants[0]["id"].as_str().unwrap().to_owned();
    let res = app
        .post(
            &app.clinic_path(&format!("/inspectors/{grant}/revoke")),
            &app.owner,
            &json!({"reason": "inspection finished"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_problem(
        get(compliance.clone(), app.inspector.token.clone()).await,
        403,
        None,
    )
    .await;

    // The technician is deactivated on the first instance: the second refuses at once.
    let res = app
        .post(
            &app.clinic_path(&format!("/members/{}/deactivate", app.technician.user_id)),
            &app.owner,
            &json!({"reason": "left the studio"}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    // A former member is told there is no such clinic, as anyone else is.
    assert_problem(
        get(app.clinic_path("/sessions"), app.technician.token.clone()).await,
        404,
        None,
    )
    .await;

    // The owner changes their password on the first instance: the old token is refused by the
    // second on its very next request, for the clinic's routes and for /me alike.
    let res = app
        .post(
            "/api/v1/me/password",
            &app.owner,
            &json!({"current_password": PASSWORD, "new_password": "a brand new passphrase 2026"}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_problem(get(compliance, app.owner.token.clone()).await, 401, None).await;
    assert_problem(
        get("/api/v1/me".to_owned(), app.owner.token.clone()).await,
        401,
        None,
    )
    .await;
}
