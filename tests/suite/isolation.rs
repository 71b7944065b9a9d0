//! The isolation matrix: every operation the OpenAPI document lists, called with real ids of
//! clinic A by each kind of caller, and with A's ids inside clinic B's requests. Who may call
//! what is written down here once per operation, so a new route cannot be added without saying.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common;

use aseptic::auth::Role;
use chrono::{Duration, Utc};
use common::{Actor, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// Who may call an operation of a clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum May {
    /// Anyone may read (owner, technician, inspector with a running grant).
    Read,
    /// Owners and technicians change it.
    Staff,
    /// Owners only.
    Owner,
    /// Owners and inspectors with a running grant (reads, and asking for an export).
    OwnerOrInspector,
}

/// Every operation under `/api/v1/clinics/{clinic}`, with who may call it.
fn expectations() -> BTreeMap<(&'static str, &'static str), May> {
    use May::*;
    let table = [
        ("get", "", Read),
        ("get", "/members", Read),
        ("post", "/members", Owner),
        ("get", "/members/{user}", Read),
        ("post", "/members/{user}/role", Owner),
        ("post", "/members/{user}/deactivate", Owner),
        ("post", "/members/{user}/reactivate", Owner),
        ("post", "/members/{user}/works-on-clients", Owner),
        ("get", "/members/{user}/eligibility", Read),
        ("get", "/audit/events", OwnerOrInspector),
        ("get", "/audit/verify", OwnerOrInspector),
        ("get", "/settings", Read),
        ("put", "/settings", Owner),
        ("get", "/sterilisers", Read),
        ("post", "/sterilisers", Owner),
        ("get", "/sterilisers/{id}", Read),
        ("post", "/sterilisers/{id}/amendments", Owner),
        ("post", "/sterilisers/{id}/out-of-service", Owner),
        ("post", "/sterilisers/{id}/return-to-service", Owner),
        ("post", "/sterilisers/{id}/imports", Staff),
        ("get", "/sterilisers/{id}/csv-mapping", Read),
        ("put", "/sterilisers/{id}/csv-mapping", Owner),
        ("get", "/imported-cycles", Read),
        ("get", "/imported-cycles/{id}", Read),
        ("get", "/device-files/{id}", Read),
        ("get", "/cycles", Read),
        ("post", "/cycles", Staff),
        ("get", "/cycles/{id}", Read),
        ("post", "/cycles/{id}/amendments", Staff),
        ("get", "/packs/{code}", Read),
        ("get", "/packs/{code}/label", Read),
        ("get", "/spore-tests", Read),
        ("post", "/spore-tests", Staff),
        ("get", "/spore-tests/{id}", Read),
        ("post", "/spore-tests/{id}/result", Staff),
        ("post", "/spore-tests/{id}/result/corrections", Staff),
        ("post", "/spore-tests/{id}/amendments", Staff),
        ("get", "/air-removal-tests", Read),
        ("post", "/air-removal-tests", Staff),
        ("get", "/air-removal-tests/{id}", Read),
        ("post", "/air-removal-tests/{id}/amendments", Staff),
        ("get", "/lots", Read),
        ("post", "/lots", Staff),
        // Reading a barcode records nothing, but it is a POST: inspectors do not send it.
        ("post", "/lots/parse-barcode", Staff),
        ("get", "/lots/{id}", Read),
        ("post", "/lots/{id}/amendments", Staff),
        ("post", "/lots/{id}/recall", Owner),
        ("post", "/lots/{id}/withdraw", Owner),
        ("get", "/credentials", Read),
        ("post", "/credentials", Staff),
        ("get", "/credentials/{id}", Read),
        ("post", "/credentials/{id}/verify", Owner),
        ("post", "/credentials/{id}/amendments", Staff),
        ("get", "/checklists", Read),
        ("post", "/checklists", Owner),
        ("get", "/checklists/{id}", Read),
        ("post", "/checklists/{id}/amendments", Owner),
        ("get", "/clients", Read),
        ("post", "/clients", Staff),
        ("get", "/clients/{id}", Read),
        ("post", "/clients/{id}/amendments", Staff),
        ("get", "/sessions", Read),
        ("post", "/sessions", Staff),
        ("get", "/sessions/{id}", Read),
        ("post", "/sessions/{id}/answers", Staff),
        ("post", "/sessions/{id}/packs", Staff),
        ("post", "/sessions/{id}/lots", Staff),
        ("post", "/sessions/{id}/pack-removals", Staff),
        ("get", "/sessions/{id}/readiness", Read),
        ("post", "/sessions/{id}/start", Staff),
        ("post", "/sessions/{id}/complete", Staff),
        ("get", "/incidents", Read),
        ("post", "/incidents", Staff),
        ("get", "/incidents/{id}", Read),
        ("post", "/incidents/{id}/follow-ups", Staff),
        ("post", "/incidents/{id}/close", Owner),
        ("post", "/incidents/{id}/amendments", Staff),
        ("get", "/lookbacks", Read),
        ("get", "/compliance", Read),
        ("get", "/readiness", OwnerOrInspector),
        ("get", "/inspectors", Owner),
        ("post", "/inspectors", Owner),
        ("post", "/inspectors/{id}/revoke", Owner),
        ("get", "/exports", OwnerOrInspector),
        ("post", "/exports", OwnerOrInspector),
        ("get", "/exports/{id}", OwnerOrInspector),
        ("get", "/exports/{id}/download", OwnerOrInspector),
        ("post", "/exports/{id}/send", Owner),
        ("get", "/mail", Owner),
        ("get", "/mail/settings", Owner),
        ("put", "/mail/settings", Owner),
        ("post", "/mail/{id}/resend", Owner),
    ];
    let mut map = BTreeMap::new();
    for (method, rest, may) in table {
        assert!(
            map.insert((method, rest), may).is_none(),
            "{method} {rest} listed twice"
        );
    }
    map
}

