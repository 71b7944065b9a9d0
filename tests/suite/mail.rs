//! Mail: summaries, event reports and reminders go through the outbox to a real SMTP server on
//! loopback (mailin-embedded), survive the server being down, and go out once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use crate::common;

use aseptic::config::Secret;
use chrono::{Datelike, Duration, Utc};
use common::{assert_problem, TestApp};
use diesel::connection::SimpleConnection;
use mail_parser::{MessageParser, MimeHeaders};
use mailin_embedded::response::{self, Response};
use mailin_embedded::{Handler, Server, SslConfig};
use reqwest::Method;
use serde_json::{json, Value};

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
struct Received {
    to: Vec<String>,
    raw: Vec<u8>,
}

#[derive(Clone)]
struct Sink {
    inbox: Arc<Mutex<Vec<Received>>>,
    to: Vec<String>,
    data: Vec<u8>,
    /// Recipients refused for good (550).
    refuse: Arc<Vec<String>>,
}

impl Handler for Sink {
    fn rcpt(&mut self, to: &str) -> Response {
        if self.refuse.iter().any(|r| r == to) {
            return response::NO_MAILBOX;
        }
        response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.inbox.lock().unwrap().push(Received {
            to: std::mem::take(&mut self.to),
            raw: std::mem::take(&mut self.data),
        });
        response::OK
    }
}

/// A real SMTP server on a loopback port, serving from a background thread.
struct Smtp {
    port: u16,
    inbox: Arc<Mutex<Vec<Received>>>,
}

impl Smtp {
    fn start_on(listener: TcpListener, refuse: Vec<String>) -> Self {
        let port = listener.local_addr().unwrap().port();
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink {
            inbox: inbox.clone(),
            to: Vec::new(),
            data: Vec::new(),
            refuse: Arc::new(refuse),
        };
        let mut server = Server::new(sink);
        server
            .with_name("loopback.test")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self { port, inbox }
    }

    fn start() -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), Vec::new())
    }

    fn messages(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }
}

async fn with_smtp(port: u16) -> TestApp {
    TestApp::spawn_with(|s| s.mail.url = Secret::new(format!("smtp://127.0.0.1:{port}"))).await
}

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Requests an export of the last day and waits until it is built.
async fn ready_export(app: &TestApp) -> String {
    let e = ok(app
        .post(
            &app.clinic_path("/exports"),
            &app.owner,
            &json!({"from": (Utc::now() - Duration::days(1)).to_rfc3339(), "to": Utc::now().to_rfc3339()}),
        )
        .await)
    .await;
    let id = e["id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let v = ok(app
            .get(&app.clinic_path(&format!("/exports/{id}")), &app.owner)
            .await)
        .await;
        if v["state"] == "ready" {
            return id;
        }
        assert_eq!(v["state"], "building", "{v}");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("export {id} not built");
}

/// A mail worker of its own over the app's database, as another instance of the service runs.
fn mailer(app: &TestApp) -> aseptic::mail::Mailer {
    aseptic::mail::Mailer::new(
        app.pool.clone(),
        Arc::new(app.settings.clone()),
        Arc::new(aseptic::load_profiles(&app.settings).unwrap()),
        Arc::new(
            aseptic::exports::ExportKey::load_or_create(&app.settings.exports.signing_key_path)
                .unwrap(),
        ),
    )
    .unwrap()
}

/// Queues a plain message straight into the outbox; returns its id.
fn queue(
    app: &TestApp,
    kind: &'static str,
    recipient: &str,
    subject: &str,
    export_id: Option<String>,
) -> String {
    aseptic::outbox::enqueue(
        &mut app.raw_connection(),
        aseptic::outbox::NewMail {
            clinic_id: app.clinic_id.clone(),
            kind,
            recipient: recipient.into(),
            subject: subject.into(),
            body_text: "text".into(),
            body_html: None,
            export_id,
        },
    )
    .unwrap()
    .id
}

