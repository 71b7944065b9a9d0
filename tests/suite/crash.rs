//! Crash safety: the real binary is killed (SIGKILL) at random moments while writers record
//! cycles with packs and keyed client creations, then started again. Every write that was
//! acknowledged is there, nothing is half-written, a retried key never makes a second record,
//! and the audit chain verifies.
//!
//! CI kills it a few times; `ASEPTIC_CRASH_KILLS=25 cargo test --test suite crash` is the long
//! run (see docs/reliability.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::common;

use chrono::{Duration, Utc};
use common::{Actor, TestApp};
use rand::Rng;
use serde_json::{json, Value};

const WRITERS: usize = 8;
const PACKS_PER_LOAD: usize = 3;

/// What the writers were told, and what they are still waiting to hear.
#[derive(Default)]
struct Ledger {
    /// Cycles acknowledged with 201: id and packs asked for.
    cycles: Vec<(String, usize)>,
    /// Client creations by Idempotency-Key: the id once acknowledged.
    clients: BTreeMap<String, Option<String>>,
    /// 5xx answers other than 503 (a 503 while the service stops or starts is allowed).
    errors: Vec<String>,
}

fn client_body(key: &str) -> Value {
    json!({"name": format!("Crash {key}"), "contact": "+44 7700 900123", "date_of_birth": "1980-01-01"})
}

fn cycle_body(steriliser: &str, number: i64) -> Value {
    let started = Utc::now() - Duration::hours(2);
    json!({
        "steriliser_id": steriliser, "cycle_number": number,
        "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
        "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(40)).to_rfc3339(),
        "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
        "load_indicator": {"type": 5, "passed": true},
        "packs": (0..PACKS_PER_LOAD).map(|i| json!({"contents": format!("pack {i}")})).collect::<Vec<_>>()})
}

/// One writer: cycles and keyed clients in turn until the service stops answering.
/// What the writers share: the next cycle number and key, the ledger, and the stop signal.
struct Shared {
    numbers: Cell<i64>,
    keys: Cell<u64>,
    ledger: RefCell<Ledger>,
}

async fn writer(
    base: String,
    clinic: String,
    owner: Actor,
    steriliser: String,
    shared: Rc<Shared>,
    stop: Rc<Cell<bool>>,
) {
    let Shared {
        numbers,
        keys,
        ledger,
    } = &*shared;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    // A writer stops at its first unanswered request, or when the service has been killed
    // (one that was between requests must not carry on into the restarted service).
    while !stop.get() {
        let number = numbers.get();
        numbers.set(number + 1);
        let res = client
            .post(format!("{base}/api/v1/clinics/{clinic}/cycles"))
            .bearer_auth(&owner.token)
            .json(&cycle_body(&steriliser, number))
            .send()
            .await;
        let Ok(res) = res else { return };
        let status = res.status().as_u16();
        let Ok(body) = res.json::<Value>().await else {
            return;
        };
        match status {
            201 => ledger
                .borrow_mut()
                .cycles
                .push((body["id"].as_str().unwrap().to_owned(), PACKS_PER_LOAD)),
            503 => {}
            s if s >= 500 => ledger
                .borrow_mut()
                .errors
                .push(format!("cycle: {s} {body}")),
            s => panic!("cycle {number}: {s} {body}"),
        }

        let key = format!("crash-{}", keys.get());
        keys.set(keys.get() + 1);
        ledger.borrow_mut().clients.insert(key.clone(), None);
        let res = client
            .post(format!("{base}/api/v1/clinics/{clinic}/clients"))
            .bearer_auth(&owner.token)
            .header("idempotency-key", &key)
            .json(&client_body(&key))
            .send()
            .await;
        let Ok(res) = res else { return };
        let status = res.status().as_u16();
        let Ok(body) = res.json::<Value>().await else {
            return;
        };
        match status {
            201 | 200 => {
                ledger
                    .borrow_mut()
                    .clients
                    .insert(key, Some(body["id"].as_str().unwrap().to_owned()));
            }
            503 => {}
            s if s >= 500 => ledger
                .borrow_mut()
                .errors
                .push(format!("client: {s} {body}")),
            s => panic!("client {key}: {s} {body}"),
        }
    }
}

