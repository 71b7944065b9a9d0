//! The audit chain: every write lands in it, it verifies, it catches tampering, and it never forks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{assert_problem, is_postgres, TestApp};
use diesel::connection::SimpleConnection;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

async fn verify(app: &TestApp) -> Value {
    let res = app.get(&app.clinic_path("/audit/verify"), &app.owner).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn allow_tampering(app: &TestApp) -> aseptic::db::PooledConn {
    let mut conn = app.raw_connection();
    let sql = if is_postgres() {
        "ALTER TABLE audit_events DISABLE TRIGGER USER"
    } else {
        "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"
    };
    conn.batch_execute(sql).unwrap();
    conn
}

#[actix_web::test]
async fn a_new_clinic_chain_starts_at_one_and_verifies() {
    let app = TestApp::spawn().await;
    let events = app.audit_events().await;
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    // The clinic, its owner, its checklist, a technician, an inspector and their grant.
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert_eq!(events[5]["action"], "inspector.granted");
    assert_eq!(events[0]["action"], "clinic.created");
    assert_eq!(events[0]["actor_kind"], "operator");
    assert_eq!(events[0]["prev_hash"], "0".repeat(64));
    for pair in events.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    let v = verify(&app).await;
    assert_eq!(v["valid"], true);
    assert_eq!(v["events_checked"], 6);
    assert_eq!(v["head_seq"], 6);
    assert_eq!(v["head_hash"], events[5]["hash"]);
    // The inspector may read and verify too; the other clinic's chain is separate.
    assert_eq!(
        app.get(&app.clinic_path("/audit/verify"), &app.inspector)
            .await
            .status(),
        200
    );
    let other: Value = app
        .get(
            &format!("/api/v1/clinics/{}/audit/events", app.other_clinic_id),
            &app.other_owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["items"].as_array().unwrap().len(), 3);
}

/// The worked example of docs/audit-chain.md, recomputed the way an outsider would.
#[actix_web::test]
async fn an_event_hash_can_be_recomputed_from_the_api_alone() {
    let app = TestApp::spawn().await;
    for event in app.audit_events().await {
        let envelope = json!({
            "v": 1,
            "clinic_id": app.clinic_id,
            "seq": event["seq"],
            "recorded_at": event["recorded_at"],
            "actor_kind": event["actor_kind"],
            "actor_id": event["actor_id"],
            "action": event["action"],
            "entity_kind": event["entity_kind"],
            "entity_id": event["entity_id"],
            "payload": event["payload"],
            "reason": event["reason"],
            "request_id": event["request_id"],
        });
        let canonical = aseptic::audit::canonical::to_canonical_string(&envelope);
        let mut hasher = Sha256::new();
        hasher.update(hex::decode(event["prev_hash"].as_str().unwrap()).unwrap());
        hasher.update(canonical.as_bytes());
        assert_eq!(
            hex::encode(hasher.finalize()),
            event["hash"].as_str().unwrap()
        );
        let recorded_at = event["recorded_at"].as_str().unwrap();
        assert_eq!(
            recorded_at.len(),
            "2026-11-25T09:30:00.123456Z".len(),
            "{recorded_at}"
        );
    }
}

#[actix_web::test]
async fn the_chain_refuses_updates_and_deletes() {
    let app = TestApp::spawn().await;
    let mut conn = app.raw_connection();
    let update = conn.batch_execute("UPDATE audit_events SET action = 'forged' WHERE seq = 1");
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = conn.batch_execute("DELETE FROM audit_events WHERE seq = 4");
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert_eq!(verify(&app).await["valid"], true);
}

#[actix_web::test]
async fn verification_names_an_altered_event() {
    let app = TestApp::spawn().await;
    let mut conn = allow_tampering(&app);
    conn.batch_execute(&format!(
        "UPDATE audit_events SET payload = '{{\"role\":\"owner\"}}' WHERE clinic_id = '{}' AND seq = 3",
        app.clinic_id
    ))
    .unwrap();
    let v = verify(&app).await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["first_break"]["seq"], 3);
    assert!(
        v["first_break"]["reason"]
            .as_str()
            .unwrap()
            .contains("altered"),
        "{v}"
    );
}