async fn mail(app: &TestApp) -> Vec<Value> {
    ok(app.get(&app.clinic_path("/mail"), &app.owner).await)
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until every message of the clinic has left the pending state.
async fn settled(app: &TestApp) -> Vec<Value> {
    for _ in 0..300 {
        let all = mail(app).await;
        if !all.is_empty() && all.iter().all(|m| m["state"] != "pending") {
            return all;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("mail still pending: {:?}", mail(app).await);
}

#[actix_web::test]
async fn a_summary_sent_now_arrives_with_its_headers_bodies_and_report() {
    let smtp = Smtp::start();
    let app = with_smtp(smtp.port).await;
    let export = ready_export(&app).await;
    let res = app
        .post(
            &app.clinic_path(&format!("/exports/{export}/send")),
            &app.owner,
            &json!({"to": "Inspector@Council.example"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let queued: Value = res.json().await.unwrap();
    assert_eq!(queued["recipient"], "inspector@council.example");
    assert_eq!(queued["kind"], "summary");

    let all = settled(&app).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["state"], "sent", "{}", all[0]);
    assert_eq!(all[0]["attempts"], 1);
    let got = smtp.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, ["inspector@council.example"]);
    let msg = MessageParser::default().parse(&got[0].raw).unwrap();
    let message_id = queued["message_id"].as_str().unwrap();
    assert_eq!(
        format!("<{}>", msg.message_id().unwrap()),
        message_id,
        "the Message-ID is the one the outbox shows"
    );
    assert_eq!(
        msg.from().unwrap().first().unwrap().address().unwrap(),
        "aseptic@localhost"
    );
    let subject = msg.subject().unwrap();
    assert!(
        subject.starts_with("Audit summary: Ink & Needle"),
        "{subject}"
    );
    let text = msg.body_text(0).unwrap();
    assert!(text.contains("Readiness at"), "{text}");
    assert!(
        text.contains(&format!("/exports/{export}/download")),
        "{text}"
    );
    let html = msg.body_html(0).unwrap();
    assert!(
        html.contains("<h1>Audit summary for Ink &amp; Needle"),
        "{html}"
    );
    let pdf = msg
        .attachments()
        .find(|a| a.attachment_name() == Some("report.pdf"))
        .expect("report.pdf attached");
    assert_eq!(
        pdf.content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""))),
        Some("application/pdf".to_owned())
    );
    assert!(pdf.contents().starts_with(b"%PDF-"));
    // The attachment is the export's own report, byte for byte.
    let zip = app
        .get(
            &app.clinic_path(&format!("/exports/{export}/download")),
            &app.owner,
        )
        .await
        .bytes()
        .await
        .unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut report = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("report.pdf").unwrap(), &mut report).unwrap();
    assert_eq!(pdf.contents(), report.as_slice());
    // So is the signed manifest, and the body names the checkpoint it signs.
    let manifest = msg
        .attachments()
        .find(|a| a.attachment_name() == Some("manifest.json"))
        .expect("manifest.json attached");
    let mut signed = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("manifest.json").unwrap(), &mut signed)
        .unwrap();
    assert_eq!(manifest.contents(), signed.as_slice());
    let m: Value = serde_json::from_slice(&signed).unwrap();
    let head = m["chain"]["head_hash"].as_str().unwrap();
    assert!(text.contains(&format!("chain head {head}")), "{text}");
    assert!(text.contains(m["signature"].as_str().unwrap()), "{text}");
    // The sending is a fact of the clinic's chain.
    let events = app.audit_events().await;
    assert!(events
        .iter()
        .any(|e| e["action"] == "export.sent" && e["entity_id"] == export.as_str()));
}

#[actix_web::test]
async fn without_a_server_mail_is_written_as_files() {
    let app = TestApp::spawn().await;
    let export = ready_export(&app).await;
    let queued = ok(app
        .post(
            &app.clinic_path(&format!("/exports/{export}/send")),
            &app.owner,
            &json!({"to": "inspector@council.example"}),
        )
        .await)
    .await;
    let all = settled(&app).await;
    assert_eq!(all[0]["state"], "sent");
    let path = app
        .dir
        .path()
        .join("outbox")
        .join(format!("{}.eml", queued["id"].as_str().unwrap()));
    let raw = std::fs::read(&path).unwrap();
    let msg = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        format!("<{}>", msg.message_id().unwrap()),
        queued["message_id"].as_str().unwrap()
    );
    assert!(msg
        .attachments()
        .any(|a| a.attachment_name() == Some("report.pdf")));
}

