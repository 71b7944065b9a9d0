//! Cycle records imported from the sterilisers' own files, through HTTP and the command line:
//! every format's fixtures read and normalised, every forgery caught by its check, the evidence
//! kept byte for byte, and bad uploads refused whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::{assert_problem, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/autoclave")
}

/// The files under a fixture folder (or the one file), named by their path below it.
fn files(rel: &str) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((name, std::fs::read(&p).unwrap()));
            }
        }
    }
    let path = fixtures().join(rel);
    let mut out = Vec::new();
    if path.is_dir() {
        walk(&path, &path, &mut out);
    } else {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, std::fs::read(&path).unwrap()));
    }
    out
}

fn zip_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A multipart form with one part per file, as a browser or `curl -F` sends it.
fn form(files: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "----aseptic-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn register(app: &TestApp, make: &str, serial: &str) -> String {
    let res = app
        .post(
            &app.clinic_path("/sterilisers"),
            &app.owner,
            &json!({"make": make, "model": "test", "serial_number": serial, "kind": "pre_vacuum",
                    "chamber_litres": 17.0, "location": "Back room", "installed_on": "2023-03-01"}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn upload(app: &TestApp, steriliser: &str, files: &[(String, Vec<u8>)]) -> reqwest::Response {
    let (content_type, body) = form(files);
    app.request(
        Method::POST,
        &app.clinic_path(&format!("/sterilisers/{steriliser}/imports")),
        &app.technician,
    )
    .header("content-type", content_type)
    .body(body)
    .send()
    .await
    .unwrap()
}

async fn imported(app: &TestApp, steriliser: &str, files: &[(String, Vec<u8>)]) -> Value {
    let res = upload(app, steriliser, files).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{body:#}");
    body
}

/// Every imported cycle of a steriliser, by cycle number.
async fn cycles_of(app: &TestApp, steriliser: &str) -> std::collections::BTreeMap<i64, Value> {
    app.all_items(
        &app.clinic_path(&format!("/imported-cycles?steriliser_id={steriliser}")),
        &app.owner,
    )
    .await
    .into_iter()
    .map(|c| (c["cycle_number"].as_i64().unwrap(), c))
    .collect()
}

fn checks(cycle: &Value) -> Vec<String> {
    cycle["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["check"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn every_formats_good_records_are_read_normalised_and_raise_nothing() {
    let app = TestApp::spawn().await;
    // Tuttnauer: a card's TXT and CYC folders as a zip.
    let tutt = register(&app, "Tuttnauer", "12345678").await;
    let zip = zip_of(
        &files("tuttnauer_elara11")
            .into_iter()
            .filter(|(n, _)| !n.starts_with("contiguous") && !n.starts_with("gap"))
            .collect::<Vec<_>>(),
    );
    let report = imported(&app, &tutt, &[("card.zip".into(), zip)]).await;
    assert_eq!(report["cycles_recorded"], 5, "{report:#}");
    let kept: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert!(
        kept.contains(&"kept_not_read"),
        "the .cyc is kept: {kept:?}"
    );
    let c = cycles_of(&app, &tutt).await;
    assert_eq!(
        c.keys().copied().collect::<Vec<_>>(),
        vec![812, 813, 814, 815, 816]
    );
    for (n, cycle) in &c {
        assert!(
            checks(cycle).is_empty(),
            "cycle {n}: {:#}",
            cycle["warnings"]
        );
        assert_eq!(cycle["source"], "import");
        assert_eq!(cycle["format"], "tuttnauer-elara11");
    }
    assert_eq!(c[&812]["outcome"], "pass");
    assert_eq!(
        c[&813]["outcome"], "pass",
        "the Windows-1252 copy reads the same"
    );
    assert_eq!(c[&814]["kind"], "air_removal_test");
    assert_eq!(c[&815]["kind"], "vacuum_test");
    assert_eq!(c[&815]["outcome"], "fail");
    assert_eq!(c[&816]["outcome"], "fail");
    // °F and psig become °C and absolute kPa; the device's text is kept beside each value.
    let one = app
        .get(
            &app.clinic_path(&format!(
                "/imported-cycles/{}",
                c[&812]["id"].as_str().unwrap()
            )),
            &app.owner,
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let peak = one["peak_temperature_c"].as_f64().unwrap();
    assert!((134.9..136.0).contains(&peak), "{peak}");
    let kpa = one["peak_pressure_kpa"].as_f64().unwrap();
    assert!((305.0..325.0).contains(&kpa), "{kpa}");
    assert_eq!(one["set_hold_minutes"], 4.0);
    assert!((one["hold_minutes"].as_f64().unwrap() - 4.0).abs() < 0.1);
    let s = &one["detail"]["samples"][3];
    assert!(s["pressure_kpa"]["original"].as_str().unwrap().len() >= 4);
    assert!(one["detail"]["samples"][1]["pressure_kpa"]["original"]
        .as_str()
        .unwrap()
        .ends_with("In"));
    // The device's clock is read in the clinic's zone (London, GMT in March).
    assert_eq!(one["started_local"], "2024-03-05 09:12:40");
    assert_eq!(one["started_at"], "2024-03-05T09:12:40Z");

    // W&H Lisa: the card's folders, an alarm file, an incomplete record and a US-locale name.
    let lisa = register(&app, "W&H", "05-0417").await;
    imported(&app, &lisa, &files("wh_lisa")).await;
    let c = cycles_of(&app, &lisa).await;
    assert_eq!(
        c.keys().copied().collect::<Vec<_>>(),
        vec![3120, 3121, 3122, 3123, 3124]
    );
    for (n, cycle) in &c {
        assert!(
            checks(cycle).is_empty(),
            "cycle {n}: {:#}",
            cycle["warnings"]
        );
        assert_eq!(cycle["vendor_check"]["status"], "not_verifiable");
    }
    assert_eq!(c[&3120]["kind"], "air_removal_test");
    assert_eq!(c[&3121]["outcome"], "pass");
    assert_eq!(c[&3122]["outcome"], "fail", "the alarm file");
    assert_eq!(c[&3123]["outcome"], "not_stated", "the incomplete record");
    assert_eq!(c[&3124]["started_local"], "2024-03-15 14:00:00");

    // SciCan: the log with its curve file, and the portal's two JSON downloads.
    let scican = register(&app, "SciCan", "710125H00099").await;
    let mut scican_files = files("scican_g4/opt");
    scican_files.extend(files("scican_g4/portal"));
    scican_files.extend(files("scican_g4/portal_mqx"));
    imported(&app, &scican, &scican_files).await;
    let c = cycles_of(&app, &scican).await;
    assert_eq!(c.keys().copied().collect::<Vec<_>>(), vec![417, 418, 419]);
    for (n, cycle) in &c {
        assert!(
            checks(cycle).is_empty(),
            "cycle {n}: {:#}",
            cycle["warnings"]
        );
        assert_eq!(cycle["outcome"], "pass");
    }
    assert_eq!(c[&418]["format"], "scican-statclave-g4-portal");
    assert_eq!(c[&417]["peak_pressure_kpa"], 299.0);

    // A data logger's CSV, read through the mapping the owner saved for it.
    let logger = register(&app, "Logger", "LOG-1").await;
    let res = app
        .request(
            Method::PUT,
            &app.clinic_path(&format!("/sterilisers/{logger}/csv-mapping")),
            &app.owner,
        )
        .json(&json!({"cycle_number": "Cycle", "started_at": "Start", "time_format": "%d/%m/%Y %H:%M:%S",
                       "temperature": "Temperature", "pressure": "Pressure", "pressure_unit": "kpa",
                       "program": "Program", "result": "Result", "passed_values": ["OK"],
                       "set_temperature_c": 134.0, "set_hold_minutes": 3.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    imported(&app, &logger, &files("csv_logger")).await;
    let c = cycles_of(&app, &logger).await;
    assert_eq!(c.keys().copied().collect::<Vec<_>>(), vec![55, 56, 57]);
    for (n, cycle) in &c {
        assert!(
            checks(cycle).is_empty(),
            "cycle {n}: {:#}",
            cycle["warnings"]
        );
        assert_eq!(cycle["outcome"], "pass");
    }
}

/// Each forgery, imported after the good records it imitates, is caught by its own check, and
/// the good folder raises nothing by itself.
#[actix_web::test]
async fn every_forgery_is_caught_by_its_check() {
    let app = TestApp::spawn().await;
    let good = files("tuttnauer_elara11/contiguous");
    let clean = register(&app, "Tuttnauer", "12345678").await;
    imported(&app, &clean, &good).await;
    for (n, cycle) in cycles_of(&app, &clean).await {
        assert!(
            checks(&cycle).is_empty(),
            "good cycle {n}: {:#}",
            cycle["warnings"]
        );
    }
    let gap = register(&app, "Tuttnauer", "GAP-12345678").await;
    imported(&app, &gap, &files("tuttnauer_elara11/gap")).await;
    let c = cycles_of(&app, &gap).await;
    assert_eq!(checks(&c[&924]), vec!["number_skips"]);
    assert!(c[&924]["warnings"][0]["evidence"]
        .as_str()
        .unwrap()
        .contains("923"));

    // Checks on the record itself: each forgery alone, on a steriliser of its own.
    for (i, (folder, check)) in [
        ("not_saturated", "not_saturated"),
        ("serial_mismatch", "serial_mismatch"),
        ("hold_short", "hold_short"),
        ("too_smooth", "too_smooth"),
        ("clock_change", "clock_change"),
    ]
    .into_iter()
    .enumerate()
    {
        // The same device's serial, as the clinic might register it with a prefix of its own.
        let s = register(&app, "Tuttnauer", &format!("T{i}-12345678")).await;
        let report = imported(&app, &s, &files(&format!("forgery/{folder}"))).await;
        let found: Vec<String> = report["cycles"][0]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["check"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(found, vec![check.to_owned()], "{folder}");
        assert!(!report["cycles"][0]["warnings"][0]["evidence"]
            .as_str()
            .unwrap()
            .is_empty());
    }
    for (folder, file, make, serial, check) in [
        (
            "name_disagrees",
            "forgery/name_disagrees",
            "SciCan",
            "710125H00099",
            "name_disagrees",
        ),
        (
            "signature_missing",
            "forgery/signature_missing",
            "SciCan",
            "710125H00099",
            "signature_missing",
        ),
        (
            "min_max_disagree",
            "forgery/min_max_disagree",
            "SciCan",
            "710125H00099",
            "min_max_disagree",
        ),
    ] {
        let s = register(&app, make, &format!("{folder}/{serial}")).await;
        let report = imported(&app, &s, &files(file)).await;
        let found: Vec<String> = report["cycles"][0]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["check"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(found, vec![check.to_owned()], "{folder}");
    }
    let s = register(&app, "W&H", "22E05-0417").await;
    imported(&app, &s, &files("wh_lisa/Lisa05-0417")).await;
    let report = imported(&app, &s, &files("forgery/same_signature")).await;
    let id = report["cycles"][0]["id"].as_str().unwrap();
    let forged = app
        .get(
            &app.clinic_path(&format!("/imported-cycles/{id}")),
            &app.owner,
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(checks(&forged), vec!["number_skips", "same_signature"]);
}

/// Checks against the device's sequence: each forgery imported after the good folder it imitates,
/// in a clinic of its own (a file is kept once per clinic).
#[actix_web::test]
async fn every_forgery_of_the_sequence_is_caught() {
    let good = files("tuttnauer_elara11/contiguous");
    for (folder, number, check) in [
        ("same_curve", 910, "same_curve"),
        ("time_order", 910, "time_order"),
        ("overlap", 910, "overlap"),
        ("number_repeats", 909, "number_repeats"),
        ("number_goes_back", 899, "number_goes_back"),
    ] {
        let app = TestApp::spawn().await;
        let s = register(&app, "Tuttnauer", "12345678").await;
        imported(&app, &s, &good).await;
        let report = imported(&app, &s, &files(&format!("forgery/{folder}"))).await;
        let id = report["cycles"][0]["id"].as_str().unwrap();
        let forged = app
            .get(
                &app.clinic_path(&format!("/imported-cycles/{id}")),
                &app.owner,
            )
            .await
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(forged["cycle_number"], number);
        assert_eq!(checks(&forged), vec![check.to_owned()], "{folder}");
        assert!(!forged["warnings"][0]["evidence"]
            .as_str()
            .unwrap()
            .is_empty());
        // The good records warn only of their part in the forgery (the other half of a repeat,
        // a copy or an overlap).
        for (n, cycle) in cycles_of(&app, &s).await {
            if cycle["id"] == forged["id"] {
                continue;
            }
            for w in checks(&cycle) {
                // A pair out of order reads as "went back" from the other side.
                let mirror = match check {
                    "time_order" => "number_goes_back",
                    "number_goes_back" => "time_order",
                    other => other,
                };
                assert!(
                    w == check || w == mirror,
                    "{folder}: good cycle {n} warns {w}"
                );
            }
        }
    }
}

#[actix_web::test]
async fn the_evidence_is_kept_once_unchanged_and_in_the_chain() {
    let app = TestApp::spawn().await;
    let s = register(&app, "Tuttnauer", "12345678").await;
    let latin1 = files("tuttnauer_elara11/cycle_000813.txt");
    let report = imported(&app, &s, &latin1).await;
    let file = &report["files"][0];
    let sha = hex::encode(Sha256::digest(&latin1[0].1));
    assert_eq!(file["sha256"], sha);
    let cycle_id = file["cycle_ids"][0].as_str().unwrap();
    let cycle = app
        .get(
            &app.clinic_path(&format!("/imported-cycles/{cycle_id}")),
            &app.inspector,
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let res = app
        .get(
            &app.clinic_path(&format!(
                "/device-files/{}",
                cycle["file"]["id"].as_str().unwrap()
            )),
            &app.inspector,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.bytes().await.unwrap().as_ref(),
        latin1[0].1.as_slice(),
        "byte for byte"
    );

    // The same bytes again, under another name: recognised, nothing recorded twice.
    let again = upload(&app, &s, &[("renamed.txt".into(), latin1[0].1.clone())]).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["files"][0]["status"], "already_imported");
    assert_eq!(again["cycles_recorded"], 0);
    assert_eq!(cycles_of(&app, &s).await.len(), 1);

    let events = app.audit_events().await;
    let imports: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "cycles.imported")
        .collect();
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0]["payload"]["files"][0]["sha256"], sha);

    // A hand-typed cycle with the same number is linked, and what differs is shown.
    let started = "2024-03-05T11:00:00Z";
    let res = app
        .post(
            &app.clinic_path("/cycles"),
            &app.technician,
            &json!({"steriliser_id": s, "cycle_number": 813,
                    "program": {"name": "Wrapped", "temperature_c": 134.0, "hold_minutes": 4.0},
                    "started_at": started, "finished_at": "2024-03-05T11:52:00Z",
                    "peak_temperature_c": 137.5, "peak_pressure_kpa": 315.0, "hold_minutes": 4.0,
                    "load_indicator": {"type": 5, "passed": true}, "packs": []}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let typed: Value = res.json().await.unwrap();
    let cycle = app
        .get(
            &app.clinic_path(&format!("/imported-cycles/{cycle_id}")),
            &app.owner,
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(cycle["typed_cycle"]["cycle_id"], typed["id"]);
    let differing: Vec<&str> = cycle["typed_cycle"]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        differing,
        vec!["peak_temperature_c"],
        "{:#}",
        cycle["typed_cycle"]
    );

    // The typed cycle shows the device's record the other way round, with the same difference.
    let typed_id = typed["id"].as_str().unwrap();
    let shown: Value = app
        .get(&app.clinic_path(&format!("/cycles/{typed_id}")), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["device_record"]["imported_cycle_id"], cycle_id);
    let differing: Vec<&str> = shown["device_record"]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(differing, vec!["peak_temperature_c"], "{shown:#}");
}

#[actix_web::test]
async fn bad_uploads_are_refused_whole_and_partly_readable_files_say_where() {
    let app = TestApp::spawn_with(|s| {
        s.imports.file_limit_bytes = 64 * 1024;
        s.imports.unpacked_limit_bytes = 256 * 1024;
        s.imports.upload_limit_bytes = 512 * 1024;
    })
    .await;
    let s = register(&app, "Tuttnauer", "12345678").await;
    let path = app.clinic_path(&format!("/sterilisers/{s}/imports"));
    let events_before = app.audit_events().await.len();

    // An unknown format: 422 naming every format tried and how close it came.
    let body = assert_problem(
        upload(&app, &s, &files("unknown")).await,
        422,
        Some("files[0]"),
    )
    .await;
    let reason = body["errors"][0]["reason"].as_str().unwrap();
    for name in ["Tuttnauer", "W&H", "SciCan"] {
        assert!(reason.contains(name), "{reason}");
    }
    assert!(reason.contains("/100"), "{reason}");

    // A zip bomb: a small zip that unpacks beyond the limit.
    let bomb = zip_of(&[("TXT/cycle_000001.txt".into(), vec![b'0'; 200 * 1024])]);
    assert!(bomb.len() < 4096);
    assert_problem(
        upload(&app, &s, &[("bomb.zip".into(), bomb)]).await,
        413,
        None,
    )
    .await;
    // A zip inside the zip, and a path leaving the folder.
    let inner = zip_of(&files("tuttnauer_elara11/contiguous"));
    let nested = zip_of(&[("inner.zip".into(), inner)]);
    assert_problem(
        upload(&app, &s, &[("nested.zip".into(), nested)]).await,
        422,
        Some("files"),
    )
    .await;
    let escape = zip_of(&[("../../etc/cycle_000001.txt".into(), b"x".to_vec())]);
    assert_problem(
        upload(&app, &s, &[("escape.zip".into(), escape)]).await,
        422,
        Some("files"),
    )
    .await;
    // A body over the upload limit, and one file over the file limit.
    let big = vec![b'a'; 600 * 1024];
    let res = app
        .request(Method::POST, &path, &app.technician)
        .header("content-type", "application/octet-stream")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_problem(res, 413, None).await;
    let res = upload(&app, &s, &[("big.txt".into(), vec![b'a'; 100 * 1024])]).await;
    assert_problem(res, 413, None).await;
    // A form with no file in it (only its closing line), and one cut off inside its first file.
    let form = |body: &'static str| {
        app.request(Method::POST, &path, &app.technician)
            .header("content-type", "multipart/form-data; boundary=b0undary")
            .body(body)
            .send()
    };
    let body = assert_problem(form("--b0undary--\r\n").await.unwrap(), 422, Some("files")).await;
    assert!(
        body["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no file"),
        "{body}"
    );
    let cut = "--b0undary\r\nContent-Disposition: form-data; name=\"files\"; filename=\"cycle_000812.txt\"\r\n\r\nDate: 05/MAR";
    assert_problem(form(cut).await.unwrap(), 400, None).await;
    // Nothing of any of these was recorded.
    assert!(cycles_of(&app, &s).await.is_empty());
    assert_eq!(app.audit_events().await.len(), events_before);

    // Inspectors read but do not import; another clinic's steriliser looks missing.
    let res = app
        .request(Method::POST, &path, &app.inspector)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, None).await;
    let res = app
        .request(
            Method::POST,
            &format!(
                "/api/v1/clinics/{}/sterilisers/{s}/imports",
                app.other_clinic_id
            ),
            &app.other_owner,
        )
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // One file as the body, its name in the query: a CSV with one unreadable row records the
    // others and names the row.
    let res = app
        .request(
            Method::PUT,
            &app.clinic_path(&format!("/sterilisers/{s}/csv-mapping")),
            &app.owner,
        )
        .json(
            &json!({"cycle_number": "Cycle", "started_at": "Start", "time_format": "%Y-%m-%d %H:%M",
                       "temperature": "Temp", "pressure": "Pressure", "pressure_unit": "bar",
                       "result": "Result"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let csv = "Cycle,Start,Temp,Pressure,Result\n\
               31,2024-03-14 09:00,134.6,2.09,pass\n\
               32,2024-03-14 10:00,hot,2.09,pass\n\
               33,2024-03-14 11:00,134.8,2.11,pass\n";
    let res = app
        .request(
            Method::POST,
            &format!("{path}?name=logger.csv"),
            &app.technician,
        )
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["cycles_recorded"], 2);
    let unreadable = &report["files"][0]["unreadable"];
    assert_eq!(unreadable.as_array().unwrap().len(), 1, "{unreadable:#}");
    assert_eq!(unreadable[0]["line"], 3);
    assert!(unreadable[0]["reason"]
        .as_str()
        .unwrap()
        .contains("\"hot\""));
    // A mapping that cannot work is refused with every reason.
    let res = app
        .request(
            Method::PUT,
            &app.clinic_path(&format!("/sterilisers/{s}/csv-mapping")),
            &app.owner,
        )
        .json(&json!({"cycle_number": "", "started_at": "Start", "time_format": "%H", "pressure_unit": "furlongs"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 422, Some("time_format")).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body:#}");
}

/// The forged Tuttnauer record, moved to yesterday (clinic-local), so it counts as recent.
fn recent_forgery() -> Vec<u8> {
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .with_timezone(&chrono_tz::Europe::London)
        .format("%d/%b/%Y")
        .to_string()
        .to_uppercase();
    String::from_utf8(files("forgery/not_saturated/cycle_000910.txt")[0].1.clone())
        .unwrap()
        .replace("Date: 12/MAR/2024", &format!("Date: {yesterday}"))
        .into_bytes()
}

/// The period's device files travel in the signed export under their hash, with the imported
/// cycles and their checks; the report says how many cycles were imported and how many typed.
#[actix_web::test]
async fn the_export_carries_the_device_files_under_their_hash() {
    let app = TestApp::spawn().await;
    let s = register(&app, "Tuttnauer", "12345678").await;
    let record = recent_forgery();
    let curve = files("tuttnauer_elara11/CYC/cycle_000812.cyc").remove(0);
    imported(
        &app,
        &s,
        &[
            ("TXT/cycle_000910.txt".into(), record.clone()),
            curve.clone(),
        ],
    )
    .await;
    let now = chrono::Utc::now();
    let res = app
        .post(
            &app.clinic_path("/exports"),
            &app.owner,
            &json!({"from": (now - chrono::Duration::days(3)).to_rfc3339(), "to": now.to_rfc3339()}),
        )
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::common::built_export(&app, &id).await;
    let zip = app
        .get(
            &app.clinic_path(&format!("/exports/{id}/download")),
            &app.owner,
        )
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let key = app.export_key().await;
    let manifest = aseptic::exports::bundle::verify(std::io::Cursor::new(&zip), &key).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&zip)).unwrap();
    let read = |archive: &mut zip::ZipArchive<std::io::Cursor<&Vec<u8>>>, name: &str| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut archive.by_name(name).unwrap(), &mut out).unwrap();
        out
    };
    for bytes in [&record, &curve.1] {
        let sha = hex::encode(Sha256::digest(bytes));
        let name = format!("device-files/{sha}");
        assert_eq!(&read(&mut archive, &name), bytes, "byte for byte");
        let listed = manifest.files.iter().find(|f| f.name == name).unwrap();
        assert_eq!(listed.sha256, sha, "listed in the signed manifest");
    }
    let listing = String::from_utf8(read(&mut archive, "device_files.csv")).unwrap();
    assert!(listing.contains("TXT/cycle_000910.txt"), "{listing}");
    let cycles = String::from_utf8(read(&mut archive, "imported_cycles.csv")).unwrap();
    assert!(
        cycles.contains(",910,") && cycles.contains("not_saturated"),
        "{cycles}"
    );
    let text = crate::common::report_text(&zip);
    assert!(text.contains("0 loads in the period typed in"), "{text}");
    // (typst sets the apostrophe as a typographic one)
    assert!(
        text.contains("1 cycle imported from the sterilisers"),
        "{text}"
    );
    assert!(
        text.contains("own files, 1 with a check that found something"),
        "{text}"
    );
    assert!(
        text.contains("cycle 910 of Tuttnauer"),
        "the finding is in the report: {text}"
    );
}

/// A record that does not add up is a finding on the compliance view, with its evidence, while it
/// is recent; read as of a moment before the import, it is not there.
#[actix_web::test]
async fn a_forged_record_is_a_finding_on_the_compliance_view() {
    let app = TestApp::spawn().await;
    let s = register(&app, "Tuttnauer", "12345678").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let before_import = chrono::Utc::now();
    let report = imported(&app, &s, &[("cycle_000910.txt".into(), recent_forgery())]).await;
    let id = report["cycles"][0]["id"].as_str().unwrap();
    let view: Value = app
        .get(&app.clinic_path("/compliance"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let found: Vec<&Value> = view["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "imported_record_checks")
        .collect();
    assert_eq!(found.len(), 1, "{view:#}");
    assert_eq!(found[0]["subject"], format!("imported_cycle:{id}"));
    let message = found[0]["message"].as_str().unwrap();
    assert!(
        message.contains("cycle 910") && message.contains("saturated steam"),
        "{message}"
    );
    assert!(found[0]["reference"].as_str().unwrap().contains("EN 285"));
    let earlier: Value = app
        .get(
            &app.clinic_path(&format!(
                "/compliance?at={}",
                before_import.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            )),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(!earlier["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "imported_record_checks"));
}

#[actix_web::test]
async fn the_command_line_imports_a_folder_and_skips_what_it_has() {
    let app = TestApp::spawn().await;
    let s = register(&app, "W&H", "05-0417").await;
    let folder = fixtures().join("wh_lisa/Lisa05-0417");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_aseptic"))
            .args([
                "import-cycles",
                "--clinic",
                &app.clinic_id,
                "--steriliser",
                &s,
            ])
            .arg(&folder)
            .env_clear()
            .env("DATABASE_URL", &app.database_url)
            .env("ASEPTIC_ENV", "test")
            .env(
                "ASEPTIC_CONFIG_DIR",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            )
            .current_dir(app.dir.path())
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("4 cycle(s) recorded"), "{stdout}");
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("0 cycle(s) recorded, 4 file(s) imported before"),
        "{stdout}"
    );
    assert_eq!(cycles_of(&app, &s).await.len(), 4);
}