async fn get_ok(app: &TestApp, path: &str, who: &Actor) -> Value {
    let res = app.get(path, who).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[actix_web::test]
async fn acknowledged_writes_survive_kills_and_retried_keys_make_one_record() {
    let kills: usize = std::env::var("ASEPTIC_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(4);
    let mut app = TestApp::spawn_binary().await;
    let steriliser = app
        .post(
            &app.clinic_path("/sterilisers"),
            &app.owner,
            &json!({"make": "SciCan", "model": "Statim 2000", "serial_number": "CR-1", "kind": "pre_vacuum"}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shared = Rc::new(Shared {
        numbers: Cell::new(1),
        keys: Cell::new(0),
        ledger: RefCell::new(Ledger::default()),
    });
    let ledger = &shared.ledger;
    let mut rng = rand::thread_rng();
    let mut retried = 0;
    for _ in 0..kills {
        let stop = Rc::new(Cell::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                actix_web::rt::spawn(writer(
                    app.base.clone(),
                    app.clinic_id.clone(),
                    app.owner.clone(),
                    steriliser.clone(),
                    shared.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        // Killed at a random moment in the middle of the writes.
        tokio::time::sleep(std::time::Duration::from_millis(rng.gen_range(300..1500))).await;
        app.kill();
        stop.set(true);
        app.restart().await;
        for w in writers {
            w.await.unwrap();
        }
        // Keys that got no answer are sent again, with the same body, as a client would.
        let unanswered: Vec<String> = ledger
            .borrow()
            .clients
            .iter()
            .filter(|(_, id)| id.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        for key in unanswered {
            retried += 1;
            let id = app.keyed_client(&key, &client_body(&key)).await;
            ledger.borrow_mut().clients.insert(key, Some(id));
        }
    }

    let ledger = std::mem::take(&mut *ledger.borrow_mut());
    assert!(ledger.errors.is_empty(), "5xx seen: {:?}", ledger.errors);
    assert!(
        !ledger.cycles.is_empty(),
        "the writers got some cycles acknowledged"
    );
    // Every acknowledged cycle is there with every pack.
    for (id, packs) in &ledger.cycles {
        let cycle = get_ok(&app, &app.clinic_path(&format!("/cycles/{id}")), &app.owner).await;
        assert_eq!(cycle["packs"].as_array().unwrap().len(), *packs, "{cycle}");
    }
    // Nothing half-written: every cycle the service has (acknowledged or not) has all its packs.
    let all_cycles = app.all_items(&app.clinic_path("/cycles"), &app.owner).await;
    for c in &all_cycles {
        assert_eq!(c["packs"].as_array().unwrap().len(), PACKS_PER_LOAD, "{c}");
    }
    let listed = all_cycles.len();
    assert!(listed >= ledger.cycles.len());
    // One client per key, the one its answer named.
    let clients = app.clients_by_name().await;
    for (key, id) in &ledger.clients {
        let found = clients
            .get(&format!("Crash {key}"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(found, vec![id.clone().unwrap()], "{key}");
    }
    // The chain of every clinic verifies.
    let verified = get_ok(&app, &app.clinic_path("/audit/verify"), &app.owner).await;
    assert_eq!(verified["valid"], true, "{verified}");
    let other = get_ok(
        &app,
        &format!("/api/v1/clinics/{}/audit/verify", app.other_clinic_id),
        &app.other_owner,
    )
    .await;
    assert_eq!(other["valid"], true, "{other}");
    eprintln!(
        "crash safety: {kills} kills survived; {} cycles acknowledged and found ({} listed, every one whole); \
         {} keyed clients, one record each ({retried} keys retried after a kill); chain of {} events verified",
        ledger.cycles.len(),
        listed,
        ledger.clients.len(),
        verified["events_checked"]
    );
}
