//! The service as an operator runs it: security headers, private files, a metrics endpoint that
//! is not public, and a database that stalls, drops connections, is damaged or read-only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use aseptic::config::Secret;
use common::{assert_problem, is_postgres, test_settings, TestApp};
use serde_json::{json, Value};

#[actix_web::test]
async fn every_response_carries_security_headers_and_authenticated_ones_are_not_stored() {
    let app = TestApp::spawn().await;
    let anonymous = app.client.get(app.url("/healthz")).send().await.unwrap();
    let me = app.get("/api/v1/me", &app.owner).await;
    let missing = app.get(&app.clinic_path("/clients/nope"), &app.owner).await;
    let export_key = app
        .client
        .get(app.url("/.well-known/aseptic/export-key"))
        .send()
        .await
        .unwrap();
    for res in [&anonymous, &me, &missing, &export_key] {
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    }
    for res in [&me, &missing] {
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
    let docs = app.client.get(app.url("/api/docs/")).send().await.unwrap();
    let csp = docs.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        !csp.contains("http"),
        "the docs page reaches no other host: {csp}"
    );
    let init = app
        .client
        .get(app.url("/api/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        init.contains("\"validatorUrl\": \"none\""),
        "Swagger UI's online validator is off: {init}"
    );
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The data folder, the database, export zips, mailed invitations and the signing key are
/// readable by the service's own user only.
#[cfg(unix)]
#[actix_web::test]
async fn data_files_are_readable_by_the_service_only() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    let data_for_settings = data.clone();
    let app = TestApp::spawn_with(move |s| {
        if !is_postgres() {
            s.database.url = Secret::new(format!(
                "sqlite://{}",
                data_for_settings.join("aseptic.db").display()
            ));
        }
        s.exports.signing_key_path = data_for_settings
            .join("export-key.pem")
            .display()
            .to_string();
        s.exports.dir = data_for_settings.join("exports").display().to_string();
        s.mail.url = Secret::new(format!(
            "file://{}",
            data_for_settings.join("outbox").display()
        ));
    })
    .await;
    let res = app
        .post(
            &app.clinic_path("/members"),
            &app.owner,
            &json!({"email": "new@ink.example", "role": "technician"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let from = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let to = chrono::Utc::now().to_rfc3339();
    let res = app
        .post(
            &app.clinic_path("/exports"),
            &app.owner,
            &json!({"from": from, "to": to}),
        )
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let mut checked = 0;
    for _ in 0..200 {
        let zips = std::fs::read_dir(data.join("exports"))
            .map(|d| d.flatten().count())
            .unwrap_or(0);
        let mails = std::fs::read_dir(data.join("outbox"))
            .map(|d| d.flatten().count())
            .unwrap_or(0);
        if zips > 0 && mails > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "key, export and mail at least: {checked}");
}

/// `/metrics` is not public: on the main listener only with its token, and on its own listener
/// (loopback by default) without one.
#[actix_web::test]
async fn metrics_answer_on_their_own_listener_or_with_a_token_only() {
    let app = TestApp::spawn().await;
    assert_problem(
        app.client.get(app.url("/metrics")).send().await.unwrap(),
        404,
        None,
    )
    .await;

    let app = TestApp::spawn_with(|s| {
        s.metrics.token = Some(Secret::new("a metrics token of some length"));
        s.metrics.bind = "127.0.0.1:0".into();
    })
    .await;
    app.get("/api/v1/me", &app.owner).await;
    let anonymous = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_problem(anonymous, 401, None).await;
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("a metrics token of some lengtH")
        .send()
        .await
        .unwrap();
    assert_problem(wrong, 401, None).await;
    let right = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("a metrics token of some length")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("http_requests_total{"));
    let own = app.metrics_addr.expect("a metrics listener");
    assert!(own.ip().is_loopback());
    let text = app
        .client
        .get(format!("http://{own}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("route=\"/api/v1/me\""), "{text}");
}

/// Runs `f` on its own thread and fails the test, instead of hanging it, if it takes too long.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("it hung")
}

/// A database server that accepts and never answers: start-up gives up with a clear message
/// instead of hanging, and leaves no signing key behind.
#[actix_web::test]
async fn a_database_that_never_answers_stops_the_start_with_a_message() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("export-key.pem");
    let mut settings = test_settings(&format!("postgres://postgres@127.0.0.1:{port}/aseptic"));
    settings.database.connect_timeout_secs = 1;
    settings.exports.signing_key_path = key.display().to_string();
    let outcome = within(Duration::from_secs(30), move || {
        aseptic::Application::build(settings, Some("127.0.0.1:0")).map(|_| ())
    });
    let message = outcome.unwrap_err().to_string();
    assert!(message.contains("database"), "{message}");
    assert!(!key.exists(), "no key file for a start that failed");
}