#[actix_web::test]
async fn with_the_server_down_requests_answer_and_every_message_arrives_once_it_is_back() {
    // A port nobody listens on yet: connections are refused until the server starts.
    let reserved = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let app = with_smtp(port).await;
    let export = ready_export(&app).await;
    // Add a recipient, then send to both addresses while the server is down.
    ok(app
        .request(Method::PUT, &app.clinic_path("/mail/settings"), &app.owner)
        .json(&json!({"recipients": ["records@council.example"]}))
        .send()
        .await
        .unwrap())
    .await;
    for to in [
        "inspector@council.example",
        "records@council.example",
        "inspector@council.example",
    ] {
        let res = app
            .post(
                &app.clinic_path(&format!("/exports/{export}/send")),
                &app.owner,
                &json!({"to": to}),
            )
            .await;
        assert_eq!(res.status(), 202, "accepted while SMTP is down");
    }
    // Tried, failed, kept for later: after one refused connection the rest of the batch waits
    // with it rather than each being tried against a server that is down.
    let mut retried = false;
    for _ in 0..200 {
        let all = mail(&app).await;
        if all.iter().any(|m| m["attempts"].as_i64().unwrap() >= 1) {
            assert!(all.iter().all(|m| m["state"] == "pending"), "{all:?}");
            assert!(
                all.iter()
                    .filter(|m| m["attempts"].as_i64().unwrap() >= 1)
                    .all(|m| !m["last_error"].is_null()),
                "{all:?}"
            );
            retried = true;
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert!(retried, "delivery was tried while the server was down");
    // Requests answer as usual meanwhile.
    assert_eq!(
        app.get(&app.clinic_path("/compliance"), &app.owner)
            .await
            .status(),
        200
    );

    let smtp = Smtp::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), Vec::new());
    let all = settled(&app).await;
    assert!(all.iter().all(|m| m["state"] == "sent"), "{all:?}");
    let got = smtp.messages();
    assert_eq!(got.len(), 3, "each message delivered once");
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| {
            MessageParser::default()
                .parse(&r.raw)
                .unwrap()
                .message_id()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct messages");
}

#[actix_web::test]
async fn a_refused_recipient_fails_at_once_and_shows_on_the_compliance_view() {
    let smtp = Smtp::start_on(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        vec!["gone@council.example".into()],
    );
    let app = with_smtp(smtp.port).await;
    let export = ready_export(&app).await;
    ok(app
        .request(Method::PUT, &app.clinic_path("/mail/settings"), &app.owner)
        .json(&json!({"recipients": ["gone@council.example"]}))
        .send()
        .await
        .unwrap())
    .await;
    ok(app
        .post(
            &app.clinic_path(&format!("/exports/{export}/send")),
            &app.owner,
            &json!({"to": "gone@council.example"}),
        )
        .await)
    .await;
    let all = settled(&app).await;
    assert_eq!(all[0]["state"], "failed");
    assert_eq!(all[0]["attempts"], 1, "a permanent refusal is not retried");
    let view = ok(app.get(&app.clinic_path("/compliance"), &app.owner).await).await;
    let finding = view["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "mail_delivery")
        .expect("the failure is a finding");
    assert!(finding["message"]
        .as_str()
        .unwrap()
        .contains("gone@council.example"));
    let failed = ok(app
        .get(&app.clinic_path("/mail?state=failed"), &app.owner)
        .await)
    .await;
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert!(app
        .audit_events()
        .await
        .iter()
        .any(|e| e["action"] == "mail.failed"));

    // The owner resends it (say, after the council fixed its mailbox): a new message, and the
    // old failure is no longer a finding. This one is refused again and is the only finding.
    let first = failed[0]["id"].as_str().unwrap().to_owned();
    let resend = |id: &str, actor: &common::Actor| {
        app.request(
            Method::POST,
            &app.clinic_path(&format!("/mail/{id}/resend")),
            actor,
        )
        .send()
    };
    assert_problem(resend(&first, &app.technician).await.unwrap(), 403, None).await;
    let res = resend(&first, &app.owner).await.unwrap();
    assert_eq!(res.status(), 202);
    let again: Value = res.json().await.unwrap();
    assert_ne!(again["id"], first.as_str());
    assert_ne!(again["message_id"], all[0]["message_id"]);
    assert_problem(resend(&first, &app.owner).await.unwrap(), 409, None).await;
    let all = settled(&app).await;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|m| m["state"] == "failed"), "{all:?}");
    let view = ok(app.get(&app.clinic_path("/compliance"), &app.owner).await).await;
    let findings: Vec<&Value> = view["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "mail_delivery")
        .collect();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(app
        .audit_events()
        .await
        .iter()
        .any(|e| e["action"] == "mail.resent" && e["entity_id"] == first.as_str()));
    common::assert_foreign_looks_missing(
        &app,
        &[(Method::POST, format!("/mail/{first}/resend"), Value::Null)],
    )
    .await;
}

#[actix_web::test]
async fn only_a_message_given_up_on_can_be_resent() {
    let app = TestApp::spawn().await;
    let export = ready_export(&app).await;
    ok(app
        .post(
            &app.clinic_path(&format!("/exports/{export}/send")),
            &app.owner,
            &json!({"to": "inspector@council.example"}),
        )
        .await)
    .await;
    let sent = settled(&app).await;
    let id = sent[0]["id"].as_str().unwrap();
    let res = app
        .request(
            Method::POST,
            &app.clinic_path(&format!("/mail/{id}/resend")),
            &app.owner,
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, None).await;
    let res = app
        .request(
            Method::POST,
            &app.clinic_path("/mail/01a00000-0000-7000-8000-000000000000/resend"),
            &app.owner,
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, None).await;
    assert_eq!(mail(&app).await.len(), 1, "nothing queued");
}

#[actix_web::test]
async fn a_scheduled_summary_goes_out_once_per_period_when_workers_race() {
    let smtp = Smtp::start();
    let app = with_smtp(smtp.port).await;
    // Weekly, on the weekday three days from now at 00:00 clinic time (London).
    let day = (Utc::now() + Duration::days(3)).with_timezone(&chrono_tz::Europe::London);
    let weekday = day.weekday().number_from_monday();
    ok(app
        .request(Method::PUT, &app.clinic_path("/mail/settings"), &app.owner)
        .json(&json!({"summary": {"frequency": "weekly", "day": weekday, "time": "00:00"}, "recipients": ["records@council.example"]}))
        .send()
        .await
        .unwrap())
    .await;
    let settings = ok(app
        .get(&app.clinic_path("/mail/settings"), &app.owner)
        .await)
    .await;
    assert_eq!(settings["summary"]["time"], "00:00");

    // Four days on, that moment has passed. Four workers (as four instances would) race for it.
    let at = Utc::now() + Duration::days(4);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let mailer = mailer(&app);
            std::thread::spawn(move || mailer.run_schedules(at).unwrap())
        })
        .collect();
    let queued: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(queued, 1, "one summary for the period, whoever raced");
    let again = mailer(&app).run_schedules(at + Duration::hours(1)).unwrap();
    assert_eq!(again, 0, "the same period is not sent twice");

    let all = settled(&app).await;
    assert_eq!(
        all.len(),
        2,
        "the inspector and the added recipient: {all:?}"
    );
    assert!(all
        .iter()
        .all(|m| m["state"] == "sent" && m["kind"] == "summary"));
    let got = smtp.messages();
    let mut to: Vec<String> = got.iter().flat_map(|r| r.to.clone()).collect();
    to.sort();
    assert_eq!(to, ["inspector@council.example", "records@council.example"]);
    for r in &got {
        let msg = MessageParser::default().parse(&r.raw).unwrap();
        assert!(msg
            .attachments()
            .any(|a| a.attachment_name() == Some("report.pdf")));
        assert!(msg.body_text(0).unwrap().contains("Overdue or blocking"));
    }
    let events = app.audit_events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "mail.summary_queued")
            .count(),
        1
    );
}

