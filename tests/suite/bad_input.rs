//! The bad-input corpus: bodies too big or too deep, text with control characters, direction
//! marks or spreadsheet formulas, path parameters that try to walk out, and paging values at the
//! edges. Each gets the right 4xx problem naming what is wrong, and nothing is stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{assert_problem, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

fn client(name: &str, contact: &str) -> Value {
    json!({"name": name, "contact": contact, "date_of_birth": "1990-01-01"})
}

async fn clients(app: &TestApp) -> usize {
    let page: Value = app
        .get(&app.clinic_path("/clients?limit=200"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().len()
}

#[actix_web::test]
async fn text_that_hides_or_runs_something_is_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let before = clients(&app).await;
    let events = app.audit_events().await.len();
    for (name, contact, bad) in [
        ("Ann\u{0}Nul", "+44 7700 900123", "name"),
        ("Ann \u{202E}regnaD", "+44 7700 900123", "name"),
        ("Ann \u{2066}isolate\u{2069}", "+44 7700 900123", "name"),
        (
            "=HYPERLINK(\"http://evil.example\",\"click\")",
            "+44 7700 900123",
            "name",
        ),
        ("\u{FF1D}1+1", "+44 7700 900123", "name"),
        ("\u{200B}=1+1", "+44 7700 900123", "name"),
        ("  =1+1", "+44 7700 900123", "name"),
        ("Ann", "+cmd|' /C calc'!A0", "contact"),
        ("Ann", "-2+3+cmd|' /C calc'!A0", "contact"),
        ("@SUM(1+1)*cmd|' /C calc'!A0", "+44 7700 900123", "name"),
        ("Ann", "\u{FF0B}cmd|' /C calc'!A0", "contact"),
    ] {
        let res = app
            .post(
                &app.clinic_path("/clients"),
                &app.owner,
                &client(name, contact),
            )
            .await;
        let problem = assert_problem(res, 422, Some(bad)).await;
        assert!(
            problem["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("remove it")
                || problem["errors"][0]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("spreadsheet"),
            "{problem}"
        );
    }
    // Every wrong field at once, with the shape errors.
    let res = app
        .post(
            &app.clinic_path("/clients"),
            &app.owner,
            &json!({"name": "=1+1", "contact": "Bob\u{202E}", "date_of_birth": "soon"}),
        )
        .await;
    let problem = assert_problem(res, 422, Some("name")).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["name", "contact", "date_of_birth"] {
        assert!(fields.contains(&f), "{problem}");
    }
    assert_eq!(clients(&app).await, before, "nothing refused was stored");
    assert_eq!(app.audit_events().await.len(), events);

    // Text that only looks like it: a phone number, a dash, a sum in words.
    for (name, contact) in [
        ("Ann-Marie O'Neill", "+44 7700 900123"),
        ("- see the notes", "@ann on the studio's page"),
        ("Zoë Ünal", "-"),
    ] {
        let res = app
            .post(
                &app.clinic_path("/clients"),
                &app.owner,
                &client(name, contact),
            )
            .await;
        assert_eq!(res.status(), 201, "{name} / {contact}");
    }
    // An amendment is held to the same rule.
    let list: Value = app
        .get(&app.clinic_path("/clients?limit=1"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let id = list["items"][0]["id"].as_str().unwrap();
    let res = app
        .post(
            &app.clinic_path(&format!("/clients/{id}/amendments")),
            &app.owner,
            &json!({"reason": "typo", "changes": {"name": "=cmd|' /C calc'!A0"}}),
        )
        .await;
    assert_problem(res, 422, Some("changes.name")).await;
}

#[actix_web::test]
async fn bodies_too_big_or_too_deep_are_refused_before_reading() {
    let app = TestApp::spawn().await;
    let before = clients(&app).await;
    let huge = format!(
        "{{\"name\": \"{}\", \"contact\": \"x\", \"date_of_birth\": \"1990-01-01\"}}",
        "a".repeat(3 * 1024 * 1024)
    );
    let res = app
        .request(Method::POST, &app.clinic_path("/clients"), &app.owner)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(res, 413, None).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let res = app
        .request(Method::POST, &app.clinic_path("/clients"), &app.owner)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, None).await;
    let nested = format!(
        "{{\"name\": \"Ann\", \"contact\": {}1{}, \"date_of_birth\": \"1990-01-01\"}}",
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    );
    let res = app
        .request(Method::POST, &app.clinic_path("/clients"), &app.owner)
        .header("content-type", "application/json")
        .body(nested)
        .send()
        .await
        .unwrap();
    assert!(
        [400, 422].contains(&res.status().as_u16()),
        "{}",
        res.status()
    );
    assert_eq!(clients(&app).await, before);
}

/// Every path parameter of every operation, filled with attempts to walk out of it: a problem
/// document with a 4xx, never a record, never a 5xx.
#[actix_web::test]
async fn path_parameters_that_try_to_walk_out_are_not_found() {
    let app = TestApp::spawn().await;
    let doc = app.openapi().await;
    let attempts = [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "..%252F..%252Fetc%252Fpasswd",
        // ("%2e%2e" alone is a dot segment to every URL parser, the client's included: it
        // never reaches a server as a parameter.)
        "%2e%2e%2f",
        "%00",
        "a%20b",
        "%E2%80%AE",
        "01a00000-0000-7000-8000-000000000000%27%20OR%20%271%27%3D%271",
    ];
    let mut failures = Vec::new();
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.contains('{') {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for attempt in attempts {
                // Each parameter in turn; the others (the clinic) stay real.
                let params: Vec<&str> = path.split('/').filter(|s| s.starts_with('{')).collect();
                for param in &params {
                    let mut url = path.replace(param, attempt);
                    url = url.replace("{clinic}", &app.clinic_id);
                    for other in &params {
                        url = url.replace(other, "01a00000-0000-7000-8000-000000000000");
                    }
                    let mut req = app.request(verb.clone(), &url, &app.owner);
                    if verb != Method::GET {
                        req = req.json(&json!({}));
                    }
                    let res = req.send().await.unwrap();
                    tried += 1;
                    let status = res.status().as_u16();
                    let kind = res
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    if !(400..500).contains(&status) || kind != "application/problem+json" {
                        failures.push(format!("{method} {url}: {status} {kind}"));
                    }
                }
            }
        }
    }
    assert!(tried > 300, "{tried}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[actix_web::test]
async fn paging_values_at_the_edges_are_named() {
    let app = TestApp::spawn().await;
    for list in ["/cycles", "/clients", "/lots", "/sessions", "/audit/events"] {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=-1", "limit"),
            ("limit=1000000", "limit"),
            ("limit=9223372036854775808", "limit"),
            ("limit=ten", "limit"),
            ("cursor=not-a-cursor", "cursor"),
            ("cursor=%00", "cursor"),
        ] {
            let res = app
                .get(&app.clinic_path(&format!("{list}?{query}")), &app.owner)
                .await;
            assert_eq!(res.status(), 422, "{list}?{query}");
            assert_problem(res, 422, Some(field)).await;
        }
        let long_cursor = format!("cursor={}", "9".repeat(10_000));
        let res = app
            .get(
                &app.clinic_path(&format!("{list}?{long_cursor}")),
                &app.owner,
            )
            .await;
        assert_problem(res, 422, Some("cursor")).await;
    }
}