/// A damaged SQLite file is refused at start-up, with the reason.
#[actix_web::test]
async fn a_damaged_sqlite_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aseptic.db");
    let url = format!("sqlite://{}", file.display());
    let mut settings = test_settings(&url);
    settings.exports.signing_key_path = dir.path().join("k.pem").display().to_string();
    {
        let pool = aseptic::open_database(&settings).unwrap();
        common::create_clinic(&pool, "Damaged", "o@damaged.example", "baseline");
    }
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 20 * 4096);
    for b in &mut bytes[8 * 4096..16 * 4096] {
        *b = 0x5a;
    }
    std::fs::write(&file, bytes).unwrap();
    let message = aseptic::Application::build(settings, Some("127.0.0.1:0"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(message.contains("damaged"), "{message}");
}

/// A SQLite file the service may read but not write: it refuses to start and says why, rather
/// than reporting ready and failing every write. Run as an unprivileged user, as a deployment
/// would (root writes any file).
#[cfg(unix)]
#[actix_web::test]
async fn a_read_only_sqlite_file_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.path().join("aseptic.db");
    let settings = test_settings(&format!("sqlite://{}", file.display()));
    drop(aseptic::open_database(&settings).unwrap());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = as_unprivileged_user(work.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", format!("sqlite://{}", file.display()))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("the database cannot be written"), "{text}");
}

/// The `aseptic` binary, run from `work` as an unprivileged user when the tests run as root
/// (whose writes no file mode stops), as a deployment runs it. The binary and the configuration
/// are linked or copied into `work` first: the checkout may sit below a folder that user cannot
/// enter.
fn as_unprivileged_user(work: &Path) -> Command {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o777)).unwrap();
    let binary = work.join("aseptic");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_aseptic"), &binary).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_aseptic"), &binary).unwrap();
    }
    let config = work.join("config");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for sub in ["", "jurisdictions"] {
        std::fs::create_dir_all(config.join(sub)).unwrap();
        for entry in std::fs::read_dir(source.join(sub)).unwrap().flatten() {
            if entry.path().is_file() {
                std::fs::copy(entry.path(), config.join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    let mut c = if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&binary);
        c
    } else {
        Command::new(&binary)
    };
    c.env_clear()
        .current_dir(work)
        .env("ASEPTIC_CONFIG_DIR", &config)
        .env("ASEPTIC_ENV", "test")
        .stdin(Stdio::null());
    c
}

/// Whether this process runs as root.
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The service gathers SQLite's planner statistics itself: a clinic's database written only
/// through the service has them after a start.
#[actix_web::test]
async fn sqlite_planner_statistics_are_gathered_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aseptic.db");
    let mut settings = test_settings(&format!("sqlite://{}", file.display()));
    settings.exports.signing_key_path = dir.path().join("k.pem").display().to_string();
    {
        let pool = aseptic::open_database(&settings).unwrap();
        common::create_clinic(&pool, "Stats", "o@stats.example", "baseline");
        let mut conn = pool.get().unwrap();
        use diesel::connection::SimpleConnection;
        conn.batch_execute("DELETE FROM sqlite_stat1").unwrap();
    }
    drop(aseptic::Application::build(settings, Some("127.0.0.1:0")).unwrap());
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = diesel::SqliteConnection::establish(&file.display().to_string()).unwrap();
    // The service's background work (the mail worker, say) may still hold the write lock for a
    // moment after the application is dropped: wait for it as the service's own connections do.
    diesel::connection::SimpleConnection::batch_execute(&mut conn, "PRAGMA busy_timeout = 10000")
        .unwrap();
    let n = diesel::sql_query("SELECT COUNT(*) AS n FROM sqlite_stat1")
        .get_result::<N>(&mut conn)
        .unwrap()
        .n;
    assert!(n > 0, "sqlite_stat1 has rows");
}

