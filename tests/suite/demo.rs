//! `aseptic demo`: a living clinic whose records, look-backs and past views are all real.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use aseptic::demo::{generate, DemoOptions};
use aseptic::jurisdiction::profiles::Profiles;
use common::TestApp;
use serde_json::Value;

#[actix_web::test]
async fn the_demo_clinic_lives_its_history() {
    let app = TestApp::spawn().await;
    let profiles = Profiles::load(None).unwrap();
    // Generated off the runtime, so the server keeps serving (and its idle connections stay
    // orderly) meanwhile.
    let pool = app.pool.clone();
    let demo = actix_web::rt::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        generate(
            &mut conn,
            &profiles,
            &DemoOptions {
                months: 1,
                sessions_per_day: 6,
                cycles_per_day: 2,
                ..Default::default()
            },
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert!(demo.counts.days >= 28);
    assert_eq!(demo.counts.sessions, demo.counts.days * 6);
    let owner = app
        .login_with(&demo.accounts[0].email, &demo.accounts[0].password)
        .await;
    let inspector = app
        .login_with(&demo.accounts[3].email, &demo.accounts[3].password)
        .await;
    let path = |rest: &str| format!("/api/v1/clinics/{}{rest}", demo.clinic_id);
    let get = |p: String, who| {
        let app = &app;
        async move {
            let res = app.get(&p, who).await;
            assert_eq!(res.status(), 200, "{p}");
            res.json::<Value>().await.unwrap()
        }
    };

    // The chain of every record written on its day verifies.
    let verify = get(path("/audit/verify"), &owner).await;
    assert_eq!(verify["valid"], true, "{verify}");

    // The failed spore test reaches back to the last negative one: a week of sessions, each
    // with the client's contact.
    let lookback = get(
        path(&format!(
            "/lookbacks?spore_test={}",
            demo.failed_spore_test_id
        )),
        &owner,
    )
    .await;
    let sessions = lookback["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 7 * 6, "{lookback}");
    assert!(sessions
        .iter()
        .all(|s| s["client_contact"].as_str().unwrap().starts_with("+44")));
    // The recalled lot reaches the sessions that used it.
    let recalled = get(
        path(&format!("/lookbacks?lot={}", demo.recalled_lot_id)),
        &owner,
    )
    .await;
    assert!(!recalled["sessions"].as_array().unwrap().is_empty());

    // The recalled stock went back to the supplier: the lot says so, and asks nothing more.
    let lot = get(path(&format!("/lots/{}", demo.recalled_lot_id)), &owner).await;
    assert_eq!(lot["status"], "withdrawn", "{lot}");
    assert!(
        lot["recall"].is_object() && lot["withdrawal"].is_object(),
        "{lot}"
    );

    // Now: the open incident shows; nothing blocks.
    let now = get(path("/compliance"), &inspector).await;
    let rules: Vec<&str> = now["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(now["summary"]["blocker"], 0, "{now}");
    assert!(!rules.contains(&"lot_recalled"), "{now}");
    assert!(rules.contains(&"incident_follow_up"), "{now}");

    // As of the morning the test was read positive, the steriliser was quarantined.
    let test = get(
        path(&format!("/spore-tests/{}", demo.failed_spore_test_id)),
        &owner,
    )
    .await;
    let read_at = chrono::DateTime::parse_from_rfc3339(test["result"]["read_at"].as_str().unwrap())
        .unwrap()
        + chrono::Duration::minutes(30);
    let then = get(
        path(&format!(
            "/compliance?at={}",
            read_at.to_rfc3339().replace('+', "%2B")
        )),
        &owner,
    )
    .await;
    assert!(
        then["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "failed_spore_test"),
        "{then}"
    );
}
