//! Failing dependencies under load: the database stopping and starting again, a pool with no
//! connection to give, and the service asked to stop while requests are in flight. Each answers
//! 503 with Retry-After or finishes what it started, and nothing acknowledged is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::common;

use common::{is_postgres, Actor, TestApp};
use serde_json::{json, Value};

fn client_body(key: &str) -> Value {
    json!({"name": format!("Fault {key}"), "contact": "+44 7700 900123", "date_of_birth": "1980-01-01"})
}

/// What keyed writers heard: the id each key was acknowledged with, the keys with no answer or
/// a 503, the statuses seen, and 503s that did not say when to retry.
#[derive(Default)]
struct Heard {
    acknowledged: BTreeMap<String, String>,
    to_retry: Vec<String>,
    statuses: BTreeMap<u16, usize>,
    unavailable_without_retry_after: usize,
}

/// Keyed client creations until `stop` is set. A request not answered within 10 s counts as
/// hung and fails the test.
async fn keyed_writer(
    base: String,
    clinic: String,
    owner: Actor,
    prefix: String,
    heard: Rc<RefCell<Heard>>,
    stop: Rc<Cell<bool>>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut n = 0;
    while !stop.get() {
        let key = format!("{prefix}-{n}");
        n += 1;
        let res = client
            .post(format!("{base}/api/v1/clinics/{clinic}/clients"))
            .bearer_auth(&owner.token)
            .header("idempotency-key", &key)
            .json(&client_body(&key))
            .send()
            .await;
        let res = match res {
            Ok(res) => res,
            Err(e) => {
                assert!(!e.is_timeout(), "a request hung: {e}");
                heard.borrow_mut().to_retry.push(key);
                // The service is stopping or gone; the next request says which.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let status = res.status().as_u16();
        let retry_after = res.headers().contains_key("retry-after");
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let mut heard = heard.borrow_mut();
        *heard.statuses.entry(status).or_default() += 1;
        match status {
            200 | 201 => {
                let id = body["id"].as_str().unwrap().to_owned();
                heard.acknowledged.insert(key, id);
            }
            503 => {
                if !retry_after {
                    heard.unavailable_without_retry_after += 1;
                }
                heard.to_retry.push(key);
            }
            other => panic!("{key}: {other} {body}"),
        }
    }
}

/// 16 keyed writers, each with its own keys under `prefix`, until `stop` is set.
fn spawn_writers(
    app: &TestApp,
    prefix: &str,
    heard: &Rc<RefCell<Heard>>,
    stop: &Rc<Cell<bool>>,
) -> Vec<actix_web::rt::task::JoinHandle<()>> {
    (0..16)
        .map(|w| {
            actix_web::rt::spawn(keyed_writer(
                app.base.clone(),
                app.clinic_id.clone(),
                app.owner.clone(),
                format!("{prefix}-{w}"),
                heard.clone(),
                stop.clone(),
            ))
        })
        .collect()
}

/// Sends every key that got no answer or a 503 again, as a client would, and records the ids.
async fn retry_all(app: &TestApp, heard: &RefCell<Heard>) {
    let keys = std::mem::take(&mut heard.borrow_mut().to_retry);
    for key in keys {
        let id = app.keyed_client(&key, &client_body(&key)).await;
        heard.borrow_mut().acknowledged.insert(key, id);
    }
}

/// Every acknowledged key is one client, the one its answer named.
async fn assert_each_key_one_client(app: &TestApp, heard: &Heard) {
    let by_name = app.clients_by_name().await;
    for (key, id) in &heard.acknowledged {
        assert_eq!(
            by_name.get(&format!("Fault {key}")),
            Some(&vec![id.clone()]),
            "{key}"
        );
    }
    let verified: Value = app
        .get(&app.clinic_path("/audit/verify"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["valid"], true, "{verified}");
}

async fn ready(app: &TestApp) -> bool {
    app.client
        .get(app.url("/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

/// PostgreSQL stops for three seconds while 16 writers keep writing: each request answers 503
/// with Retry-After instead of hanging, the service recovers by itself when the database is
/// back, and every write acknowledged before, during or after is there once.
#[actix_web::test]
async fn the_database_stopping_under_load_gives_503_and_loses_nothing() {
    if !is_postgres() {
        return;
    }
    let (app, proxy) = TestApp::spawn_through_proxy(|s| {
        s.database.acquire_timeout_secs = 1;
        s.database.connect_timeout_secs = 1;
        s.database.statement_timeout_secs = 2;
        s.database.ready_timeout_secs = 1;
    })
    .await;
    let heard = Rc::new(RefCell::new(Heard::default()));
    let stop = Rc::new(Cell::new(false));
    let writers = spawn_writers(&app, "pg-stop", &heard, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.down(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!ready(&app).await, "not ready while the database is down");
    proxy.down(false);
    assert!(app.until_ready().await, "ready again without a restart");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.set(true);
    for w in writers {
        w.await.unwrap();
    }
    retry_all(&app, &heard).await;
    let heard = std::mem::take(&mut *heard.borrow_mut());
    assert!(
        heard.statuses.get(&503).copied().unwrap_or(0) > 0,
        "the stop was seen: {:?}",
        heard.statuses
    );
    assert_eq!(heard.unavailable_without_retry_after, 0);
    assert!(
        heard.statuses.keys().all(|s| [200, 201, 503].contains(s)),
        "{:?}",
        heard.statuses
    );
    assert_each_key_one_client(&app, &heard).await;
    eprintln!(
        "database stop: {} writes acknowledged, answers {:?}",
        heard.acknowledged.len(),
        heard.statuses
    );
}

/// Ten times the pool's connections asked for while the database stalls: the excess answers 503
/// with Retry-After within the acquire time-out, and liveness keeps answering meanwhile.
#[actix_web::test]
async fn an_exhausted_pool_answers_503_and_liveness_still_answers() {
    if !is_postgres() {
        return;
    }
    let (app, proxy) = TestApp::spawn_through_proxy(|s| {
        s.database.pool_size = 3;
        s.database.acquire_timeout_secs = 1;
        s.database.statement_timeout_secs = 2;
        s.database.ready_timeout_secs = 1;
    })
    .await;
    proxy.stall(true);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let reads = (0..30).map(|_| {
        client
            .get(app.url(&app.clinic_path("/cycles")))
            .bearer_auth(&app.owner.token)
            .send()
    });
    let live = async {
        // Meanwhile, liveness answers: it needs no connection.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut answered = 0;
        for _ in 0..5 {
            let res = client.get(app.url("/healthz")).send().await.unwrap();
            assert_eq!(res.status(), 200);
            answered += 1;
        }
        answered
    };
    let (answers, live) =
        futures_util::future::join(futures_util::future::join_all(reads), live).await;
    assert_eq!(live, 5);
    for res in answers {
        let res = res.expect("answered, not hung");
        assert_eq!(res.status(), 503);
        assert!(res.headers().contains_key("retry-after"));
    }
    proxy.stall(false);
    proxy.cut();
    assert!(app.until_ready().await);
    assert_eq!(
        app.get(&app.clinic_path("/cycles"), &app.owner)
            .await
            .status(),
        200
    );
}

/// SIGTERM while 16 writers write: requests in flight finish, the process exits cleanly, and
/// after a restart every acknowledged write is there once.
#[actix_web::test]
async fn a_stop_under_load_finishes_what_it_started() {
    let mut app = TestApp::spawn_binary().await;
    let heard = Rc::new(RefCell::new(Heard::default()));
    let stop = Rc::new(Cell::new(false));
    let writers = spawn_writers(&app, "term", &heard, &stop);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let status = app.terminate();
    stop.set(true);
    for w in writers {
        w.await.unwrap();
    }
    assert!(status.success(), "a clean exit: {status}");
    app.restart().await;
    retry_all(&app, &heard).await;
    let heard = std::mem::take(&mut *heard.borrow_mut());
    assert!(
        heard.statuses.keys().all(|s| [200, 201, 503].contains(s)),
        "{:?}",
        heard.statuses
    );
    assert!(!heard.acknowledged.is_empty());
    assert_each_key_one_client(&app, &heard).await;
}

/// Connections the server ended while they sat in the pool (a restart at night, a failover, an
/// idle time-out on the way) are never lent to the next requests: a connection quiet for more
/// than a second is asked to answer before it is lent, and a dead one is replaced.
#[actix_web::test]
async fn connections_the_server_ended_while_idle_are_replaced_before_use() {
    use diesel::prelude::*;
    if !is_postgres() {
        return;
    }
    // The mail worker polls on the same pool; left to it, it would meet the ended connections
    // first and the requests would never see one.
    let app = TestApp::spawn_with(|s| {
        s.database.pool_size = 4;
        s.mail.poll_interval_ms = 3_600_000;
    })
    .await;
    // Several requests at once, so several connections are in the pool.
    let me = || app.get("/api/v1/me", &app.owner);
    let first = futures_util::future::join_all((0..8).map(|_| me())).await;
    assert!(first.iter().all(|r| r.status() == 200));

    let name = app
        .database_url
        .rsplit('/')
        .next()
        .and_then(|rest| rest.split('?').next())
        .unwrap()
        .to_owned();
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    let mut conn = diesel::PgConnection::establish(&admin).unwrap();
    let ended: Vec<Ended> = diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .load(&mut conn)
    .unwrap();
    assert!(
        ended.iter().any(|e| e.ended),
        "the service's connections were ended"
    );
    tokio::time::sleep(aseptic::db::ANSWERED_RECENTLY + Duration::from_millis(300)).await;

    for round in 0..3 {
        let answers = futures_util::future::join_all((0..8).map(|_| me())).await;
        let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "round {round} after the server ended the pool's connections: {statuses:?}"
        );
    }
}

#[derive(diesel::QueryableByName)]
struct Ended {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ended: bool,
}
