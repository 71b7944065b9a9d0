//! The pages in a real browser (headless Chromium) against the real `aseptic` binary, at a
//! tablet held upright (768×1024) and at a desk (1280×900): what a technician, an owner and an
//! inspector see and can do, and what the pages refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod driver;

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::common::{self, TestApp, PASSWORD};
use driver::Browser;

/// The two sizes every scenario runs at.
const SIZES: [(u32, u32); 2] = [(768, 1024), (1280, 900)];

/// One browser at a time: two headless Chromiums and the suite on two cores starve each other.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn created(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status == 201 || status == 200, "{status}: {body}");
    body
}

/// What the technician's morning needs, recorded through the API: a steriliser with a released
/// load and a failed one, a needle-cartridge lot with a GTIN and a pigment lot, a verified
/// technician, a client, and a session planned for now.
pub struct Morning {
    pub released_pack: String,
    pub quarantined_pack: String,
    pub session: String,
    pub steriliser: String,
}

pub async fn morning(app: &TestApp) -> Morning {
    let o = &app.owner;
    let steriliser = created(
        app.post(
            &app.clinic_path("/sterilisers"),
            o,
            &json!({"make": "W&H", "model": "Lisa 500", "serial_number": "LS-0042", "kind": "pre_vacuum"}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = common::load_time_hours_ago(6);
    common::qualify_steriliser(app, &steriliser, 1, started).await;
    let cycle = |number: i64, passed: bool, contents: &str| {
        json!({
            "steriliser_id": steriliser, "cycle_number": number,
            "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
            "started_at": (started + Duration::minutes(50 * (number - 2))).to_rfc3339(),
            "finished_at": (started + Duration::minutes(50 * (number - 2) + 40)).to_rfc3339(),
            "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
            "load_indicator": {"type": 5, "passed": passed},
            "packs": [{"contents": contents}]})
    };
    let released = created(
        app.post(
            &app.clinic_path("/cycles"),
            o,
            &cycle(2, true, "grips and tips"),
        )
        .await,
    )
    .await;
    let failed = created(
        app.post(
            &app.clinic_path("/cycles"),
            o,
            &cycle(3, false, "grips and tips"),
        )
        .await,
    )
    .await;
    for body in [
        json!({"kind": "needle_cartridge", "manufacturer": "Cheyenne", "product_name": "Craft", "gtin": "09506000134352",
        "lot_number": "ABC123", "expiry_date": (Utc::now() + Duration::days(300)).date_naive().to_string(),
        "sterilisation_method": "ethylene_oxide", "received_on": (Utc::now() - Duration::days(3)).date_naive().to_string(),
        "quantity_received": 20}),
        json!({"kind": "pigment", "manufacturer": "Scalp Ink Co", "product_name": "Dark Brown 3",
        "lot_number": "P-77", "expiry_date": (Utc::now() + Duration::days(400)).date_naive().to_string(),
        "sterilisation_method": "gamma", "received_on": (Utc::now() - Duration::days(3)).date_naive().to_string(),
        "quantity_received": 5}),
    ] {
        created(app.post(&app.clinic_path("/lots"), o, &body).await).await;
    }
    let tech = app.technician.user_id.clone();
    for body in [
        json!({"user_id": tech, "kind": "bloodborne_pathogen_training", "issued_on": (Utc::now() - Duration::days(30)).date_naive().to_string()}),
        json!({"user_id": tech, "kind": "hepatitis_b", "hepatitis_b_status": "vaccinated"}),
        json!({"user_id": tech, "kind": "licence", "number": "BA-1", "issued_on": "2025-01-01", "expires_on": (Utc::now() + Duration::days(200)).date_naive().to_string()}),
    ] {
        let id = created(app.post(&app.clinic_path("/credentials"), o, &body).await).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        created(
            app.post(
                &app.clinic_path(&format!("/credentials/{id}/verify")),
                o,
                &json!({}),
            )
            .await,
        )
        .await;
    }
    let client = created(
        app.post(
            &app.clinic_path("/clients"),
            &app.technician,
            &json!({"name": "Alex Client", "contact": "+44 7700 900123", "date_of_birth": "1990-04-02"}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = created(
        app.post(
            &app.clinic_path("/sessions"),
            &app.technician,
            &json!({"client_id": client, "station": "Chair 2",
                    "procedure": "SMP session 1 of 3, crown", "planned_at": Utc::now().to_rfc3339()}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Morning {
        released_pack: released["packs"][0]["code"].as_str().unwrap().to_owned(),
        quarantined_pack: failed["packs"][0]["code"].as_str().unwrap().to_owned(),
        session,
        steriliser,
    }
}

/// Signs in through the sign-in page.
pub async fn sign_in(b: &Browser, app: &TestApp, email: &str) {
    b.goto(&app.url("/sign-in")).await;
    b.type_into("#email", email).await;
    b.type_into("#password", PASSWORD).await;
    b.click("#sign-in button[type=submit]").await;
    b.find("header.top nav").await;
}

async fn no_serious_violations(b: &Browser, page: &str) {
    let found = b.accessibility_violations().await;
    assert!(found.is_empty(), "{page} at {} px: {found:#?}", b.width);
}

/// A technician signs in, opens today's session, ticks the checklist, scans a pack from a failed
/// load and reads the refusal in words, sets it aside, scans a released pack and a lot's GS1
/// code, starts and completes the session.
#[actix_web::test]
async fn a_technician_runs_a_session_at_the_station() {
    let _one = ONE_BROWSER.lock().await;
    for (width, height) in SIZES {
        let app = TestApp::spawn_binary().await;
        let m = morning(&app).await;
        let b = Browser::start(width, height).await;

        b.goto(&app.url("/")).await;
        assert!(b.url().await.contains("/sign-in"), "{}", b.url().await);
        no_serious_violations(&b, "sign-in").await;
        b.screenshot("sign-in").await;
        sign_in(&b, &app, "tech@ink.example").await;
        assert!(b.url().await.ends_with("/today"), "{}", b.url().await);
        b.wait_for_text("#eligibility", "You may work today").await;
        let today = b.text("#today-sessions").await;
        assert!(
            today.contains("Alex Client") && today.contains("Chair 2"),
            "{today}"
        );
        assert!(b
            .text("header.top")
            .await
            .contains("Times in Europe/London"));
        no_serious_violations(&b, "today").await;
        b.screenshot("today").await;

        b.click("#today-sessions a.button").await;
        let refusals = b.wait_for_text("#refusals", "is not answered").await;
        assert!(refusals.contains("Hands washed"), "{refusals}");

        // The checklist: one tap per tick item; the number and text items typed.
        let items: Vec<String> = b
            .script(
                "return [...document.querySelectorAll('ol.checklist li')].map(li => li.id.slice(5))",
                json!([]),
            )
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert!(items.len() >= 5, "{items:?}");
        for key in &items {
            let tick = format!("#item-{key} button.tick");
            if b.exists(&tick).await {
                b.click(&tick).await;
                b.find(&format!("#item-{key} button.tick[aria-pressed=true]"))
                    .await;
            } else {
                let value = match key.as_str() {
                    "contact_time" => "60\n",
                    "cartridge_lot" => "ABC123\n",
                    _ => "Mikrozid AF liquid\n",
                };
                b.type_into(&format!("#answer-{key}"), value).await;
                b.wait_for_text(&format!("#item-{key}"), "Done").await;
            }
        }

        // A pack from the failed load, scanned: refused in words naming the pack and the load.
        b.type_into("#pack-code", &format!("{}\n", m.quarantined_pack))
            .await;
        let refusals = b
            .wait_for_text("#refusals", &format!("Pack {}", m.quarantined_pack))
            .await;
        assert!(
            refusals.contains("load 3 of W&H Lisa 500 (LS-0042)")
                && refusals.contains("Do not use it; set it aside for reprocessing."),
            "{refusals}"
        );
        assert!(b.find("#start-session[disabled]").await.len() > 1);
        b.click(&format!("#set-aside-{}", m.quarantined_pack)).await;
        b.wait_for_text("#set-aside", &m.quarantined_pack).await;

        // A released pack and the lots, as a scanner types them.
        b.type_into(
            "#pack-code",
            &format!("{}\n", m.released_pack.to_lowercase()),
        )
        .await;
        b.wait_for_text("#packs", &m.released_pack).await;
        b.type_into("#lot-code", "(01)09506000134352(17)290101(10)ABC123\n")
            .await;
        b.wait_for_text("#lots", "lot ABC123").await;
        b.type_into("#lot-code", "P-77\n").await;
        b.wait_for_text("#lots", "lot P-77").await;
        b.wait_for_text("#readiness", "Yes: everything needed is recorded")
            .await;
        no_serious_violations(&b, "session").await;
        b.screenshot("session").await;

        b.click("#start-session").await;
        b.wait_for_text("#session-state", "In progress").await;
        b.type_into("#notes", "Aftercare sheet given").await;
        b.click("#complete-session").await;
        b.wait_for_text("#session-state", "Completed").await;

        // What the records say, through the API.
        let trace: Value = app
            .get(
                &app.clinic_path(&format!("/sessions/{}", m.session)),
                &app.owner,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(trace["status"], "completed", "{trace}");
        let packs: Vec<&str> = trace["packs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap())
            .collect();
        assert_eq!(packs, vec![m.released_pack.as_str()]);
        assert_eq!(
            trace["removed_packs"][0]["code"],
            m.quarantined_pack.as_str()
        );
        assert_eq!(trace["lots"].as_array().unwrap().len(), 2);
        assert_eq!(trace["completion"]["notes"], "Aftercare sheet given");
    }
}

/// A form posted without its CSRF token is refused with a page that says so and records nothing;
/// a session left idle returns to sign-in and, once signed in, to the page the person was on.
#[actix_web::test]
async fn forged_forms_are_refused_and_an_expired_session_comes_back_to_its_page() {
    let _one = ONE_BROWSER.lock().await;
    for (width, height) in SIZES {
        let app = TestApp::spawn_binary().await;
        let m = morning(&app).await;
        let b = Browser::start(width, height).await;
        sign_in(&b, &app, "tech@ink.example").await;
        let session_page = app.url(&format!(
            "/clinics/{}/sessions/{}",
            app.clinic_id, m.session
        ));
        b.goto(&session_page).await;
        b.find("#pack-code").await;

        // The pack form without its token (and without htmx, which would add the header).
        b.script(
            "const f = document.querySelector('form[action$=\"/packs\"]');\
             f.querySelector('input[name=csrf]').remove();\
             f.removeAttribute('hx-post');\
             f.querySelector('#pack-code').value = arguments[0];\
             f.submit();",
            json!([m.released_pack]),
        )
        .await;
        b.wait_for_text("h1", "This form has expired").await;
        let trace: Value = app
            .get(
                &app.clinic_path(&format!("/sessions/{}", m.session)),
                &app.owner,
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(trace["packs"].as_array().unwrap().is_empty(), "{trace}");

        // The same post from outside the browser, with its cookie but no token.
        let cookie = b.cookie("aseptic_session").await.unwrap();
        let res = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{session_page}/packs"))
            .header("cookie", format!("aseptic_session={cookie}"))
            .form(&[("code", m.released_pack.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let body = res.text().await.unwrap();
        assert!(
            body.contains("This form has expired") && !body.contains("{\""),
            "{body}"
        );

        // Idle past the limit: back to sign-in, then back to the session.
        {
            use diesel::connection::SimpleConnection;
            let mut conn = app.raw_connection();
            conn.batch_execute(if common::is_postgres() {
                "UPDATE browser_sessions SET last_seen_at = last_seen_at - INTERVAL '31 minutes'"
            } else {
                "UPDATE browser_sessions SET last_seen_at = datetime(last_seen_at, '-31 minutes')"
            })
            .unwrap();
        }
        b.goto(&session_page).await;
        b.wait_for_text("#sign-in", "You were signed out after a while")
            .await;
        assert!(
            b.url().await.contains("next=%2Fclinics%2F"),
            "{}",
            b.url().await
        );
        b.type_into("#email", "tech@ink.example").await;
        b.type_into("#password", PASSWORD).await;
        b.click("#sign-in button[type=submit]").await;
        b.find("#pack-code").await;
        assert_eq!(b.url().await, session_page);

        // Another clinic's record: a page that says so, not raw JSON or a trace.
        b.goto(&app.url(&format!(
            "/clinics/{}/sessions/{}",
            app.other_clinic_id, m.session
        )))
        .await;
        b.wait_for_text("h1", "Not found").await;
        let text = b.text("main").await;
        assert!(
            text.contains("No such clinic, or you are not a member of it"),
            "{text}"
        );
    }
}
