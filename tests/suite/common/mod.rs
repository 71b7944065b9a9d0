//! `TestApp`: the real application on a free port over a fresh database — a new SQLite file, or a
//! new PostgreSQL database when `TEST_DATABASE_URL` names a server — with a clinic already set up
//! and helpers to act as its owner, technician and inspector, or as a user of another clinic.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod proxy;

use std::path::Path;

use aseptic::audit::AuditContext;
use aseptic::auth::{password, Role};
use aseptic::clinics::model::NewClinic;
use aseptic::clinics::usecases::{self as clinics, NewMember, OwnerAccount};
use aseptic::config::{Secret, Settings};
use aseptic::db::Pool;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery staple";

/// One person of a clinic, with a fresh access token.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

/// What serves a test: the application in this process, or the real `aseptic` binary.
enum Server {
    InProcess(actix_web::dev::ServerHandle),
    Binary(std::process::Child),
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: Pool,
    pub settings: Settings,
    pub database_url: String,
    /// The clinic the test works in.
    pub clinic_id: String,
    /// A second clinic, to prove isolation.
    pub other_clinic_id: String,
    pub owner: Actor,
    pub technician: Actor,
    pub inspector: Actor,
    pub other_owner: Actor,
    server: Server,
    /// The separate `/metrics` listener, when the settings ask for one.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

/// Another running `aseptic serve` beside a test's own (see [`TestApp::second_instance`]).
pub struct Instance {
    pub base: String,
    child: std::process::Child,
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Settings as the `test` environment reads them, pointed at `database_url`.
pub fn test_settings(database_url: &str) -> Settings {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load_from(&dir, "test", &[]).unwrap();
    settings.database.url = Secret::new(database_url);
    settings
}

/// A fresh, empty database: its URL, and for PostgreSQL the admin URL and name to drop it by.
pub fn fresh_database(dir: &Path) -> (String, Option<(String, String)>) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin) if admin.starts_with("postgres") => {
            let name = format!("aseptic_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = diesel::PgConnection::establish(&admin).expect("TEST_DATABASE_URL");
            conn.batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
            let (prefix, _) = admin
                .rsplit_once('/')
                .expect("TEST_DATABASE_URL has a database");
            let query = admin
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            (format!("{prefix}/{name}{query}"), Some((admin, name)))
        }
        _ => (
            format!("sqlite://{}", dir.join("aseptic.db").display()),
            None,
        ),
    }
}

