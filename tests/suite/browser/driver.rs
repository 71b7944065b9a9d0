//! A small W3C WebDriver client over Debian's `chromedriver` and headless `chromium`: enough to
//! sign in, tap, type, scan (type and press Enter), read what a person sees, take screenshots and
//! run axe-core.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long to wait for something a person would wait for (a page, a partial update).
const PATIENCE: Duration = Duration::from_secs(20);

/// One browser at one window size, driven by its own chromedriver on a free port.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    profile: tempfile::TempDir,
    pub width: u32,
}

impl Drop for Browser {
    /// Ends the browser session, so chromedriver closes Chromium and every process it started,
    /// then stops chromedriver. Killing chromedriver alone leaves Chromium running: a suite's
    /// worth of them fills the machine's memory.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let address = self.base.trim_start_matches("http://").to_owned();
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    pub async fn start(width: u32, height: u32) -> Self {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "the browser tests need Debian's chromium and chromium-driver \
             (apt-get install chromium chromium-driver); .ci/run installs them"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let res: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args, "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                }},
            }}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not start a session: {res}"))
            .to_owned();
        let browser = Self {
            http,
            base,
            session,
            driver,
            profile,
            width,
        };
        browser
            .post(
                "/goog/cdp/execute",
                json!({"cmd": "Browser.setDownloadBehavior",
                       "params": {"behavior": "allow", "downloadPath": downloads.display().to_string()}}),
            )
            .await;
        browser
    }

    /// A file the browser has finished downloading whose name starts with `prefix`.
    pub async fn downloaded(&self, prefix: &str) -> PathBuf {
        let dir = self.profile.path().join("downloads");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let found = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    name.starts_with(prefix) && !name.ends_with(".crdownload")
                });
            if let Some(path) = found {
                return path;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing named {prefix}* was downloaded"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res: Value = req.send().await.unwrap().json().await.unwrap();
        res["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        let v = self.post("/url", json!({"url": url})).await;
        assert!(v.is_null(), "navigate to {url}: {v}");
    }

    pub async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap().to_owned()
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    /// The element `css` names, waiting for it as a person would.
    pub async fn find(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(id) = self.try_find(css).await {
                return id;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no element {css} on {} after {PATIENCE:?}:\n{}",
                self.url().await,
                self.text("body").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.try_find(css).await.is_some()
    }

    pub async fn click(&self, css: &str) {
        // A page still being replaced by the last navigation leaves stale elements: find again.
        for _ in 0..50 {
            let id = self.find(css).await;
            let v = self.post(&format!("/element/{id}/click"), json!({})).await;
            if v.is_null() {
                return;
            }
            assert!(v["error"] == "stale element reference", "click {css}: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} stayed stale");
    }

    /// Clicks something that loads a new page (a form without htmx, a link), and waits until the
    /// new page has replaced the old one.
    pub async fn click_and_load(&self, css: &str) {
        self.script("window.__asepticOldPage = true", json!([]))
            .await;
        self.click(css).await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let gone = self
                .script(
                    "return window.__asepticOldPage === undefined && document.readyState === 'complete'",
                    json!([]),
                )
                .await;
            if gone == json!(true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "clicking {css} loaded no new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types into a field as a person or a barcode scanner would (`\n` presses Enter).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await;
        // Past any navigation still replacing the page.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        let text = text.replace('\n', "\u{E007}");
        let v = self
            .post(&format!("/element/{id}/value"), json!({"text": text}))
            .await;
        assert!(v.is_null(), "type into {css}: {v}");
    }

    /// The text a person reads in `css`.
    pub async fn text(&self, css: &str) -> String {
        match self.try_find(css).await {
            Some(id) => self
                .get(&format!("/element/{id}/text"))
                .await
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        }
    }

    /// Waits until `css` reads `wanted` (a partial update has landed).
    pub async fn wait_for_text(&self, css: &str, wanted: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = self.text(css).await;
            if text.contains(wanted) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} never read {wanted:?} on {}; the page reads:\n{}",
                self.url().await,
                self.text("body").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// A script's answer that is a list of strings.
    pub async fn strings(&self, script: &str) -> Vec<String> {
        let v = self.script(script, json!([])).await;
        v.as_array()
            .unwrap_or_else(|| panic!("{script} answered {v}"))
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub async fn cookie(&self, name: &str) -> Option<String> {
        let v = self.get(&format!("/cookie/{name}")).await;
        v["value"].as_str().map(str::to_owned)
    }

    /// A PNG of the whole page, `<name>-<width>.png`, into `target/screenshots/` on every SQLite
    /// run (the PostgreSQL pass would write the same files at once), and into the README's
    /// `docs/screenshots/` too with `ASEPTIC_SCREENSHOTS=update`: they change with every run
    /// (the times on them), so the repository takes them when someone means to.
    pub async fn screenshot(&self, name: &str) {
        if crate::common::is_postgres() {
            return;
        }
        use base64::Engine;
        // The whole page, not just the first screen: grow the window to the page's height.
        let height = self
            .script("return document.documentElement.scrollHeight", json!([]))
            .await
            .as_u64()
            .unwrap_or(900)
            .clamp(600, 4000);
        self.post(
            "/window/rect",
            json!({"width": self.width, "height": height}),
        )
        .await;
        self.script("window.scrollTo(0, 0)", json!([])).await;
        let png = self.get("/screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![root.join("target/screenshots")];
        if std::env::var("ASEPTIC_SCREENSHOTS").is_ok_and(|v| v == "update") {
            dirs.push(root.join("docs/screenshots"));
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}-{}.png", self.width)), &bytes).unwrap();
        }
    }

    /// axe-core's serious and critical violations on the current page. axe-core comes from the
    /// npm registry (`.ci/run` fetches it; `AXE_CORE_JS` names the file).
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let path = std::env::var("AXE_CORE_JS").unwrap_or_else(|_| {
            format!("{}/target/axe-core/axe.min.js", env!("CARGO_MANIFEST_DIR"))
        });
        let source = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "axe-core is not at {path}: run `npm pack axe-core@4` and unpack \
                 package/axe.min.js there (.ci/run does this)"
            )
        });
        self.script(&source, json!([])).await;
        let result = self
            .post(
                "/execute/async",
                json!({"script": "const done = arguments[arguments.length - 1];\
                    axe.run(document, {resultTypes: ['violations']})\
                    .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
                    .map(v => v.id + ': ' + v.help + ' (' + v.nodes.map(n => n.target.join(' ')).join(', ') + ')')))\
                    .catch(e => done(['axe failed: ' + e]));",
                    "args": []}),
            )
            .await;
        result
            .as_array()
            .unwrap_or_else(|| panic!("axe-core answered {result}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }
}