#[actix_web::test]
async fn a_positive_spore_test_is_reported_to_the_authority_where_the_profile_asks() {
    let smtp = Smtp::start();
    let app = with_smtp(smtp.port).await;
    let o = &app.owner;
    // Montana's profile asks for the report; until an address is given the view says so.
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE clinics SET jurisdiction = 'us-mt' WHERE id = '{}'",
            app.clinic_id
        ))
        .unwrap();
    let view = ok(app.get(&app.clinic_path("/compliance"), o).await).await;
    assert!(view["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "authority_address"));
    ok(app
        .request(Method::PUT, &app.clinic_path("/mail/settings"), o)
        .json(&json!({"authority_email": "health@county.example"}))
        .send()
        .await
        .unwrap())
    .await;
    let view = ok(app.get(&app.clinic_path("/compliance"), o).await).await;
    assert!(!view["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "authority_address"));

    let s = ok(app
        .post(
            &app.clinic_path("/sterilisers"),
            o,
            &json!({"make": "W&H", "model": "Lisa", "serial_number": "S-MT", "kind": "gravity"}),
        )
        .await)
    .await;
    let started = Utc::now() - Duration::hours(30);
    let c = ok(app.post(&app.clinic_path("/cycles"), o, &json!({
        "steriliser_id": s["id"], "cycle_number": 1, "program": {"name": "121", "temperature_c": 121.0, "hold_minutes": 30.0},
        "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(50)).to_rfc3339(),
        "peak_temperature_c": 122.0, "peak_pressure_kpa": 213.0, "hold_minutes": 31.0,
        "load_indicator": {"type": 5, "passed": true}, "packs": [{"contents": "tips"}]})).await).await;
    let t = ok(app
        .post(&app.clinic_path("/spore-tests"), o, &json!({"steriliser_id": s["id"], "cycle_id": c["id"], "bi_product": "Attest", "bi_lot": "B", "placed_at": c["started_at"], "incubation": {"kind": "in_house", "hours": 24}}))
        .await)
    .await;
    ok(app
        .post(
            &app.clinic_path(&format!("/spore-tests/{}/result", t["id"].as_str().unwrap())),
            o,
            &json!({"result": "positive", "control_result": "growth", "read_at": Utc::now().to_rfc3339()}),
        )
        .await)
    .await;
    let all = settled(&app).await;
    let report = all
        .iter()
        .find(|m| m["kind"] == "authority")
        .expect("the authority report is queued");
    assert_eq!(report["recipient"], "health@county.example");
    assert_eq!(report["state"], "sent");
    let got = smtp.messages();
    let raw = got
        .iter()
        .find(|r| r.to == ["health@county.example"])
        .expect("delivered to the authority");
    let msg = MessageParser::default().parse(&raw.raw).unwrap();
    assert!(msg.subject().unwrap().starts_with("Positive spore test"));
    let text = msg.body_text(0).unwrap();
    assert!(
        text.contains("Look-back: 1 load, 1 pack and 0 client sessions"),
        "{text}"
    );
    assert!(text.contains("ARM 37.112.131"), "{text}");
    assert!(app
        .audit_events()
        .await
        .iter()
        .any(|e| e["action"] == "authority.report_queued"));
}

#[actix_web::test]
async fn the_baseline_profile_reports_nothing_to_the_authority() {
    let app = TestApp::spawn().await;
    let o = &app.owner;
    ok(app
        .request(Method::PUT, &app.clinic_path("/mail/settings"), o)
        .json(&json!({"authority_email": "health@county.example"}))
        .send()
        .await
        .unwrap())
    .await;
    let lot = ok(app.post(&app.clinic_path("/lots"), o, &json!({"kind": "pigment", "manufacturer": "M", "product_name": "P", "lot_number": "LOT-1", "expiry_date": (Utc::now() + Duration::days(300)).date_naive().to_string(), "sterilisation_method": "gamma", "received_on": (Utc::now() - Duration::days(5)).date_naive().to_string(), "quantity_received": 1})).await).await;
    ok(app
        .post(
            &app.clinic_path(&format!("/lots/{}/recall", lot["id"].as_str().unwrap())),
            o,
            &json!({"reason": "contamination", "reference": "FDA-1"}),
        )
        .await)
    .await;
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(mail(&app).await.iter().all(|m| m["kind"] != "authority"));
}

#[actix_web::test]
async fn owners_are_reminded_once_before_a_lot_or_credential_expires() {
    let app = TestApp::spawn().await;
    let o = &app.owner;
    ok(app.post(&app.clinic_path("/lots"), o, &json!({"kind": "pigment", "manufacturer": "M", "product_name": "Black", "lot_number": "LOT-5D", "expiry_date": (Utc::now() + Duration::days(5)).date_naive().to_string(), "sterilisation_method": "gamma", "received_on": (Utc::now() - Duration::days(5)).date_naive().to_string(), "quantity_received": 1})).await).await;
    ok(app.post(&app.clinic_path("/credentials"), o, &json!({"user_id": app.technician.user_id, "kind": "bloodborne_pathogen_training", "issuer": "Red Cross", "issued_on": (Utc::now() - Duration::days(340)).date_naive().to_string(), "expires_on": (Utc::now() + Duration::days(20)).date_naive().to_string()})).await).await;
    let mailer = mailer(&app);
    // The worker scans by itself; a second scan right after queues nothing new.
    mailer.run_reminders(Utc::now()).unwrap();
    assert_eq!(mailer.run_reminders(Utc::now()).unwrap(), 0);
    let reminders: Vec<Value> = settled(&app)
        .await
        .into_iter()
        .filter(|m| m["kind"] == "reminder")
        .collect();
    let subjects: Vec<&str> = reminders
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects.iter().filter(|s| s.contains("LOT-5D")).count(),
        1,
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.contains("in 5 days")),
        "{subjects:?}"
    );
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains("bloodborne") || s.contains("Bloodborne"))
            .count(),
        1,
        "{subjects:?}"
    );
    assert!(reminders
        .iter()
        .all(|m| m["recipient"] == "owner@ink.example"));
    // A day closer crosses no new threshold (7 days already reminded); one day left does.
    assert_eq!(
        mailer
            .run_reminders(Utc::now() + Duration::days(1))
            .unwrap(),
        0
    );
    assert!(
        mailer
            .run_reminders(Utc::now() + Duration::days(4))
            .unwrap()
            >= 1
    );
}