/// Operations outside any clinic, and what an anonymous caller gets from each.
const OUTSIDE: [(&str, &str, u16); 10] = [
    ("get", "/healthz", 200),
    ("get", "/readyz", 200),
    // Metrics have their own listener here (settings.metrics), so the API port has none.
    ("get", "/metrics", 404),
    ("post", "/api/v1/auth/login", 422),
    ("post", "/api/v1/auth/refresh", 422),
    ("post", "/api/v1/auth/logout", 422),
    ("post", "/api/v1/auth/invitations/accept", 422),
    ("get", "/api/v1/me", 401),
    ("post", "/api/v1/me/password", 401),
    ("get", "/.well-known/aseptic/export-key", 200),
];

const CLINIC_PREFIX: &str = "/api/v1/clinics/{clinic}";
const NOBODY: &str = "01a00000-0000-7000-8000-000000000000";

async fn created(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Real records of a clinic, one of each kind, by the path parameter that names them.
struct Records {
    ids: BTreeMap<&'static str, String>,
}

impl Records {
    /// The path of an operation of `clinic` with these records' ids in it.
    fn path(&self, clinic: &str, rest: &str) -> String {
        let kind = rest.split('/').nth(1).unwrap_or_default();
        let id = self.ids.get(kind).cloned().unwrap_or_default();
        let mut path = format!("/api/v1/clinics/{clinic}{rest}")
            .replace("{id}", &id)
            .replace("{code}", &self.ids["pack"])
            .replace("{user}", &self.ids["user"]);
        // A look-back needs something to look back from.
        if rest == "/lookbacks" {
            path.push_str(&format!("?cycle={}", self.ids["cycles"]));
        }
        path
    }

    /// The same path with every id replaced by one that names nothing.
    fn path_of_nothing(&self, clinic: &str, rest: &str) -> String {
        let mut path = self.path(clinic, rest);
        for id in self.ids.values() {
            path = path.replace(id.as_str(), &nothing_like(id));
        }
        path
    }
}

/// An id of the same shape as `id` that names no record.
fn nothing_like(id: &str) -> String {
    if id.len() == NOBODY.len() {
        NOBODY.to_owned()
    } else {
        // A pack code: the same shape, from the code's own alphabet.
        let first = id.chars().next().unwrap_or('Q');
        id.chars()
            .map(|c| if c.is_ascii_alphanumeric() { first } else { c })
            .collect()
    }
}

async fn seed(app: &TestApp) -> Records {
    let o = &app.owner;
    let post = |rest: &str, body: Value| {
        let path = app.clinic_path(rest);
        async move { created(app.post(&path, o, &body).await).await }
    };
    let steriliser = id_of(
        &post(
            "/sterilisers",
            json!({"make": "W&H", "model": "Lisa", "serial_number": "ISO-1", "kind": "pre_vacuum"}),
        )
        .await,
    );
    let started = common::load_time_hours_ago(6);
    common::qualify_steriliser(app, &steriliser, 1, started).await;
    let cycle = post("/cycles", json!({
        "steriliser_id": steriliser, "cycle_number": 2,
        "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
        "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(40)).to_rfc3339(),
        "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
        "load_indicator": {"type": 5, "passed": true},
        "packs": [{"contents": "grips"}]}))
    .await;
    let pack = cycle["packs"][0]["code"].as_str().unwrap().to_owned();
    let spore = post(
        "/spore-tests",
        json!({"steriliser_id": steriliser, "cycle_id": cycle["id"], "bi_product": "Attest 1292",
            "bi_lot": "L1", "placed_at": (started + Duration::minutes(1)).to_rfc3339(),
            "incubation": {"kind": "in_house", "hours": 24}}),
    )
    .await;
    let air = post(
        "/air-removal-tests",
        json!({
        "steriliser_id": steriliser, "performed_at": (started - Duration::minutes(2)).to_rfc3339(),
        "test_type": "bowie_dick", "passed": true}),
    )
    .await;
    let lot = post("/lots", json!({
        "kind": "needle_cartridge", "manufacturer": "Cheyenne", "product_name": "Craft", "gtin": "09506000134352",
        "lot_number": "ISO123", "expiry_date": (Utc::now() + Duration::days(300)).date_naive().to_string(),
        "sterilisation_method": "ethylene_oxide", "received_on": (Utc::now() - Duration::days(3)).date_naive().to_string(),
        "quantity_received": 20}))
    .await;
    let credentials = common::verified_credentials(app, &app.technician.user_id).await;
    let client = post(
        "/clients",
        json!({"name": "Alex Client", "contact": "+44 7700 900123", "date_of_birth": "1990-04-02"}),
    )
    .await;
    let session = post(
        "/sessions",
        json!({"client_id": client["id"], "station": "Chair 2",
        "procedure": "SMP", "planned_at": Utc::now().to_rfc3339()}),
    )
    .await;
    let checklists: Value = app
        .get(&app.clinic_path("/checklists"), o)
        .await
        .json()
        .await
        .unwrap();
    let checklist = checklists["items"]
        .as_array()
        .or(checklists.as_array())
        .and_then(|a| a.first())
        .map(id_of)
        .expect("a checklist template");
    let incident = post("/incidents", json!({
        "kind": "sharps_injury", "occurred_at": Utc::now().to_rfc3339(), "location": "Chair 2",
        "people": [{"user_id": app.technician.user_id, "role": "injured"}],
        "description": "Needle stick", "immediate_actions": "Washed",
        "sharps": {"device_type": "cartridge", "device_brand": "Cheyenne", "work_area": "station", "how_it_happened": "recapping"}}))
    .await;
    // A grant for a new address mails an invitation: a message of the clinic's mail log.
    let grant = post(
        "/inspectors",
        json!({"email": "matrix@council.example", "valid_until": (Utc::now() + Duration::days(5)).to_rfc3339()}),
    )
    .await;
    let requested = app
        .post(
            &app.clinic_path("/exports"),
            o,
            &json!({"from": (Utc::now() - Duration::days(1)).to_rfc3339(), "to": (Utc::now() + Duration::minutes(1)).to_rfc3339()}),
        )
        .await;
    let export = id_of(&created(requested).await);
    common::built_export(app, &export).await;
    let mut mail = String::new();
    for _ in 0..100 {
        let log: Value = app
            .get(&app.clinic_path("/mail"), o)
            .await
            .json()
            .await
            .unwrap();
        if let Some(m) = log.as_array().and_then(|a| a.first()) {
            mail = id_of(m);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!mail.is_empty(), "the invitation is in the mail log");
    // The steriliser's own record of a cycle, and the file it came from.
    let record = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/autoclave/tuttnauer_elara11/cycle_000812.txt"),
    )
    .unwrap();
    let report = created(
        app.request(
            Method::POST,
            &app.clinic_path(&format!(
                "/sterilisers/{steriliser}/imports?name=cycle_000812.txt"
            )),
            o,
        )
        .header("content-type", "text/plain")
        .body(record)
        .send()
        .await
        .unwrap(),
    )
    .await;
    let imported = report["cycles"][0]["id"].as_str().unwrap().to_owned();
    let device_file: Value = app
        .get(&app.clinic_path(&format!("/imported-cycles/{imported}")), o)
        .await
        .json()
        .await
        .unwrap();
    let device_file = device_file["file"]["id"].as_str().unwrap().to_owned();
    let ids = BTreeMap::from([
        ("imported-cycles", imported),
        ("device-files", device_file),
        ("sterilisers", steriliser),
        ("cycles", id_of(&cycle)),
        ("pack", pack),
        ("spore-tests", id_of(&spore)),
        ("air-removal-tests", id_of(&air)),
        ("lots", id_of(&lot)),
        ("credentials", credentials[0].clone()),
        ("checklists", checklist),
        ("clients", id_of(&client)),
        ("sessions", id_of(&session)),
        ("incidents", id_of(&incident)),
        ("inspectors", id_of(&grant)),
        ("exports", export),
        ("mail", mail),
        ("user", app.technician.user_id.clone()),
    ]);
    Records { ids }
}

/// An inspector of clinic A whose grant ran out or was revoked.
async fn inspector_whose_access_ended(app: &TestApp, email: &str, revoke: bool) -> Actor {
    app.add_member(&app.clinic_id, email, Role::Inspector);
    let until = Utc::now() + Duration::seconds(if revoke { 3600 } else { 2 });
    let grant = created(
        app.post(
            &app.clinic_path("/inspectors"),
            &app.owner,
            &json!({"email": email, "valid_until": until.to_rfc3339()}),
        )
        .await,
    )
    .await;
    let actor = app.login_as(email).await;
    if revoke {
        created(
            app.post(
                &app.clinic_path(&format!("/inspectors/{}/revoke", id_of(&grant))),
                &app.owner,
                &json!({"reason": "inspection over"}),
            )
            .await,
        )
        .await;
    }
    actor
}

/// A problem document without what names this very request, so two answers can be compared.
fn comparable(mut body: Value, ids: &Records) -> String {
    if let Some(o) = body.as_object_mut() {
        o.remove("instance");
        o.remove("request_id");
    }
    let mut text = body.to_string();
    for id in ids.ids.values() {
        text = text.replace(id.as_str(), &nothing_like(id));
    }
    text
}

async fn call(
    app: &TestApp,
    method: &Method,
    path: &str,
    who: Option<&Actor>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method.clone(), app.url(path));
    if let Some(actor) = who {
        req = req.bearer_auth(&actor.token);
    }
    if let Some(body) = body {
        req = req.json(body);
    } else if *method != Method::GET {
        req = req.json(&json!({}));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn every_operation_answers_each_kind_of_caller_as_it_should() {
    let app = TestApp::spawn().await;
    let a = seed(&app).await;
    let expired = inspector_whose_access_ended(&app, "expired@council.example", false).await;
    let revoked = inspector_whose_access_ended(&app, "revoked@council.example", true).await;
    // The short grant has run out by the time the matrix reaches it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let doc = app.openapi().await;
    let expected = expectations();
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let Some(rest) = path.strip_prefix(CLINIC_PREFIX) else {
                let Some((_, _, status)) =
                    OUTSIDE.iter().find(|(m, p, _)| m == method && p == path)
                else {
                    failures.push(format!(
                        "{method} {path}: no expectation (say who may call it)"
                    ));
                    continue;
                };
                let (got, body) = call(&app, &verb, path, None, None).await;
                if got != *status {
                    failures.push(format!(
                        "{method} {path} anonymous: {got}, expected {status}: {body}"
                    ));
                }
                continue;
            };
            let Some((&key, &may)) = expected.get_key_value(&(method.as_str(), rest)) else {
                failures.push(format!(
                    "{method} {path}: no expectation (say who may call it)"
                ));
                continue;
            };
            seen.insert(key);
            let real = a.path(&app.clinic_id, rest);
            let read = verb == Method::GET;

            // Who must be refused, and how.
            let mut refused: Vec<(&str, Option<&Actor>, &[u16])> = vec![
                ("anonymous", None, &[401]),
                ("an inspector whose grant expired", Some(&expired), &[403]),
                (
                    "an inspector whose grant was revoked",
                    Some(&revoked),
                    &[403],
                ),
            ];
            if matches!(may, May::Owner | May::OwnerOrInspector) {
                refused.push(("the technician", Some(&app.technician), &[403]));
            }
            let inspector_may = matches!(may, May::Read | May::OwnerOrInspector)
                && (read || may == May::OwnerOrInspector);
            if !inspector_may {
                refused.push(("the inspector", Some(&app.inspector), &[403]));
            }
            for (who, actor, allowed) in refused {
                let (got, body) = call(&app, &verb, &real, actor, None).await;
                if !allowed.contains(&got) {
                    failures.push(format!(
                        "{method} {path} as {who}: {got}, expected {allowed:?}: {body}"
                    ));
                }
            }

            // Another clinic's owner learns nothing: A's clinic and records answer exactly as
            // a clinic and records that do not exist.
            let (got, body) = call(&app, &verb, &real, Some(&app.other_owner), None).await;
            let (got_nothing, nothing) = call(
                &app,
                &verb,
                &a.path_of_nothing(&app.clinic_id, rest),
                Some(&app.other_owner),
                None,
            )
            .await;
            if got != 404
                || got_nothing != 404
                || comparable(body.clone(), &a) != comparable(nothing.clone(), &a)
            {
                failures.push(format!(
                    "{method} {path} as owner B with A's ids: {got} {body} vs with no such ids: {got_nothing} {nothing}"
                ));
            }
            // A's record ids inside B's own clinic: the same as ids that name nothing.
            if rest.contains('{') {
                let (got, body) = call(
                    &app,
                    &verb,
                    &a.path(&app.other_clinic_id, rest),
                    Some(&app.other_owner),
                    None,
                )
                .await;
                let (got_nothing, nothing) = call(
                    &app,
                    &verb,
                    &a.path_of_nothing(&app.other_clinic_id, rest),
                    Some(&app.other_owner),
                    None,
                )
                .await;
                if got != got_nothing
                    || got < 400
                    || comparable(body.clone(), &a) != comparable(nothing.clone(), &a)
                {
                    failures.push(format!(
                        "{method} {path} in clinic B with A's ids: {got} {body} vs with no such ids: {got_nothing} {nothing}"
                    ));
                }
            }

            // Those who may read, read (writes are each domain's own tests: an empty body
            // here would only be refused as incomplete).
            if read {
                let mut readers: Vec<(&str, &Actor)> = vec![("the owner", &app.owner)];
                if may == May::Read || may == May::Staff {
                    readers.push(("the technician", &app.technician));
                }
                if inspector_may {
                    readers.push(("the inspector", &app.inspector));
                }
                for (who, actor) in readers {
                    let (got, body) = call(&app, &verb, &real, Some(actor), None).await;
                    if got != 200 {
                        failures.push(format!(
                            "{method} {path} as {who}: {got}, expected 200: {body}"
                        ));
                    }
                }
            }
        }
    }
    let unlisted: Vec<_> = expected.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(
        unlisted.is_empty(),
        "expected operations the document does not list: {unlisted:?}"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A's ids inside B's request bodies and queries: B's answers are those for ids that name
/// nothing, and nothing of A's is touched.
#[actix_web::test]
async fn another_clinics_ids_in_bodies_and_queries_look_like_nothing() {
    let app = TestApp::spawn().await;
    let a = seed(&app).await;
    let b = &app.other_owner;
    let b_path = |rest: &str| format!("/api/v1/clinics/{}{rest}", app.other_clinic_id);
    // B's own session, to add A's pack and lot to.
    let client = created(
        app.post(
            &b_path("/clients"),
            b,
            &json!({"name": "B Client", "contact": "+44 7700 900999", "date_of_birth": "1985-01-01"}),
        )
        .await,
    )
    .await;
    let session = id_of(
        &created(
            app.post(
                &b_path("/sessions"),
                b,
                &json!({"client_id": client["id"], "station": "1", "procedure": "SMP", "planned_at": Utc::now().to_rfc3339()}),
            )
            .await,
        )
        .await,
    );
    let before = app.audit_events().await.len();
    let id = |k: &str| a.ids[k].clone();
    let started = Utc::now() - Duration::hours(1);
    let bodies: Vec<(&str, String, Value)> = vec![
        (
            "post",
            "/sessions".into(),
            json!({"client_id": id("clients"), "station": "1", "procedure": "SMP", "planned_at": Utc::now().to_rfc3339()}),
        ),
        (
            "post",
            "/sessions".into(),
            json!({"client_id": client["id"], "technician_id": id("user"), "station": "1", "procedure": "SMP", "planned_at": Utc::now().to_rfc3339()}),
        ),
        (
            "post",
            format!("/sessions/{session}/packs"),
            json!({"code": id("pack")}),
        ),
        (
            "post",
            format!("/sessions/{session}/lots"),
            json!({"lot_id": id("lots")}),
        ),
        (
            "post",
            "/spore-tests".into(),
            json!({"steriliser_id": id("sterilisers"), "cycle_id": id("cycles"), "bi_product": "Attest", "bi_lot": "L", "placed_at": started.to_rfc3339(), "incubation": {"kind": "in_house", "hours": 24}}),
        ),
        (
            "post",
            "/air-removal-tests".into(),
            json!({"steriliser_id": id("sterilisers"), "performed_at": started.to_rfc3339(), "test_type": "bowie_dick", "passed": true}),
        ),
        (
            "post",
            "/cycles".into(),
            json!({"steriliser_id": id("sterilisers"), "cycle_number": 9,
            "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
            "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(40)).to_rfc3339(),
            "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
            "load_indicator": {"type": 5, "passed": true}, "packs": []}),
        ),
        (
            "post",
            "/credentials".into(),
            json!({"user_id": id("user"), "kind": "licence", "number": "X", "issued_on": "2025-01-01"}),
        ),
        (
            "post",
            "/incidents".into(),
            json!({"kind": "sharps_injury", "occurred_at": started.to_rfc3339(), "location": "1",
            "session_id": id("sessions"), "people": [{"client_id": id("clients"), "role": "injured"}],
            "description": "x", "immediate_actions": "y",
            "sharps": {"device_type": "c", "device_brand": "b", "work_area": "w", "how_it_happened": "h"}}),
        ),
        (
            "get",
            format!("/cycles?steriliser_id={}", id("sterilisers")),
            Value::Null,
        ),
        (
            "get",
            format!("/spore-tests?steriliser_id={}", id("sterilisers")),
            Value::Null,
        ),
        (
            "get",
            format!("/credentials?user_id={}", id("user")),
            Value::Null,
        ),
        (
            "get",
            format!("/lookbacks?cycle={}", id("cycles")),
            Value::Null,
        ),
        ("get", format!("/lookbacks?lot={}", id("lots")), Value::Null),
        (
            "get",
            format!("/lookbacks?spore_test={}", id("spore-tests")),
            Value::Null,
        ),
        (
            "get",
            format!("/sessions?technician_id={}", id("user")),
            Value::Null,
        ),
    ];
    let mut failures = Vec::new();
    for (method, rest, body) in bodies {
        let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let with_a = (rest.clone(), body.clone());
        let mut with_nothing = (rest.clone(), body.to_string());
        for v in a.ids.values() {
            with_nothing.0 = with_nothing.0.replace(v.as_str(), &nothing_like(v));
            with_nothing.1 = with_nothing.1.replace(v.as_str(), &nothing_like(v));
        }
        let nothing_body: Value = serde_json::from_str(&with_nothing.1).unwrap();
        let body_of = |v: &Value| (!v.is_null()).then_some(v.clone());
        let (got, answer) = call(
            &app,
            &verb,
            &b_path(&with_a.0),
            Some(b),
            body_of(&with_a.1).as_ref(),
        )
        .await;
        let (got_nothing, answer_nothing) = call(
            &app,
            &verb,
            &b_path(&with_nothing.0),
            Some(b),
            body_of(&nothing_body).as_ref(),
        )
        .await;
        if got >= 500
            || got != got_nothing
            || comparable(answer.clone(), &a) != comparable(answer_nothing.clone(), &a)
        {
            failures.push(format!(
                "{method} {rest}: with A's ids {got} {answer}; with ids of nothing {got_nothing} {answer_nothing}"
            ));
        }
        if method == "post" && got < 300 {
            failures.push(format!(
                "{method} {rest}: B's request with A's ids succeeded: {answer}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        app.audit_events().await.len(),
        before,
        "clinic A's chain is untouched by B's requests"
    );
}
