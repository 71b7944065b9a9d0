//! Lots, barcode scanning and recalls, through HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::{Duration, Utc};
use common::{assert_problem, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

fn lot(number: &str) -> Value {
    json!({
        "kind": "needle_cartridge",
        "manufacturer": "Cheyenne",
        "product_name": "Craft Cartridges",
        "product_code": "1RL 0.30 mm",
        "gtin": "4012345000009",
        "lot_number": number,
        "expiry_date": (Utc::now() + Duration::days(700)).date_naive().to_string(),
        "sterilisation_method": "ethylene_oxide",
        "supplier": "Tattoo Supply Ltd",
        "received_on": (Utc::now() - Duration::days(2)).date_naive().to_string(),
        "quantity_received": 20,
    })
}

async fn receive(app: &TestApp, body: &Value) -> Value {
    let res = app
        .post(&app.clinic_path("/lots"), &app.technician, body)
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

#[actix_web::test]
async fn lots_are_received_listed_and_unique_per_product() {
    let app = TestApp::spawn().await;
    let view = receive(&app, &lot("L2311A")).await;
    assert_eq!(view["status"], "usable");
    assert_eq!(view["gtin"], "04012345000009", "stored as GTIN-14");
    assert!(view["recall"].is_null());

    let dup = app
        .post(&app.clinic_path("/lots"), &app.owner, &lot(" L2311A "))
        .await;
    assert_problem(dup, 409, None).await;
    // The same lot number of another product is another lot.
    let mut other = lot("L2311A");
    other["product_name"] = json!("Premium Cartridges");
    receive(&app, &other).await;
    let mut ink = lot("INK-9");
    ink["kind"] = json!("pigment");
    ink["sterilisation_method"] = json!("not_sterile");
    ink["gtin"] = Value::Null;
    receive(&app, &ink).await;

    let all: Value = app
        .get(&app.clinic_path("/lots"), &app.inspector)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let pigments: Value = app
        .get(&app.clinic_path("/lots?kind=pigment"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pigments["items"][0]["lot_number"], "INK-9");
    let page: Value = app
        .get(&app.clinic_path("/lots?limit=2"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(
            &app.clinic_path(&format!("/lots?limit=2&cursor={cursor}")),
            &app.owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["lot_number"], "L2311A");
}

#[actix_web::test]
async fn bad_lots_name_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let before = app.audit_events().await.len();
    let with = |field: &str, value: Value| {
        let mut body = lot("L1");
        body[field] = value;
        body
    };
    let received = (Utc::now() - Duration::days(2)).date_naive();
    let cases = [
        (
            with(
                "expiry_date",
                json!((received - Duration::days(1)).to_string()),
            ),
            "expiry_date",
        ),
        (with("lot_number", json!("  ")), "lot_number"),
        (with("gtin", json!("4012345000008")), "gtin"),
        (with("quantity_received", json!(0)), "quantity_received"),
        (
            with("sterilisation_method", json!("not_sterile")),
            "sterilisation_method",
        ),
        (with("kind", json!("scalpel")), "kind"),
        (with("expiry_date", json!("31/12/2027")), "expiry_date"),
    ];
    for (body, field) in cases {
        assert_problem(
            app.post(&app.clinic_path("/lots"), &app.owner, &body).await,
            422,
            Some(field),
        )
        .await;
    }
    assert_problem(
        app.post(&app.clinic_path("/lots"), &app.inspector, &lot("L1"))
            .await,
        403,
        None,
    )
    .await;
    let list: Value = app
        .get(&app.clinic_path("/lots"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    assert_eq!(app.audit_events().await.len(), before);
}

#[actix_web::test]
async fn a_recall_makes_a_lot_unusable_once() {
    let app = TestApp::spawn().await;
    let view = receive(&app, &lot("L-RECALL")).await;
    let id = view["id"].as_str().unwrap();
    let path = app.clinic_path(&format!("/lots/{id}/recall"));
    let body = json!({"reason": "sterility cannot be assured", "reference": "FDA Z-1234-2026"});
    assert_problem(app.post(&path, &app.technician, &body).await, 403, None).await;
    assert_problem(
        app.post(&path, &app.owner, &json!({"reason": "x", "reference": " "}))
            .await,
        422,
        Some("reference"),
    )
    .await;
    let res = app.post(&path, &app.owner, &body).await;
    assert_eq!(res.status(), 201);
    let recalled: Value = res.json().await.unwrap();
    assert_eq!(recalled["status"], "recalled");
    assert_eq!(recalled["recall"]["reference"], "FDA Z-1234-2026");
    assert_problem(app.post(&path, &app.owner, &body).await, 409, None).await;

    let fetched: Value = app
        .get(&app.clinic_path(&format!("/lots/{id}")), &app.technician)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "recalled");
    let events = app.audit_events().await;
    let recall = events
        .iter()
        .find(|e| e["action"] == "lot.recalled")
        .unwrap();
    assert_eq!(recall["reason"], "sterility cannot be assured");
}

/// A recalled lot on the shelf is a blocker (work with it must stop) until its stock is
/// withdrawn; the withdrawal is recorded once, by an owner, with what happened to the stock.
#[actix_web::test]
async fn a_recalled_lot_blocks_until_its_stock_is_withdrawn() {
    let app = TestApp::spawn().await;
    let view = receive(&app, &lot("L-BACK")).await;
    let id = view["id"].as_str().unwrap();
    let recall = app.clinic_path(&format!("/lots/{id}/recall"));
    let res = app
        .post(
            &recall,
            &app.owner,
            &json!({"reason": "sterility cannot be assured", "reference": "FSN-1"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let subject = format!("lot:{id}");
    let severity_of = |v: &Value| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["subject"] == subject.as_str())
            .map(|f| (f["rule"].clone(), f["severity"].clone()))
    };
    let v: Value = app
        .get(&app.clinic_path("/compliance"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        severity_of(&v),
        Some((json!("lot_recalled"), json!("blocker"))),
        "{v}"
    );

    let withdraw = app.clinic_path(&format!("/lots/{id}/withdraw"));
    let body = json!({"reason": "remaining cartridges returned to the supplier"});
    assert_problem(app.post(&withdraw, &app.technician, &body).await, 403, None).await;
    assert_problem(app.post(&withdraw, &app.inspector, &body).await, 403, None).await;
    let anonymous = app
        .client
        .post(app.url(&withdraw))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401, None).await;
    assert_problem(
        app.post(&withdraw, &app.owner, &json!({"reason": "  "}))
            .await,
        422,
        Some("reason"),
    )
    .await;
    let res = app.post(&withdraw, &app.owner, &body).await;
    assert_eq!(res.status(), 201);
    let withdrawn: Value = res.json().await.unwrap();
    assert_eq!(withdrawn["status"], "withdrawn");
    assert_eq!(withdrawn["recall"]["reference"], "FSN-1");
    assert_eq!(
        withdrawn["withdrawal"]["reason"],
        "remaining cartridges returned to the supplier"
    );
    assert_problem(app.post(&withdraw, &app.owner, &body).await, 409, None).await;

    let v: Value = app
        .get(&app.clinic_path("/compliance"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(severity_of(&v), None, "{v}");
    let events = app.audit_events().await;
    assert!(events.iter().any(|e| e["action"] == "lot.withdrawn"));
}

#[actix_web::test]
async fn an_expired_lot_says_so_and_amendments_keep_history() {
    let app = TestApp::spawn().await;
    let mut old = lot("L-OLD");
    old["received_on"] = json!((Utc::now() - Duration::days(400)).date_naive().to_string());
    old["expiry_date"] = json!((Utc::now() - Duration::days(1)).date_naive().to_string());
    let view = receive(&app, &old).await;
    assert_eq!(view["status"], "expired");
    let id = view["id"].as_str().unwrap();
    let res = app
        .post(&app.clinic_path(&format!("/lots/{id}/amendments")), &app.owner,
              &json!({"reason": "box label misread", "changes": {"expiry_date": (Utc::now() + Duration::days(30)).date_naive().to_string()}}))
        .await;
    assert_eq!(res.status(), 201);
    let amended: Value = res.json().await.unwrap();
    assert_eq!(amended["status"], "usable");
    assert_eq!(amended["version"], 2);
    let full: Value = app
        .get(&app.clinic_path(&format!("/lots/{id}")), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(full["history"].as_array().unwrap().len(), 2);
    assert!(full["history"][1]["changes"]["expiry_date"]["from"].is_string());
}

#[actix_web::test]
async fn barcodes_are_read_or_refused_clearly() {
    let app = TestApp::spawn().await;
    let path = app.clinic_path("/lots/parse-barcode");
    for text in [
        "(01)09506000134352(17)270531(10)ABC123(21)12345XYZ",
        "01095060001343521727053110ABC123\u{1d}2112345XYZ",
        "]d201095060001343521727053110ABC123\u{1d}2112345XYZ",
    ] {
        let res = app
            .post(&path, &app.technician, &json!({"text": text}))
            .await;
        assert_eq!(res.status(), 200, "{text:?}");
        let scan: Value = res.json().await.unwrap();
        assert_eq!(
            scan,
            json!({"gtin": "09506000134352", "expiry": "2027-05-31", "lot": "ABC123", "serial": "12345XYZ"})
        );
    }
    for text in ["not a barcode", "(01)09506000134353", "(17)271340", ""] {
        let problem = assert_problem(
            app.post(&path, &app.technician, &json!({"text": text}))
                .await,
            422,
            Some("text"),
        )
        .await;
        assert!(!problem["errors"][0]["reason"].as_str().unwrap().is_empty());
    }
    // Scanning stores nothing.
    let list: Value = app
        .get(&app.clinic_path("/lots"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[actix_web::test]
async fn another_clinic_sees_and_changes_no_lot() {
    let app = TestApp::spawn().await;
    let view = receive(&app, &lot("L1")).await;
    let id = view["id"].as_str().unwrap().to_owned();
    let before = app.audit_events().await.len();
    let routes: Vec<(Method, String, Value)> = vec![
        (Method::GET, "/lots".into(), Value::Null),
        (Method::POST, "/lots".into(), lot("L2")),
        (Method::GET, format!("/lots/{id}"), Value::Null),
        (
            Method::POST,
            format!("/lots/{id}/amendments"),
            json!({"reason": "x", "changes": {"supplier": "x"}}),
        ),
        (
            Method::POST,
            format!("/lots/{id}/recall"),
            json!({"reason": "x", "reference": "y"}),
        ),
        (
            Method::POST,
            format!("/lots/{id}/withdraw"),
            json!({"reason": "returned"}),
        ),
        (
            Method::POST,
            "/lots/parse-barcode".into(),
            json!({"text": "(10)ABC"}),
        ),
    ];
    common::assert_foreign_looks_missing(&app, &routes).await;
    let own = app
        .get(
            &format!("/api/v1/clinics/{}/lots/{id}", app.other_clinic_id),
            &app.other_owner,
        )
        .await;
    assert_problem(own, 404, None).await;
    assert_eq!(app.audit_events().await.len(), before);
}