#[actix_web::test]
async fn bad_mail_input_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let o = &app.owner;
    let put = |body: Value| {
        app.request(Method::PUT, &app.clinic_path("/mail/settings"), o)
            .json(&body)
            .send()
    };
    assert_problem(
        put(json!({"recipients": ["not-an-address"]}))
            .await
            .unwrap(),
        422,
        Some("recipients[0]"),
    )
    .await;
    assert_problem(
        put(json!({"authority_email": "a b@c.example"}))
            .await
            .unwrap(),
        422,
        Some("authority_email"),
    )
    .await;
    assert_problem(
        put(json!({"summary": {"frequency": "weekly", "day": 8, "time": "09:00"}}))
            .await
            .unwrap(),
        422,
        Some("summary.day"),
    )
    .await;
    assert_problem(
        put(json!({"summary": {"frequency": "monthly", "day": 31, "time": "09:00"}}))
            .await
            .unwrap(),
        422,
        Some("summary.day"),
    )
    .await;
    assert_problem(
        put(json!({"summary": {"frequency": "weekly", "day": 1, "time": "25:00"}}))
            .await
            .unwrap(),
        422,
        Some("summary.time"),
    )
    .await;
    assert_problem(
        put(json!({"summary": {"frequency": "daily", "day": 1, "time": "09:00"}}))
            .await
            .unwrap(),
        422,
        None,
    )
    .await;
    let unchanged = ok(app.get(&app.clinic_path("/mail/settings"), o).await).await;
    assert!(
        unchanged["summary"].is_null() && unchanged["updated_at"].is_null(),
        "{unchanged}"
    );

    let export = ready_export(&app).await;
    let send = |to: &str| {
        app.request(
            Method::POST,
            &app.clinic_path(&format!("/exports/{export}/send")),
            o,
        )
        .json(&json!({"to": to}))
        .send()
    };
    assert_problem(send("nobody").await.unwrap(), 422, Some("to")).await;
    assert_problem(
        send("stranger@elsewhere.example").await.unwrap(),
        422,
        Some("to"),
    )
    .await;
    // Staff are not inspectors.
    assert_problem(send("tech@ink.example").await.unwrap(), 422, Some("to")).await;
    assert!(mail(&app).await.is_empty(), "nothing queued");
    assert_problem(
        app.get(&app.clinic_path("/mail?state=lost"), o).await,
        422,
        Some("state"),
    )
    .await;

    // Owners only; inspectors never write.
    assert_problem(
        app.get(&app.clinic_path("/mail"), &app.technician).await,
        403,
        None,
    )
    .await;
    assert_problem(
        app.get(&app.clinic_path("/mail/settings"), &app.inspector)
            .await,
        403,
        None,
    )
    .await;
    assert_problem(
        app.request(
            Method::PUT,
            &app.clinic_path("/mail/settings"),
            &app.inspector,
        )
        .json(&json!({"recipients": []}))
        .send()
        .await
        .unwrap(),
        403,
        None,
    )
    .await;
    assert_problem(
        app.post(
            &app.clinic_path(&format!("/exports/{export}/send")),
            &app.inspector,
            &json!({"to": "inspector@council.example"}),
        )
        .await,
        403,
        None,
    )
    .await;
    // Another clinic's owner sees nothing of this clinic's mail.
    common::assert_foreign_looks_missing(
        &app,
        &[
            (Method::GET, "/mail".to_owned(), Value::Null),
            (Method::GET, "/mail/settings".to_owned(), Value::Null),
            (
                Method::PUT,
                "/mail/settings".to_owned(),
                json!({"recipients": []}),
            ),
            (
                Method::POST,
                format!("/exports/{export}/send"),
                json!({"to": "inspector@council.example"}),
            ),
        ],
    )
    .await;
}