#[actix_web::test]
async fn verification_catches_a_deleted_tail_and_a_deleted_middle() {
    let app = TestApp::spawn().await;
    let mut conn = allow_tampering(&app);
    conn.batch_execute(&format!(
        "DELETE FROM audit_events WHERE clinic_id = '{}' AND seq = 4",
        app.clinic_id
    ))
    .unwrap();
    let v = verify(&app).await;
    assert_eq!(v["valid"], false);
    assert!(
        v["first_break"]["reason"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{v}"
    );

    conn.batch_execute(&format!(
        "DELETE FROM audit_events WHERE clinic_id = '{}' AND seq = 2",
        app.clinic_id
    ))
    .unwrap();
    let v = verify(&app).await;
    assert_eq!(v["first_break"]["seq"], 3);
    assert!(
        v["first_break"]["reason"]
            .as_str()
            .unwrap()
            .contains("events 2 to 2 are missing"),
        "{v}"
    );
}

#[actix_web::test]
async fn events_are_paged_and_filtered() {
    let app = TestApp::spawn().await;
    let page: Value = app
        .get(&app.clinic_path("/audit/events?limit=3"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get(
            &app.clinic_path(&format!("/audit/events?limit=3&cursor={cursor}")),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["items"][0]["seq"], 4);
    assert!(next["next_cursor"].is_null());

    // Newest first: the same events, paged backwards through the chain.
    let mut newest: Vec<i64> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/audit/events?order=desc&limit=2&cursor={c}"),
            None => "/audit/events?order=desc&limit=2".into(),
        };
        let page: Value = app
            .get(&app.clinic_path(&path), &app.owner)
            .await
            .json()
            .await
            .unwrap();
        newest.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(newest, [6, 5, 4, 3, 2, 1]);

    let members: Value = app
        .get(
            &app.clinic_path("/audit/events?entity_kind=member"),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members["items"].as_array().unwrap().len(), 3);
    let future: Value = app
        .get(
            &app.clinic_path("/audit/events?from=2100-01-01T00:00:00Z"),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(future["items"].as_array().unwrap().is_empty());

    for bad in [
        "limit=0",
        "limit=501",
        "cursor=abc",
        "from=yesterday",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let res = app
            .get(
                &app.clinic_path(&format!("/audit/events?{bad}")),
                &app.owner,
            )
            .await;
        assert_problem(res, 422, None).await;
    }
}

#[actix_web::test]
async fn technicians_do_not_read_the_audit_trail() {
    let app = TestApp::spawn().await;
    assert_problem(
        app.get(&app.clinic_path("/audit/events"), &app.technician)
            .await,
        403,
        None,
    )
    .await;
    assert_problem(
        app.get(&app.clinic_path("/audit/verify"), &app.technician)
            .await,
        403,
        None,
    )
    .await;
}

/// 64 writers at once on one clinic: every write is acknowledged (no 5xx, no 503), and the
/// chain stays one line with no gaps and no forks.
#[actix_web::test]
async fn concurrent_writes_never_fork_the_chain() {
    let app = TestApp::spawn().await;
    let path = app.clinic_path("/members");
    let bodies: Vec<Value> = (0..64)
        .map(|i| json!({"email": format!("t{i}@ink.example"), "display_name": format!("Tech {i}"), "role": "technician"}))
        .collect();
    let writes = bodies.iter().map(|body| app.post(&path, &app.owner, body));
    let results = futures_util::future::join_all(writes).await;
    let created = results.iter().filter(|r| r.status() == 202).count();
    assert!(
        results.iter().all(|r| r.status() == 202),
        "64 writers at once: every write gets through, no 5xx"
    );
    let events = app.audit_events().await;
    assert_eq!(events.len(), 6 + created);
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let v = verify(&app).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(created, 64);
}

/// The Python recipe of docs/audit-chain.md, as printed there, fed every page of the API's own
/// answer. Events recorded on a whole second and on a whole millisecond are among them: a
/// `recorded_at` printed in any shorter form than the hashed one breaks the recipe.
#[actix_web::test]
async fn the_documented_recipe_recomputes_the_chain_from_the_api_output() {
    use chrono::NaiveDate;
    let app = TestApp::spawn().await;
    let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    for (n, at) in [
        day.and_hms_opt(5, 0, 0).unwrap(),
        day.and_hms_milli_opt(5, 0, 1, 120).unwrap(),
        day.and_hms_micro_opt(5, 0, 2, 123_450).unwrap(),
    ]
    .into_iter()
    .enumerate()
    {
        aseptic::clock::backdated(at, || {
            app.add_member(
                &app.clinic_id,
                &format!("staff{n}@ink.example"),
                aseptic::auth::Role::Technician,
            )
        });
    }
    let events = app.audit_events().await;
    let printed: Vec<&str> = events
        .iter()
        .map(|e| e["recorded_at"].as_str().unwrap())
        .collect();
    assert!(
        printed.contains(&"2026-11-25T05:00:00.000000Z"),
        "{printed:?}"
    );
    assert!(
        printed.contains(&"2026-11-25T05:00:01.120000Z"),
        "{printed:?}"
    );

    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/audit-chain.md"),
    )
    .unwrap();
    let recipe = doc
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/audit-chain.md has a Python recipe");
    let script = format!(
        "{recipe}\nimport sys\ndata = json.load(sys.stdin)\nprint(verify(data['events'], data['clinic_id']))\n"
    );
    let input = json!({"clinic_id": app.clinic_id, "events": events}).to_string();
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the recipe rejected the API's own events: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = verify(&app).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        head["head_hash"].as_str().unwrap()
    );
}

/// Every change to a clinic's records goes through `audit::audited`, which refuses to commit a
/// change that appended no audit event: it rolls back and says so.
#[actix_web::test]
async fn a_change_without_its_audit_event_is_rolled_back() {
    let app = TestApp::spawn().await;
    let before = app.audit_events().await.len();
    let mut conn = app.raw_connection();
    let clinic = app.clinic_id.clone();
    let outcome = aseptic::audit::audited(&mut conn, &clinic, |conn| {
        conn.batch_execute(&format!(
            "UPDATE clinics SET name = 'Renamed quietly' WHERE id = '{clinic}'"
        ))?;
        Ok(())
    });
    let err = outcome.unwrap_err().to_string();
    assert!(err.contains("no audit event"), "{err}");
    drop(conn);
    let clinic: Value = app
        .get(&app.clinic_path(""), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(clinic["name"], "Ink & Needle", "the change was rolled back");
    assert_eq!(app.audit_events().await.len(), before);
}
