//! The real `aseptic` binary: migrate, create-clinic, serve, and refusing bad configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_aseptic");

fn aseptic(dir: &Path, database_url: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(dir)
        .env(
            "ASEPTIC_CONFIG_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        )
        .env("ASEPTIC_ENV", "test")
        .stdin(Stdio::null());
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `aseptic create-clinic` for owner@ink.example with this password and time zone.
fn create_clinic(dir: &Path, url: &str, password: &str, timezone: &str) -> Output {
    aseptic(dir, Some(url))
        .env("ASEPTIC_OWNER_PASSWORD", password)
        .args([
            "create-clinic",
            "--name",
            "Ink & Needle",
            "--timezone",
            timezone,
        ])
        .args([
            "--jurisdiction",
            "gb-eng",
            "--owner-email",
            "owner@ink.example",
        ])
        .output()
        .unwrap()
}

#[test]
fn migrate_creates_the_default_sqlite_file_and_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let first = aseptic(dir.path(), None).arg("migrate").output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("applied 20261125000001"),
        "{}",
        text(&first)
    );
    assert!(
        dir.path().join("data/aseptic.db").is_file(),
        "the default database is a file under data/"
    );
    let second = aseptic(dir.path(), None).arg("migrate").output().unwrap();
    assert!(text(&second).contains("up to date"), "{}", text(&second));
}

#[test]
fn an_unknown_database_scheme_is_an_error_not_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = aseptic(dir.path(), Some("mysql://root@localhost/aseptic"))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unsupported database URL scheme \"mysql\""),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was created"
    );
}

#[test]
fn an_unreachable_postgres_is_reported_at_once_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = aseptic(dir.path(), Some("postgres://nobody@127.0.0.1:1/none"))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains("cannot connect to the database"),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("connection refused"),
        "the real cause: {message}"
    );
    // Not a timed assertion on our speed: r2d2 would have waited its whole time-out (30 s).
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn production_refuses_the_development_secret_and_never_prints_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = aseptic(dir.path(), None)
        .env("ASEPTIC_ENV", "production")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("development JWT secret"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("aseptic-development-secret"));

    let out = aseptic(
        dir.path(),
        Some("postgres://admin:hunter2-secret@127.0.0.1:1/x"),
    )
    .env("ASEPTIC_ENV", "production")
    .env(
        "ASEPTIC__AUTH__JWT_SECRET",
        "a-real-production-secret-of-enough-length",
    )
    .arg("migrate")
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("export signing key"), "{}", text(&out));
    assert!(!text(&out).contains("a-real-production-secret"));
    assert!(!text(&out).contains("hunter2-secret"));
}

#[test]
fn create_clinic_validates_its_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let bad_zone = create_clinic(dir.path(), &url, common::PASSWORD, "Mars/Base");
    assert!(!bad_zone.status.success());
    assert!(
        text(&bad_zone).contains("--timezone"),
        "{}",
        text(&bad_zone)
    );
    let weak = create_clinic(dir.path(), &url, "short", "Europe/London");
    assert!(!weak.status.success());
    assert!(
        text(&weak).contains("at least 12 characters"),
        "{}",
        text(&weak)
    );
}

/// The whole path a newcomer takes: create a clinic, serve, log in, read the audit chain, stop.
#[actix_web::test]
async fn create_clinic_then_serve_log_in_and_stop_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (url, postgres) = common::fresh_database(dir.path());
    let created = create_clinic(dir.path(), &url, common::PASSWORD, "Europe/London");
    assert!(created.status.success(), "{}", text(&created));
    let stdout = String::from_utf8(created.stdout).unwrap();
    let clinic_id = stdout.lines().last().unwrap().trim().to_owned();
    assert!(
        uuid::Uuid::parse_str(&clinic_id).is_ok(),
        "last line is the id: {stdout}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = aseptic(dir.path(), Some(&url))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server answers /healthz");

    let tokens: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "owner@ink.example", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let events: Value = client
        .get(format!("{base}/api/v1/clinics/{clinic_id}/audit/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["clinic.created", "member.added", "checklist.created"]
    );

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server stops after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "a graceful stop exits 0: {status:?}");

    // An existing account can own a second clinic without a new password.
    let second = aseptic(dir.path(), Some(&url))
        .args([
            "create-clinic",
            "--name",
            "Second",
            "--timezone",
            "America/Los_Angeles",
        ])
        .args([
            "--jurisdiction",
            "us-ca",
            "--owner-email",
            "owner@ink.example",
        ])
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", text(&second));
    if let Some((admin, name)) = postgres {
        common::drop_database(&admin, &name);
    }
}

