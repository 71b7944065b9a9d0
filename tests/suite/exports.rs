//! Audit exports: built from the records, signed, and verifiable without trusting anyone; every
//! kind of tampering is caught.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{Cursor, Read, Write};

use aseptic::exports::bundle::{verify, Manifest};
use aseptic::exports::ExportKey;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use common::{assert_problem, TestApp};
use ed25519_dalek::VerifyingKey;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

async fn some_records(app: &TestApp) {
    let o = &app.owner;
    let s = ok(app
        .post(
            &app.clinic_path("/sterilisers"),
            o,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "S1", "kind": "gravity"}),
        )
        .await)
    .await;
    let started = Utc::now() - Duration::hours(3);
    ok(app.post(&app.clinic_path("/cycles"), o, &json!({
        "steriliser_id": s["id"], "cycle_number": 1, "program": {"name": "121", "temperature_c": 121.0, "hold_minutes": 30.0},
        "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(50)).to_rfc3339(),
        "peak_temperature_c": 122.0, "peak_pressure_kpa": 213.0, "hold_minutes": 31.0,
        "load_indicator": {"type": 5, "passed": true}, "packs": [{"contents": "- grips (spare)"}, {"contents": "tips"}]})).await).await;
    ok(app.post(&app.clinic_path("/lots"), o, &json!({"kind": "pigment", "manufacturer": "M", "product_name": "P", "lot_number": "LOT-77", "expiry_date": (Utc::now() + Duration::days(300)).date_naive().to_string(), "sterilisation_method": "gamma", "received_on": (Utc::now() - Duration::days(5)).date_naive().to_string(), "quantity_received": 1})).await).await;
    ok(app.post(&app.clinic_path("/credentials"), o, &json!({"user_id": app.technician.user_id, "kind": "hepatitis_b", "hepatitis_b_status": "vaccinated"})).await).await;
    let client = ok(app.post(&app.clinic_path("/clients"), &app.technician, &json!({"name": "Alex Client", "contact": "+44 7700 900123", "date_of_birth": "1990-04-02"})).await).await;
    ok(app.post(&app.clinic_path("/sessions"), &app.technician, &json!({"client_id": client["id"], "station": "Chair 2", "procedure": "SMP", "planned_at": Utc::now().to_rfc3339()})).await).await;
}