/// Drops a database made by [`fresh_database`], ending any connection still open to it.
pub fn drop_database(admin_url: &str, name: &str) {
    if let Ok(mut conn) = diesel::PgConnection::establish(admin_url) {
        let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

pub fn is_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"))
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the app after `adjust` has changed its settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, postgres) = fresh_database(dir.path());
        let mut settings = test_settings(&database_url);
        settings.exports.signing_key_path = dir.path().join("export-key.pem").display().to_string();
        settings.exports.dir = dir.path().join("exports").display().to_string();
        settings.mail.url = Secret::new(format!("file://{}", dir.path().join("outbox").display()));
        adjust(&mut settings);
        let app = aseptic::Application::build(settings.clone(), Some("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", app.addr());
        let metrics_addr = app.metrics_addr();
        let handle = app.handle();
        actix_web::rt::spawn(app.run());
        Self::seeded(
            base,
            settings,
            database_url,
            Server::InProcess(handle),
            metrics_addr,
            dir,
            postgres,
        )
        .await
    }

    /// The app reaching PostgreSQL through a proxy the test can stall, cut or stop (PostgreSQL
    /// only).
    pub async fn spawn_through_proxy(adjust: impl FnOnce(&mut Settings)) -> (Self, proxy::Proxy) {
        // The server's host:port, as TEST_DATABASE_URL names it (postgres://user@host:port/db).
        let admin = std::env::var("TEST_DATABASE_URL").unwrap();
        let authority = admin
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(|a| a.rsplit('@').next().unwrap_or(a).to_owned())
            .unwrap();
        let address = if authority.contains(':') {
            authority.clone()
        } else {
            format!("{authority}:5432")
        };
        let upstream = std::net::ToSocketAddrs::to_socket_addrs(&address)
            .unwrap()
            .next()
            .unwrap();
        let proxy = proxy::Proxy::start(upstream);
        let via = proxy.addr;
        let app = Self::spawn_with(move |s| {
            let url =
                s.database
                    .url
                    .expose()
                    .replacen(&format!("{authority}/"), &format!("{via}/"), 1);
            assert!(
                url.contains(&via.to_string()),
                "the database is reached through the proxy"
            );
            s.database.url = Secret::new(url);
            adjust(s);
        })
        .await;
        (app, proxy)
    }

    /// The real `aseptic` binary serving on a free port over a fresh database, as a clinic runs
    /// it (the browser tests drive it).
    pub async fn spawn_binary() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, postgres) = fresh_database(dir.path());
        let mut settings = test_settings(&database_url);
        settings.exports.signing_key_path = dir.path().join("export-key.pem").display().to_string();
        settings.exports.dir = dir.path().join("exports").display().to_string();
        let outbox = format!("file://{}", dir.path().join("outbox").display());
        settings.mail.url = Secret::new(outbox);
        // Migrated before the binary starts, so seeding and the service agree on the schema.
        drop(aseptic::open_database(&settings).unwrap());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = launch(&settings, &database_url, port);
        let base = format!("http://127.0.0.1:{port}");
        wait_until_ready(&base).await;
        Self::seeded(
            base,
            settings,
            database_url,
            Server::Binary(child),
            None,
            dir,
            postgres,
        )
        .await
    }

    /// The two clinics and their people every test starts with.
    async fn seeded(
        base: String,
        settings: Settings,
        database_url: String,
        server: Server,
        metrics_addr: Option<std::net::SocketAddr>,
        dir: tempfile::TempDir,
        postgres: Option<(String, String)>,
    ) -> Self {
        let pool = aseptic::open_database(&settings).unwrap();

        let clinic_id = create_clinic(&pool, "Ink & Needle", "owner@ink.example", "baseline");
        let other_clinic_id = create_clinic(&pool, "Other Studio", "owner@other.example", "gb-eng");
        add_member(&pool, &clinic_id, "tech@ink.example", Role::Technician);
        add_member(
            &pool,
            &clinic_id,
            "inspector@council.example",
            Role::Inspector,
        );
        grant_inspector(&pool, &clinic_id, "inspector@council.example");

        // Idle connections are dropped before the server's keep-alive (5 s) closes them, so a
        // request after a pause never meets a connection closed under it.
        let client = reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap();
        let mut app = Self {
            base,
            client,
            pool,
            settings,
            database_url,
            clinic_id,
            other_clinic_id,
            owner: placeholder(),
            technician: placeholder(),
            inspector: placeholder(),
            other_owner: placeholder(),
            server,
            metrics_addr,
            dir,
            postgres,
        };
        app.owner = app.login_as("owner@ink.example").await;
        app.technician = app.login_as("tech@ink.example").await;
        app.inspector = app.login_as("inspector@council.example").await;
        app.other_owner = app.login_as("owner@other.example").await;
        app
    }

    /// Kills the binary with SIGKILL, as a power cut or the kernel's OOM killer would.
    pub fn kill(&mut self) {
        let Server::Binary(child) = &mut self.server else {
            panic!("only the binary can be killed");
        };
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Asks the binary to stop (SIGTERM, as systemd or Docker would) and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let Server::Binary(child) = &mut self.server else {
            panic!("only the binary can be terminated");
        };
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        child.wait().unwrap()
    }

    /// A second instance of the service on the same database and settings, as a chain of
    /// clinics runs several behind one load balancer. Stopped when dropped.
    pub async fn second_instance(&self) -> Instance {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = launch(&self.settings, &self.database_url, port);
        let base = format!("http://127.0.0.1:{port}");
        wait_until_ready(&base).await;
        Instance { base, child }
    }

    /// Starts the binary again on the same port and database, and waits until it is ready.
    pub async fn restart(&mut self) {
        let port: u16 = self.base.rsplit(':').next().unwrap().parse().unwrap();
        self.server = Server::Binary(launch(&self.settings, &self.database_url, port));
        wait_until_ready(&self.base).await;
        // Connections to the killed process are gone: start afresh.
        self.client = reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The installation's export-signing key as anyone fetches it (PEM).
    pub async fn export_key_pem(&self) -> String {
        self.client
            .get(self.url("/.well-known/aseptic/export-key?format=pem"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The same key, ready to verify an export with.
    pub async fn export_key(&self) -> ed25519_dalek::VerifyingKey {
        <ed25519_dalek::VerifyingKey as ed25519_dalek::pkcs8::DecodePublicKey>::from_public_key_pem(
            &self.export_key_pem().await,
        )
        .unwrap()
    }

    /// `/api/v1/clinics/{clinic}{rest}` for the test's clinic.
    pub fn clinic_path(&self, rest: &str) -> String {
        format!("/api/v1/clinics/{}{}", self.clinic_id, rest)
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    pub async fn login_as(&self, email: &str) -> Actor {
        self.login_with(email, PASSWORD).await
    }

    pub async fn login_with(&self, email: &str, password: &str) -> Actor {
        let res = self.login(email, password).await;
        assert_eq!(res.status(), StatusCode::OK, "login as {email}");
        let body: Value = res.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        let me: Value = self
            .client
            .get(self.url("/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Actor {
            user_id: me["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
            token,
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Signs in through the sign-in page as a browser would; the session cookie to send back.
    pub async fn sign_in_page(&self, email: &str, password: &str) -> String {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("email", email)
            .append_pair("password", password)
            .finish();
        let res = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(self.url("/sign-in"))
            .header("Origin", &self.base)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "sign in as {email}");
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|c| c.starts_with("aseptic_session="))
            .expect("a session cookie")
            .to_owned()
    }

    /// A page as a signed-in browser gets it: its status and HTML.
    pub async fn page(&self, path: &str, cookie: &str) -> (StatusCode, String) {
        let res = self
            .client
            .get(self.url(path))
            .header("Cookie", cookie)
            .header("Accept", "text/html")
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }

    pub fn request(&self, method: Method, path: &str, actor: &Actor) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&actor.token)
    }

    pub async fn get(&self, path: &str, actor: &Actor) -> Response {
        self.request(Method::GET, path, actor).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, actor: &Actor, body: &Value) -> Response {
        self.request(Method::POST, path, actor)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Every audit event of the test's clinic, read straight from the API as the owner.
    /// The OpenAPI document the service publishes.
    pub async fn openapi(&self) -> Value {
        self.client
            .get(self.url("/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every item of a list, page after page (`path` without `limit` or `cursor`).
    pub async fn all_items(&self, path: &str, actor: &Actor) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let join = if path.contains('?') { '&' } else { '?' };
        loop {
            let mut page_path = format!("{path}{join}limit=200");
            if let Some(c) = &cursor {
                page_path.push_str(&format!("&cursor={c}"));
            }
            let res = self.get(&page_path, actor).await;
            assert_eq!(res.status(), StatusCode::OK, "{page_path}");
            let page: Value = res.json().await.unwrap();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    /// Creates a client with an Idempotency-Key, as a client program retrying would; the id the
    /// service answers with (201 the first time, 200 replayed).
    pub async fn keyed_client(&self, key: &str, body: &Value) -> String {
        let res = self
            .request(Method::POST, &self.clinic_path("/clients"), &self.owner)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let answer: Value = res.json().await.unwrap();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{key}: {status} {answer}"
        );
        answer["id"].as_str().unwrap().to_owned()
    }

    /// The clinic's clients by name: the ids of every client of each name.
    pub async fn clients_by_name(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut by_name: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for c in self
            .all_items(&self.clinic_path("/clients"), &self.owner)
            .await
        {
            by_name
                .entry(c["name"].as_str().unwrap().to_owned())
                .or_default()
                .push(c["id"].as_str().unwrap().to_owned());
        }
        by_name
    }

    /// Waits (up to 10 s) until `/readyz` answers 200; whether it did.
    pub async fn until_ready(&self) -> bool {
        for _ in 0..100 {
            if self
                .client
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
            {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    }

    pub async fn audit_events(&self) -> Vec<Value> {
        let mut events = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = self.clinic_path("/audit/events?limit=500");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page: Value = self.get(&path, &self.owner).await.json().await.unwrap();
            events.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return events,
            }
        }
    }

    /// Adds a member through the store (as the command line would), returning their user id.
    pub fn add_member(&self, clinic_id: &str, email: &str, role: Role) -> String {
        add_member(&self.pool, clinic_id, email, role)
    }

    /// A raw connection to the app's database, for tests that tamper with it.
    pub fn raw_connection(&self) -> aseptic::db::PooledConn {
        self.pool.get().unwrap()
    }
}

fn placeholder() -> Actor {
    Actor {
        user_id: String::new(),
        email: String::new(),
        token: String::new(),
        refresh_token: String::new(),
    }
}

/// The `aseptic` binary serving `settings`' database on `port`, configured as an operator would
/// (environment variables only).
fn launch(settings: &Settings, database_url: &str, port: u16) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_aseptic"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "ASEPTIC_CONFIG_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        )
        .env("ASEPTIC_ENV", "test")
        .env("DATABASE_URL", database_url)
        .env(
            "ASEPTIC__EXPORTS__SIGNING_KEY_PATH",
            &settings.exports.signing_key_path,
        )
        .env("ASEPTIC__EXPORTS__DIR", &settings.exports.dir)
        .env("ASEPTIC__MAIL__URL", settings.mail.url.expose())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits (up to 30 s) until the service at `base` says it is ready.
async fn wait_until_ready(base: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the service at {base} did not become ready");
}

/// A 30-day inspection grant, as an owner would give it.
pub fn grant_inspector(pool: &Pool, clinic_id: &str, email: &str) {
    let mut conn = pool.get().unwrap();
    aseptic::inspectors::usecases::grant(
        &mut conn,
        &aseptic::audit::AuditContext::operator(),
        clinic_id,
        aseptic::inspectors::usecases::GrantInput {
            email: email.to_owned(),
            display_name: None,
            valid_from: None,
            valid_until: chrono::Utc::now() + chrono::Duration::days(30),
            purpose: Some("routine inspection".into()),
            client_details: false,
        },
        "http://127.0.0.1:8080",
    )
    .unwrap();
}

pub fn create_clinic(pool: &Pool, name: &str, owner_email: &str, jurisdiction: &str) -> String {
    let mut conn = pool.get().unwrap();
    let profiles = aseptic::jurisdiction::profiles::Profiles::load(Some(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config/jurisdictions"),
    ))
    .unwrap();
    let (clinic, _) = clinics::create_clinic(
        &mut conn,
        &AuditContext::operator(),
        &profiles,
        &NewClinic {
            name: name.into(),
            timezone: "Europe/London".into(),
            jurisdiction: jurisdiction.into(),
            address: None,
            registration_number: None,
            owner_works_on_clients: true,
        },
        owner_email,
        OwnerAccount::New {
            display_name: format!("Owner of {name}"),
            password_hash: password::hash(PASSWORD).unwrap(),
        },
    )
    .unwrap();
    clinic.id
}

pub fn add_member(pool: &Pool, clinic_id: &str, email: &str, role: Role) -> String {
    let mut conn = pool.get().unwrap();
    let (_, user) = clinics::add_member(
        &mut conn,
        &AuditContext::operator(),
        clinic_id,
        NewMember {
            email: email.into(),
            display_name: Some(email.split('@').next().unwrap().into()),
            role,
            works_on_clients: true,
            password_hash: Some(password::hash(PASSWORD).unwrap()),
        },
    )
    .unwrap();
    user.id
}

/// Asserts a problem document: status, content type, and (when given) the field it names.
pub async fn assert_problem(res: Response, status: u16, field: Option<&str>) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    assert!(
        res.headers().contains_key("x-request-id"),
        "x-request-id on every response"
    );
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"]
        .as_str()
        .unwrap()
        .starts_with("https://aseptic.dev/problems/"));
    assert!(!body["detail"].as_str().unwrap().is_empty());
    if let Some(field) = field {
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "expected field {field} in {body}");
    }
    body
}

/// Calls each route of the test's clinic as the other clinic's owner, once with this clinic's id
/// and once with a clinic that does not exist: both must answer 404 with the same problem, so
/// another clinic's records cannot even be told apart from missing ones.
pub async fn assert_foreign_looks_missing(app: &TestApp, routes: &[(Method, String, Value)]) {
    for (method, rest, body) in routes {
        let mut answers = Vec::new();
        for clinic in [
            app.clinic_id.as_str(),
            "01a00000-0000-7000-8000-000000000000",
        ] {
            let mut req = app.request(
                method.clone(),
                &format!("/api/v1/clinics/{clinic}{rest}"),
                &app.other_owner,
            );
            if !body.is_null() {
                req = req.json(body);
            }
            answers.push(assert_problem(req.send().await.unwrap(), 404, None).await);
        }
        assert_eq!(
            answers[0], answers[1],
            "{method} {rest}: foreign and missing must look alike"
        );
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        match &mut self.server {
            Server::InProcess(handle) => drop(handle.stop(false)),
            Server::Binary(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some((admin, name)) = &self.postgres {
            drop_database(admin, name);
        }
    }
}

/// The one-time token of the newest invitation mailed to `email`, read from the delivered
/// message as its recipient would (the outbox keeps no usable token once it is sent).
pub async fn mailed_invitation_token(app: &TestApp, email: &str) -> String {
    use aseptic::db::schema::mail_outbox;
    use diesel::prelude::*;
    for _ in 0..200 {
        let sent: Option<String> = mail_outbox::table
            .filter(mail_outbox::kind.eq("invitation"))
            .filter(mail_outbox::recipient.eq(email))
            .filter(mail_outbox::state.eq("sent"))
            .order(mail_outbox::created_at.desc())
            .select(mail_outbox::id)
            .first(&mut **app.raw_connection())
            .optional()
            .unwrap();
        if let Some(id) = sent {
            let eml =
                std::fs::read(app.dir.path().join("outbox").join(format!("{id}.eml"))).unwrap();
            let msg = mail_parser::MessageParser::default().parse(&eml).unwrap();
            let text = msg.body_text(0).unwrap().into_owned();
            let token = text
                .split("\"token\": \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no token in {text}"));
            return token.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no invitation was delivered to {email}");
}

/// Accepts an invitation as its recipient, with `password`.
pub async fn accept_invitation(app: &TestApp, token: &str, password: &str) -> Response {
    app.client
        .post(app.url("/api/v1/auth/invitations/accept"))
        .json(&json!({"token": token, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Waits for an export to be built and returns its state, which must be `ready`.
pub async fn built_export(app: &TestApp, id: &str) -> Value {
    let mut state = Value::Null;
    for _ in 0..200 {
        state = app
            .get(&app.clinic_path(&format!("/exports/{id}")), &app.owner)
            .await
            .json()
            .await
            .unwrap();
        if state["state"] != "building" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "ready", "{state}");
    state
}

/// A moment six hours ago, moved so that a minute before it is the same day in London (the test
/// clinics' zone): loads started then can be preceded by that day's air-removal test.
pub fn load_time_hours_ago(hours: i64) -> chrono::DateTime<chrono::Utc> {
    let t = chrono::Utc::now() - chrono::Duration::hours(hours);
    let london = t.with_timezone(&chrono_tz::Europe::London);
    if chrono::Timelike::hour(&london) == 0 && chrono::Timelike::minute(&london) < 5 {
        t + chrono::Duration::minutes(10)
    } else {
        t
    }
}

/// Makes a new steriliser fit to release a load started at `load_at`, as a clinic would: a
/// qualifying load two days before whose spore test read negative, and (for a pre-vacuum
/// steriliser) a passing air-removal test a minute before the load, the same day.
pub async fn qualify_steriliser(
    app: &TestApp,
    steriliser_id: &str,
    cycle_number: i64,
    load_at: chrono::DateTime<chrono::Utc>,
) {
    use chrono::Duration;
    let o = &app.owner;
    let started = load_at - Duration::days(2);
    let res = app
        .post(&app.clinic_path("/cycles"), o, &json!({
            "steriliser_id": steriliser_id, "cycle_number": cycle_number,
            "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
            "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(40)).to_rfc3339(),
            "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
            "load_indicator": {"type": 5, "passed": true}, "packs": []}))
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let cycle: Value = res.json().await.unwrap();
    let res = app
        .post(
            &app.clinic_path("/spore-tests"),
            o,
            &json!({
            "steriliser_id": steriliser_id, "cycle_id": cycle["id"], "bi_product": "Attest 1292",
            "bi_lot": "2026-07A", "placed_at": (started + Duration::minutes(1)).to_rfc3339(),
            "incubation": {"kind": "in_house", "hours": 24}}),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let test: Value = res.json().await.unwrap();
    let res = app
        .post(
            &app.clinic_path(&format!(
                "/spore-tests/{}/result",
                test["id"].as_str().unwrap()
            )),
            o,
            &json!({"result": "negative", "control_result": "growth",
                    "read_at": (started + Duration::hours(25)).to_rfc3339()}),
        )
        .await;
    assert!(
        res.status().is_success(),
        "{}",
        res.text().await.unwrap_or_default()
    );
    let res = app
        .post(&app.clinic_path("/air-removal-tests"), o, &json!({
            "steriliser_id": steriliser_id, "performed_at": (load_at - Duration::minutes(1)).to_rfc3339(),
            "test_type": "bowie_dick", "passed": true}))
        .await;
    // A gravity steriliser takes no air-removal test.
    assert!(
        res.status() == 201 || res.status() == 422,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

/// Records the three credentials a practitioner needs (training a month old, hepatitis B
/// vaccinated, a licence valid for 200 days) for `user_id` and has the owner verify each;
/// returns their ids.
pub async fn verified_credentials(app: &TestApp, user_id: &str) -> Vec<String> {
    use chrono::{Duration, Utc};
    let o = &app.owner;
    let mut ids = Vec::new();
    for body in [
        json!({"user_id": user_id, "kind": "bloodborne_pathogen_training", "issued_on": (Utc::now() - Duration::days(30)).date_naive().to_string()}),
        json!({"user_id": user_id, "kind": "hepatitis_b", "hepatitis_b_status": "vaccinated"}),
        json!({"user_id": user_id, "kind": "licence", "number": "BA-1", "issued_on": "2025-01-01", "expires_on": (Utc::now() + Duration::days(200)).date_naive().to_string()}),
    ] {
        let res = app.post(&app.clinic_path("/credentials"), o, &body).await;
        assert_eq!(res.status(), 201, "{body}");
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = app
            .post(
                &app.clinic_path(&format!("/credentials/{id}/verify")),
                o,
                &json!({}),
            )
            .await;
        assert!(res.status().is_success(), "verify {id}");
        ids.push(id);
    }
    ids
}

/// The text of an export's `report.pdf` as an inspector's PDF reader shows it (pdftotext, from
/// poppler-utils), one space between words whatever the layout: table cells wrap across lines.
pub fn report_text(zip: &[u8]) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut pdf = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("report.pdf").unwrap(), &mut pdf).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.pdf"), pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", "report.pdf", "-"])
        .current_dir(dir.path())
        .output()
        .expect("pdftotext (poppler-utils; .ci/run installs it)");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