/// PostgreSQL behind a link that stalls and then drops: requests answer 503 with Retry-After
/// within the configured time instead of hanging, /readyz says so, nothing half-done is
/// acknowledged, and the service recovers when the database does.
#[actix_web::test]
async fn a_stalled_or_dropped_database_gives_503_and_the_service_recovers() {
    if !is_postgres() {
        return;
    }
    let (app, proxy) = TestApp::spawn_through_proxy(|s| {
        s.database.statement_timeout_secs = 2;
        s.database.ready_timeout_secs = 1;
        s.database.acquire_timeout_secs = 1;
    })
    .await;
    // Another service started later in the same process, with the default 30 s, keeps its own
    // limit and leaves this one's alone.
    let _neighbour = TestApp::spawn().await;
    let slow = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let ready = |c: &reqwest::Client| c.get(app.url("/readyz")).send();
    assert_eq!(ready(&slow).await.unwrap().status(), 200);

    proxy.stall(true);
    let res = slow
        .get(app.url("/api/v1/me"))
        .bearer_auth(&app.owner.token)
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, None).await;
    let res = ready(&slow).await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, None).await;
    // A retry-safe write takes its connection before anything else: that wait is bounded too.
    let res = slow
        .post(app.url(&app.clinic_path("/clients")))
        .bearer_auth(&app.owner.token)
        .header("Idempotency-Key", "stalled-write")
        .json(&json!({"name": "Stella Stalled", "contact": "x", "date_of_birth": "1990-01-01"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 503, None).await;

    // A write whose connection drops mid-way is 503 (retry), never 500, and is not kept.
    let write = slow
        .post(app.url(&app.clinic_path("/clients")))
        .bearer_auth(&app.owner.token)
        .json(&json!({"name": "Dee Dropped", "contact": "x", "date_of_birth": "1990-01-01"}))
        .send();
    let cut = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.cut();
    };
    let (res, ()) = futures_util::future::join(write, cut).await;
    assert_problem(res.unwrap(), 503, None).await;
    proxy.stall(false);

    let mut recovered = false;
    for _ in 0..100 {
        if ready(&slow)
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "ready again once the database answers");
    let res = app
        .post(
            &app.clinic_path("/clients"),
            &app.owner,
            &json!({"name": "Eve After", "contact": "x", "date_of_birth": "1990-01-01"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let list: Value = app
        .get(&app.clinic_path("/clients?limit=500"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(!names.contains(&"Dee Dropped"), "{names:?}");
    assert!(!names.contains(&"Stella Stalled"), "{names:?}");
}

/// `/readyz` reflects a database file that can no longer be written.
#[cfg(unix)]
#[actix_web::test]
async fn readiness_fails_when_the_database_file_turns_read_only() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = as_unprivileged_user(work.path())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", "sqlite://data/aseptic.db")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let ready = || async {
        client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let mut up = false;
    for _ in 0..200 {
        if ready().await == 200 {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let file = work.path().join("data/aseptic.db");
    let outcome = async {
        assert!(up, "the service started");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
        let read_only = ready().await;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let again = ready().await;
        (read_only, again)
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(outcome, (503, 200));
}

/// `docker compose up --build` can work as written: the Dockerfile copies everything the build
/// reads (Cargo.toml's targets and every file the binary embeds), the service's data lives on a
/// volume, and the image and compose both check readiness. `docker compose config` checks the
/// file too where the compose plugin exists.
#[test]
fn the_container_build_copies_what_the_build_needs_and_keeps_its_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let copied: Vec<String> = dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().skip(1).collect();
            parts[..parts.len() - 1]
                .iter()
                .map(|p| p.trim_end_matches('/').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let covered = |path: &str| {
        copied
            .iter()
            .any(|c| path == c || path.starts_with(&format!("{c}/")))
    };
    let mut needed = vec![
        "Cargo.toml".to_owned(),
        "Cargo.lock".to_owned(),
        "build.rs".to_owned(),
    ];
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    for bench in manifest
        .get("bench")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
    {
        let name = bench["name"].as_str().unwrap();
        needed.push(format!("benches/{name}.rs"));
    }
    // Every file the sources embed, resolved from the file that names it.
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (macro_name, base) in [
                ("include_str!(\"", path.parent().unwrap().to_path_buf()),
                ("embed_migrations!(\"", root.to_path_buf()),
            ] {
                for rest in text.split(macro_name).skip(1) {
                    let target = rest.split('"').next().unwrap();
                    let full = base.join(target).canonicalize().unwrap();
                    needed.push(full.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
    }
    for path in &needed {
        assert!(covered(path), "the Dockerfile does not copy {path}");
    }
    assert!(
        dockerfile.contains("HEALTHCHECK"),
        "the image checks its readiness"
    );
    assert!(dockerfile.contains("VOLUME [\"/var/lib/aseptic\"]"));

    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    assert!(
        compose.contains(":/var/lib/aseptic"),
        "the data directory is on a volume"
    );
    assert!(
        compose.contains("check-ready"),
        "compose checks the service's health"
    );
    assert!(
        !compose.contains("./secrets/"),
        "no host file the container's user may not read"
    );
    if Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let out = Command::new("docker")
            .args(["compose", "-f", "docker-compose.yml", "config", "--quiet"])
            .current_dir(root)
            .env("ASEPTIC_JWT_SECRET", "x".repeat(64))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The health check the image runs: 0 when the service is ready, not 0 when nothing answers.
#[actix_web::test]
async fn check_ready_reports_a_running_service_and_a_missing_one() {
    let app = TestApp::spawn().await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let run = |address: String| {
        within(Duration::from_secs(30), move || {
            Command::new(env!("CARGO_BIN_EXE_aseptic"))
                .args(["check-ready", "--address", &address])
                .env_clear()
                .env(
                    "ASEPTIC_CONFIG_DIR",
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
                )
                .env("ASEPTIC_ENV", "test")
                .output()
                .unwrap()
        })
    };
    let up = actix_web::rt::task::spawn_blocking(move || run(address))
        .await
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = run(closed.to_string());
    assert!(!down.status.success());
}