/// Requests an export of the last day and waits until it is built; returns the zip.
async fn export(app: &TestApp) -> (Value, Vec<u8>) {
    let requested = app
        .post(
            &app.clinic_path("/exports"),
            &app.owner,
            &json!({"from": (Utc::now() - Duration::days(1)).to_rfc3339(), "to": (Utc::now() + Duration::minutes(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(requested.status(), 202);
    let id = requested.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut state = Value::Null;
    for _ in 0..100 {
        state = ok(app
            .get(&app.clinic_path(&format!("/exports/{id}")), &app.inspector)
            .await)
        .await;
        if state["state"] != "building" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "ready", "{state}");
    let res = app
        .get(
            &app.clinic_path(&format!("/exports/{id}/download")),
            &app.inspector,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let zip = res.bytes().await.unwrap().to_vec();
    assert_eq!(
        hex::encode(Sha256::digest(&zip)),
        state["sha256"].as_str().unwrap()
    );
    (state, zip)
}

fn entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            (f.name().to_owned(), bytes)
        })
        .collect()
}

fn rezip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in files {
        out.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn text(files: &[(String, Vec<u8>)], name: &str) -> String {
    String::from_utf8(files.iter().find(|f| f.0 == name).unwrap().1.clone()).unwrap()
}

/// Replaces a file; with `key`, also fixes the manifest's hash and signs it again (an insider
/// with the signing key), so that only the chain's own links can tell.
fn tamper(
    zip: &[u8],
    name: &str,
    change: impl Fn(String) -> String,
    key: Option<&ExportKey>,
) -> Vec<u8> {
    let mut files = entries(zip);
    let changed = change(text(&files, name));
    if let Some(key) = key {
        let mut m: Manifest = serde_json::from_str(&text(&files, "manifest.json")).unwrap();
        let entry = m.files.iter_mut().find(|f| f.name == name).unwrap();
        entry.sha256 = hex::encode(Sha256::digest(changed.as_bytes()));
        entry.bytes = changed.len() as u64;
        m.signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&m.signed_bytes()));
        let i = files.iter().position(|f| f.0 == "manifest.json").unwrap();
        files[i].1 = serde_json::to_vec_pretty(&m).unwrap();
    }
    let i = files.iter().position(|f| f.0 == name).unwrap();
    files[i].1 = changed.into_bytes();
    rezip(&files)
}

fn refused(zip: &[u8], key: &VerifyingKey) -> String {
    verify(Cursor::new(zip), key).unwrap_err().0
}

#[actix_web::test]
async fn an_export_holds_the_records_and_verifies() {
    let app = TestApp::spawn().await;
    some_records(&app).await;
    let (state, zip) = export(&app).await;
    let key = app.export_key().await;
    let manifest = verify(Cursor::new(&zip), &key).unwrap();
    let names: Vec<String> = entries(&zip).into_iter().map(|f| f.0).collect();
    for name in [
        "cycles.csv",
        "packs.csv",
        "spore_tests.csv",
        "air_removal_tests.csv",
        "lots.csv",
        "credentials.csv",
        "sessions.csv",
        "incidents.csv",
        "findings.csv",
        "audit.jsonl",
        "report.pdf",
        "manifest.json",
    ] {
        assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    // The report: a PDF that names the chain head and the signing key.
    let files = entries(&zip);
    let pdf = &files.iter().find(|f| f.0 == "report.pdf").unwrap().1;
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(
        pdf.len() > 10_000,
        "fonts are embedded: {} bytes",
        pdf.len()
    );
    assert_eq!(
        manifest.chain.head_hash,
        state["chain_head"].as_str().unwrap()
    );
    assert_eq!(manifest.clinic["id"], app.clinic_id.as_str());
    let files = entries(&zip);
    assert!(text(&files, "lots.csv").contains("LOT-77"));
    assert!(
        text(&files, "packs.csv").contains("'- grips (spare)"),
        "a cell a spreadsheet could read as a formula is neutralised (formulas themselves are refused on input)"
    );
    // Clients by pseudonymous id only; credentials by status, without medical detail.
    assert!(!text(&files, "sessions.csv").contains("Alex Client"));
    assert!(!text(&files, "credentials.csv").contains("vaccinated"));
    // The chain segment is the clinic's: its last line is the head the clinic's chain had.
    let lines = text(&files, "audit.jsonl");
    assert!(lines.lines().count() >= 5);
    // The export itself is on the record.
    let events = app.audit_events().await;
    assert!(events.iter().any(|e| e["action"] == "export.requested"));
    assert!(events.iter().any(|e| e["action"] == "export.built"));
}

#[actix_web::test]
async fn every_kind_of_tampering_is_caught() {
    let app = TestApp::spawn().await;
    some_records(&app).await;
    let (_, zip) = export(&app).await;
    let key = app.export_key().await;
    let signer = ExportKey::load_or_create(&app.settings.exports.signing_key_path).unwrap();
    assert!(verify(Cursor::new(&zip), &key).is_ok());

    // A flipped byte in a CSV.
    let flipped = tamper(
        &zip,
        "cycles.csv",
        |s| {
            let mut b = s.into_bytes();
            let i = b.len() / 2;
            b[i] ^= 0x01;
            String::from_utf8_lossy(&b).into_owned()
        },
        None,
    );
    assert!(refused(&flipped, &key).contains("cycles.csv"));
    // A changed cell.
    let cell = tamper(&zip, "lots.csv", |s| s.replace("LOT-77", "LOT-78"), None);
    assert!(refused(&cell, &key).contains("lots.csv: its SHA-256"));
    // A removed chain line, with or without the manifest fixed and signed again.
    let drop_line = |n: usize| {
        move |s: String| {
            s.lines()
                .enumerate()
                .filter(|(i, _)| *i != n)
                .map(|(_, l)| format!("{l}\n"))
                .collect::<String>()
        }
    };
    assert!(
        refused(&tamper(&zip, "audit.jsonl", drop_line(2), None), &key).contains("audit.jsonl")
    );
    let resigned = refused(
        &tamper(&zip, "audit.jsonl", drop_line(2), Some(&signer)),
        &key,
    );
    assert!(resigned.contains("missing"), "{resigned}");
    // Reordered lines.
    let swap = |s: String| {
        let mut lines: Vec<&str> = s.lines().collect();
        lines.swap(1, 2);
        lines.iter().map(|l| format!("{l}\n")).collect::<String>()
    };
    let reordered = refused(&tamper(&zip, "audit.jsonl", swap, Some(&signer)), &key);
    assert!(reordered.contains("audit.jsonl line 2"), "{reordered}");
    // A truncated chain: the last line gone.
    let truncate = |s: String| {
        let lines: Vec<&str> = s.lines().collect();
        lines[..lines.len() - 1]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    assert!(refused(&tamper(&zip, "audit.jsonl", truncate, None), &key).contains("audit.jsonl"));
    let truncated = refused(&tamper(&zip, "audit.jsonl", truncate, Some(&signer)), &key);
    assert!(truncated.contains("missing from the end"), "{truncated}");
    // An edited event, even with the manifest signed again.
    let edited = refused(
        &tamper(
            &zip,
            "audit.jsonl",
            |s| s.replacen("\"clinic.created\"", "\"clinic.renamed\"", 1),
            Some(&signer),
        ),
        &key,
    );
    assert!(edited.contains("altered"), "{edited}");
    // A changed manifest, an extra file, another key.
    let mut files = entries(&zip);
    let i = files.iter().position(|f| f.0 == "manifest.json").unwrap();
    files[i].1 = String::from_utf8(files[i].1.clone())
        .unwrap()
        .replacen("Ink & Needle", "Ink and Needle", 1)
        .into_bytes();
    assert!(refused(&rezip(&files), &key).contains("signature"));
    let mut files = entries(&zip);
    files.push(("notes.txt".into(), b"hello".to_vec()));
    assert!(refused(&rezip(&files), &key).contains("notes.txt"));
    let other = ExportKey::load_or_create(
        tempfile::tempdir()
            .unwrap()
            .path()
            .join("k.pem")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    assert!(refused(&zip, &other.verifying_key()).contains("signature"));
}

#[actix_web::test]
async fn a_period_that_ends_before_the_clinic_was_registered_still_exports() {
    // Records may be entered for days before the clinic was registered here (paper logs typed
    // in): their export is judged as the clinic stood at registration.
    let app = TestApp::spawn().await;
    let requested = ok(app
        .post(
            &app.clinic_path("/exports"),
            &app.owner,
            &json!({"from": (Utc::now() - Duration::days(2)).to_rfc3339(), "to": (Utc::now() - Duration::days(1)).to_rfc3339()}),
        )
        .await)
    .await;
    let id = requested["id"].as_str().unwrap();
    common::built_export(&app, id).await;
}

#[actix_web::test]
async fn bad_export_requests_are_refused() {
    let app = TestApp::spawn().await;
    let path = app.clinic_path("/exports");
    let now = Utc::now();
    for (body, field) in [
        (
            json!({"from": now.to_rfc3339(), "to": (now - Duration::days(1)).to_rfc3339()}),
            "to",
        ),
        (
            json!({"from": (now - Duration::days(3650)).to_rfc3339(), "to": now.to_rfc3339()}),
            "to",
        ),
        (
            json!({"from": (now + Duration::days(1)).to_rfc3339(), "to": (now + Duration::days(2)).to_rfc3339()}),
            "from",
        ),
        (json!({"from": "yesterday", "to": now.to_rfc3339()}), "from"),
    ] {
        assert_problem(app.post(&path, &app.owner, &body).await, 422, Some(field)).await;
    }
    let fine = json!({"from": (now - Duration::days(1)).to_rfc3339(), "to": now.to_rfc3339()});
    assert_problem(app.post(&path, &app.technician, &fine).await, 403, None).await;
    // An inspector with a running grant may ask for a period; the request is theirs.
    let theirs = app.post(&path, &app.inspector, &fine).await;
    assert_eq!(theirs.status(), 202, "{}", theirs.text().await.unwrap());
    let events = app.audit_events().await;
    let requested = events
        .iter()
        .rev()
        .find(|e| e["action"] == "export.requested")
        .unwrap();
    assert_eq!(requested["actor_id"], app.inspector.user_id.as_str());
    // Clinic-local calendar periods: a month and an ISO week, from the clinic's midnights.
    for (body, from, to) in [
        (
            json!({"month": "2026-10"}),
            "2026-09-30T23:00:00Z",
            "2026-10-31T23:59:59Z",
        ),
        (
            json!({"week": "2026-W45"}),
            "2026-11-02T00:00:00Z",
            "2026-11-09T00:00:00Z",
        ),
        (
            json!({"first_day": "2026-07-01", "last_day": "2026-07-01"}),
            "2026-06-30T23:00:00Z",
            "2026-07-01T23:00:00Z",
        ),
    ] {
        let res = app.post(&path, &app.owner, &body).await;
        assert_eq!(res.status(), 202, "{body}: {}", res.text().await.unwrap());
        let v: Value = res.json().await.unwrap();
        let got_from: DateTime<Utc> = v["from"].as_str().unwrap().parse().unwrap();
        let got_to: DateTime<Utc> = v["to"].as_str().unwrap().parse().unwrap();
        assert_eq!(got_from, from.parse::<DateTime<Utc>>().unwrap(), "{body}");
        // October ends at London's midnight after the clocks went back (00:00 GMT).
        let to: DateTime<Utc> = if to.ends_with("59:59Z") {
            "2026-11-01T00:00:00Z".parse().unwrap()
        } else {
            to.parse().unwrap()
        };
        assert_eq!(got_to, to, "{body}");
    }
    for (body, field) in [
        (json!({"month": "October"}), "month"),
        (json!({"week": "2026-47"}), "week"),
        (json!({"month": "2026-10", "week": "2026-W45"}), "period"),
        (json!({"first_day": "2026-07-01"}), "last_day"),
    ] {
        assert_problem(app.post(&path, &app.owner, &body).await, 422, Some(field)).await;
    }
    let res = app.post(&path, &app.owner, &fine).await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    common::assert_foreign_looks_missing(
        &app,
        &[
            (Method::GET, "/exports".to_owned(), Value::Null),
            (Method::POST, "/exports".to_owned(), fine.clone()),
            (Method::GET, format!("/exports/{id}"), Value::Null),
            (Method::GET, format!("/exports/{id}/download"), Value::Null),
        ],
    )
    .await;
}

#[actix_web::test]
async fn verify_export_on_the_command_line() {
    let app = TestApp::spawn().await;
    some_records(&app).await;
    let (_, zip) = export(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let pem = app.export_key_pem().await;
    std::fs::write(dir.path().join("key.pem"), pem).unwrap();
    std::fs::write(dir.path().join("good.zip"), &zip).unwrap();
    let bad = tamper(&zip, "lots.csv", |s| s.replace("LOT-77", "LOT-78"), None);
    std::fs::write(dir.path().join("bad.zip"), bad).unwrap();
    let run = |file: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_aseptic"))
            .current_dir(dir.path())
            .env(
                "ASEPTIC_CONFIG_DIR",
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            )
            .env("ASEPTIC_ENV", "test")
            .args(["verify-export", file, "--key", "key.pem"])
            .output()
            .unwrap()
    };
    let good = run("good.zip");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).starts_with("valid:"));
    let bad = run("bad.zip");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("INVALID") && err.contains("lots.csv"), "{err}");
}

#[actix_web::test]
async fn an_export_interrupted_by_a_stop_is_built_after() {
    let app = TestApp::spawn().await;
    // A request acknowledged, then the service stopped before building it.
    let id = {
        let mut conn = app.raw_connection();
        let profiles = aseptic::jurisdiction::profiles::Profiles::load(None).unwrap();
        aseptic::exports::usecases::request(
            &mut conn,
            &profiles,
            &aseptic::audit::AuditContext::operator(),
            &app.clinic_id,
            &aseptic::exports::usecases::ExportInput {
                from: Some(Utc::now() - Duration::days(1)),
                to: Some(Utc::now()),
                ..Default::default()
            },
        )
        .unwrap()
        .id
    };
    let state: Value = ok(app
        .get(&app.clinic_path(&format!("/exports/{id}")), &app.owner)
        .await)
    .await;
    assert_eq!(state["state"], "building");
    // What a restart does.
    let (pool, settings) = (app.pool.clone(), app.settings.clone());
    let resumed = actix_web::rt::task::spawn_blocking(move || {
        aseptic::exports::usecases::resume(
            &pool,
            &aseptic::jurisdiction::profiles::Profiles::load(None).unwrap(),
            &ExportKey::load_or_create(&settings.exports.signing_key_path).unwrap(),
            &settings.exports.dir,
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(resumed, 1);
    let state: Value = ok(app
        .get(&app.clinic_path(&format!("/exports/{id}")), &app.owner)
        .await)
    .await;
    assert_eq!(state["state"], "ready", "{state}");
}

/// A zip written by hand (stored, no compression), so that a name can be listed twice as an
/// attacker would; the zip crate refuses to write one.
fn raw_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let (mut out, mut directory) = (Vec::new(), Vec::new());
    for (name, bytes) in files {
        let offset = out.len() as u32;
        let (crc, size, name_len) = (crc32(bytes), bytes.len() as u32, name.len() as u16);
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(bytes);
        directory.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        directory.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        directory.extend_from_slice(&crc.to_le_bytes());
        directory.extend_from_slice(&size.to_le_bytes());
        directory.extend_from_slice(&size.to_le_bytes());
        directory.extend_from_slice(&name_len.to_le_bytes());
        directory.extend_from_slice(&[0; 8]);
        directory.extend_from_slice(&0x81a4_0000u32.to_le_bytes());
        directory.extend_from_slice(&offset.to_le_bytes());
        directory.extend_from_slice(name.as_bytes());
    }
    let (at, count) = (out.len() as u32, files.len() as u16);
    out.extend_from_slice(&directory);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// The listing check of docs/export-format.md, run as printed there in a folder holding `zip`.
fn documented_listing_check(zip: &[u8]) -> bool {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/export-format.md"),
    )
    .unwrap();
    let block = doc
        .split("```sh\n")
        .find(|b| b.contains("unzip -Z1"))
        .and_then(|b| b.split("```").next())
        .expect("docs/export-format.md checks the zip's listing");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.zip"), zip).unwrap();
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let manifest = entries(zip)
        .into_iter()
        .rev()
        .find(|f| f.0 == "manifest.json")
        .unwrap();
    std::fs::write(x.join("manifest.json"), manifest.1).unwrap();
    std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", block])
        .current_dir(&x)
        .status()
        .unwrap()
        .success()
}

/// A name listed twice (the altered copy first, as `unzip` would extract it), a file the
/// manifest does not name, and a directory that lists fewer entries than it holds: each is
/// refused by `verify-export` and by the documented recipe.
#[actix_web::test]
async fn a_zip_that_lists_a_name_twice_or_an_extra_entry_is_refused() {
    let app = TestApp::spawn().await;
    some_records(&app).await;
    let (_, zip) = export(&app).await;
    let key = app.export_key().await;
    let files = entries(&zip);
    assert!(verify(Cursor::new(raw_zip(&files)), &key).is_ok());
    assert!(documented_listing_check(&raw_zip(&files)));

    let original = files.iter().find(|f| f.0 == "cycles.csv").unwrap().clone();
    let mut altered = original.clone();
    altered.1 = String::from_utf8(altered.1)
        .unwrap()
        .replacen("pass", "fail", 1)
        .into_bytes();
    let mut twice: Vec<_> = files
        .iter()
        .filter(|f| f.0 != "cycles.csv")
        .cloned()
        .collect();
    twice.insert(0, altered);
    twice.push(original.clone());
    let zip_twice = raw_zip(&twice);
    let why = refused(&zip_twice, &key);
    assert!(
        why.contains("cycles.csv") && why.contains("more than once"),
        "{why}"
    );
    assert!(!documented_listing_check(&zip_twice));

    let mut manifest_twice = files.clone();
    let manifest = files
        .iter()
        .find(|f| f.0 == "manifest.json")
        .unwrap()
        .clone();
    manifest_twice.insert(0, manifest);
    assert!(refused(&raw_zip(&manifest_twice), &key).contains("manifest.json"));

    let mut extra = files.clone();
    extra.push(("cycles.csv ".into(), b"x".to_vec()));
    let zip_extra = raw_zip(&extra);
    assert!(refused(&zip_extra, &key).contains("not in the manifest"));
    assert!(!documented_listing_check(&zip_extra));

    // A directory whose end record counts one entry fewer than it lists.
    let mut short = raw_zip(&files);
    let n = short.len();
    let count = files.len() as u16 - 1;
    short[n - 12..n - 10].copy_from_slice(&count.to_le_bytes());
    short[n - 14..n - 12].copy_from_slice(&count.to_le_bytes());
    assert!(verify(Cursor::new(short), &key).is_err());
}

/// An inspector without our program follows VERIFY.txt with sha256sum and openssl: every file's
/// hash and the signature check out, and a changed file is caught.
#[actix_web::test]
async fn an_export_checks_out_with_the_standard_tools_its_guide_names() {
    let app = TestApp::spawn().await;
    some_records(&app).await;
    let (_, zip) = export(&app).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in entries(&zip) {
        std::fs::write(dir.path().join(&name), bytes).unwrap();
    }
    std::fs::write(
        dir.path().join("export-key.pem"),
        app.export_key_pem().await,
    )
    .unwrap();
    let guide = std::fs::read_to_string(dir.path().join("VERIFY.txt")).unwrap();
    let key: Value = app
        .client
        .get(app.url("/.well-known/aseptic/export-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        guide.contains(key["fingerprint_sha256"].as_str().unwrap()),
        "the guide names the key's fingerprint"
    );
    let run = |cmd: &str| {
        std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", cmd])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // The commands exactly as the guide prints them.
    let line = |start: &str| {
        guide
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("VERIFY.txt has a line starting {start}"))
            .to_owned()
    };
    let sums = run(&line("sha256sum -c"));
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    let verified = run(&line("openssl pkeyutl -verify"));
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("Signature Verified Successfully"),
        "{verified:?}"
    );
    let fingerprint = run(&line("openssl pkey -pubin"));
    assert!(String::from_utf8_lossy(&fingerprint.stdout)
        .starts_with(key["fingerprint_sha256"].as_str().unwrap()));
    // A changed file fails the hash check.
    let csv = dir.path().join("cycles.csv");
    let mut changed = std::fs::read(&csv).unwrap();
    changed.extend_from_slice(b"\n");
    std::fs::write(&csv, changed).unwrap();
    assert!(!run(&line("sha256sum -c")).status.success());
}