#[test]
fn a_malformed_jurisdiction_profile_stops_start_up_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("jurisdictions")).unwrap();
    std::fs::write(
        config.join("jurisdictions/xx-broken.toml"),
        "name = \"Broken\"\nextends = \"baseline\"\n[incident_report_working_days]\nvalue = \"five\"\nsource = \"x\"\n",
    )
    .unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let out = aseptic(dir.path(), Some(&url))
        .env("ASEPTIC_CONFIG_DIR", &config)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = text(&out);
    assert!(message.contains("xx-broken.toml"), "{message}");
    assert!(
        message.contains("incident_report_working_days.value"),
        "{message}"
    );
}

#[test]
fn demo_creates_a_clinic_to_sign_in_to_and_can_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        aseptic(dir.path(), None)
            .args([
                "demo",
                "--months",
                "1",
                "--sessions-per-day",
                "2",
                "--cycles-per-day",
                "1",
            ])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", text(&first));
    let out = String::from_utf8_lossy(&first.stdout).to_string();
    for role in ["owner", "technician", "inspector"] {
        assert!(out.contains(&format!("  {role} ")), "{out}");
    }
    assert_eq!(out.matches("password: ").count(), 4, "{out}");
    let clinic = out.lines().last().unwrap();
    assert_eq!(clinic.len(), 36, "the clinic id is the last line: {out}");
    // A second demo clinic sits beside the first, with accounts of its own.
    let second = run();
    assert!(second.status.success(), "{}", text(&second));
    assert_ne!(
        String::from_utf8_lossy(&second.stdout)
            .lines()
            .last()
            .unwrap(),
        clinic
    );
    let bad = aseptic(dir.path(), None)
        .args(["demo", "--months", "0"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(text(&bad).contains("--months"), "{}", text(&bad));
}

#[test]
fn export_from_the_command_line_then_verify_it_with_the_installation_key() {
    let dir = tempfile::tempdir().unwrap();
    let demo = aseptic(dir.path(), None)
        .args([
            "demo",
            "--months",
            "1",
            "--sessions-per-day",
            "2",
            "--cycles-per-day",
            "1",
        ])
        .output()
        .unwrap();
    assert!(demo.status.success(), "{}", text(&demo));
    let clinic = String::from_utf8_lossy(&demo.stdout)
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Duration::days(20);
    let out = aseptic(dir.path(), None)
        .args([
            "export",
            "--clinic",
            &clinic,
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
            "--out",
            "month.zip",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        dir.path().join("data/export-key.pem").is_file(),
        "the key was created on first use"
    );
    let verified = aseptic(dir.path(), None)
        .args(["verify-export", "month.zip"])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).starts_with("valid: 17 files"),
        "{}",
        text(&verified)
    );
    let backwards = aseptic(dir.path(), None)
        .args([
            "export",
            "--clinic",
            &clinic,
            "--from",
            &to.to_string(),
            "--to",
            &from.to_string(),
            "--out",
            "x.zip",
        ])
        .output()
        .unwrap();
    assert!(!backwards.status.success());
    assert!(
        text(&backwards).contains("--to must be after from"),
        "{}",
        text(&backwards)
    );
}

/// The README's first command on a fresh machine: `serve` says where to sign in and how to get a
/// clinic; the demo clinic's printed accounts then sign in there.
#[actix_web::test]
async fn serve_says_where_to_sign_in_and_the_demo_accounts_sign_in_there() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let (url, postgres) = common::fresh_database(dir.path());
    /// Stops the server however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut server = Running(
        aseptic(dir.path(), Some(&url))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("aseptic create-clinic");
        printed.push(line);
        if done {
            break;
        }
    }
    let printed = printed.join("\n");
    let sign_in = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("Sign in:"))
        .map(|u| u.trim().to_owned())
        .unwrap_or_else(|| panic!("no sign-in address in:\n{printed}"));
    assert!(printed.contains("There is no clinic yet"), "{printed}");
    // No kept-alive connections: the demo below may outlast the server's keep-alive, and a
    // reused connection the server has closed fails the next request.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let page = client.get(&sign_in).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<h1>Sign in</h1>"));

    let demo = aseptic(dir.path(), Some(&url))
        .args([
            "demo",
            "--months",
            "1",
            "--sessions-per-day",
            "2",
            "--cycles-per-day",
            "2",
        ])
        .output()
        .unwrap();
    let out = text(&demo);
    assert!(demo.status.success(), "{out}");
    assert!(out.contains("sign in at http://"), "{out}");
    for role in ["owner", "technician", "inspector"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("  {role} ")))
            .unwrap_or_else(|| panic!("no {role} in:\n{out}"));
        let email = line.split_whitespace().find(|w| w.contains('@')).unwrap();
        let password = line.split("password: ").nth(1).unwrap().trim();
        let res = client
            .post(&sign_in)
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            303,
            "{role}: {}",
            res.text().await.unwrap_or_default()
        );
        let home = res.headers()["location"].to_str().unwrap().to_owned();
        let cookie = res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let page = client
            .get(sign_in.replace("/sign-in", &home))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{role} at {home}");
    }
    drop(server);
    if let Some((admin, name)) = postgres {
        common::drop_database(&admin, &name);
    }
}