#[actix_web::test]
async fn racing_workers_never_send_a_message_twice() {
    let smtp = Smtp::start();
    let app = with_smtp(smtp.port).await;
    for i in 0..40 {
        queue(
            &app,
            "reminder",
            &format!("owner{i}@ink.example"),
            &format!("message {i}"),
            None,
        );
    }
    // Four more workers besides the service's own, each claiming batches until nothing is due.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let mailer = mailer(&app);
            std::thread::spawn(move || {
                let mut handled = 0;
                for _ in 0..50 {
                    handled += mailer.deliver_due().unwrap();
                }
                handled
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let all = settled(&app).await;
    assert_eq!(all.len(), 40);
    assert!(
        all.iter()
            .all(|m| m["state"] == "sent" && m["attempts"] == 1),
        "{all:?}"
    );
    let mut to: Vec<String> = smtp.messages().iter().flat_map(|r| r.to.clone()).collect();
    assert_eq!(to.len(), 40, "40 deliveries, none twice");
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 40);
}

#[actix_web::test]
async fn a_message_still_undelivered_after_the_retry_period_is_marked_failed() {
    let reserved = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let app = TestApp::spawn_with(|s| {
        s.mail.url = Secret::new(format!("smtp://127.0.0.1:{port}"));
        s.mail.give_up_after_hours = 96;
    })
    .await;
    let young = queue(
        &app,
        "reminder",
        "owner@ink.example",
        "queued just now",
        None,
    );
    let old = queue(
        &app,
        "reminder",
        "owner@ink.example",
        "queued four days ago",
        None,
    );
    // Age one message past the four days (the clock cannot be wound on in a black-box test).
    let older = if common::is_postgres() {
        "created_at - INTERVAL '4 days'"
    } else {
        "datetime(created_at, '-4 days')"
    };
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE mail_outbox SET created_at = {older} WHERE id = '{old}'"
        ))
        .unwrap();
    let mut states = (Value::Null, Value::Null);
    for _ in 0..200 {
        let all = mail(&app).await;
        let find = |id: &str| all.iter().find(|m| m["id"] == id).unwrap().clone();
        states = (find(&young), find(&old));
        if states.1["state"] == "failed" && states.0["attempts"].as_i64().unwrap() >= 1 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(states.1["state"], "failed", "{:?}", states.1);
    assert!(!states.1["last_error"].is_null());
    assert_eq!(
        states.0["state"], "pending",
        "the young one is still retried: {:?}",
        states.0
    );
    let view = ok(app.get(&app.clinic_path("/compliance"), &app.owner).await).await;
    assert!(view["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "mail_delivery"
            && f["message"].as_str().unwrap().contains("four days ago")));
}

#[actix_web::test]
async fn a_message_that_cannot_be_prepared_is_retried_and_holds_up_no_other() {
    let app = TestApp::spawn().await;
    let export = ready_export(&app).await;
    // The export's file is lost (a disk replaced, say): its summary cannot carry the report.
    std::fs::remove_file(aseptic::exports::usecases::file_path(
        &app.settings.exports.dir,
        &app.clinic_id,
        &export,
    ))
    .unwrap();
    let to = "inspector@council.example";
    let poisoned = queue(
        &app,
        "summary",
        to,
        "with a lost report",
        Some(export.clone()),
    );
    let plain = queue(&app, "summary", to, "plain", None);
    let mut seen = (Value::Null, Value::Null);
    for _ in 0..200 {
        let all = mail(&app).await;
        let find = |id: &str| all.iter().find(|m| m["id"] == id).unwrap().clone();
        seen = (find(&poisoned), find(&plain));
        if seen.1["state"] == "sent" && seen.0["attempts"].as_i64().unwrap() >= 1 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(seen.1["state"], "sent", "{:?}", seen.1);
    assert_eq!(seen.0["state"], "pending", "{:?}", seen.0);
    assert!(!seen.0["last_error"].is_null(), "{:?}", seen.0);
}
