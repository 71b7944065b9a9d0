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
    common::verified_credentials(app, &app.technician.user_id).await;
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
    b.click_and_load("#sign-in button[type=submit]").await;
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

        b.click_and_load("#today-sessions a.button").await;
        let refusals = b.wait_for_text("#refusals", "is not answered").await;
        assert!(refusals.contains("Hands washed"), "{refusals}");

        // The checklist: one tap per tick item; the number and text items typed.
        let items = b
            .strings("return [...document.querySelectorAll('ol.checklist li')].map(li => li.id.slice(5))")
            .await;
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
        b.click_and_load(&format!("#set-aside-{}", m.quarantined_pack))
            .await;
        b.wait_for_text("#set-aside", &m.quarantined_pack).await;

        // A released pack and the lots, as a scanner types them.
        b.type_into(
            "#pack-code",
            &format!("{}\n", m.released_pack.to_lowercase()),
        )
        .await;
        b.wait_for_text("#packs", &m.released_pack).await;
        // A box of a lot nobody recorded: what its code says, and who can record it.
        b.type_into("#lot-code", "(01)09506000134352(17)290101(10)NEW-77\n")
            .await;
        let offer = b
            .wait_for_text("#new-lot", "not recorded in the clinic yet")
            .await;
        assert!(
            offer.contains("lot NEW-77") && offer.contains("Ask the clinic owner"),
            "{offer}"
        );
        b.type_into("#lot-code", "(01)09506000134352(17)290101(10)ABC123\n")
            .await;
        b.wait_for_text("#lots", "lot ABC123").await;
        b.type_into("#lot-code", "P-77\n").await;
        b.wait_for_text("#lots", "lot P-77").await;
        b.wait_for_text("#readiness", "Yes: everything needed is recorded")
            .await;
        no_serious_violations(&b, "session").await;
        b.screenshot("session").await;

        b.click_and_load("#start-session").await;
        b.wait_for_text("#session-state", "In progress").await;
        b.type_into("#notes", "Aftercare sheet given").await;
        b.click_and_load("#complete-session").await;
        b.wait_for_text("#session-state", "Completed").await;

        // Hurt while working: the incident form from the session, first aid first. A form
        // missing what a sharps injury needs comes back with each reason beside its field.
        b.click_and_load("a[href*='/incidents/new?session=']").await;
        b.wait_for_text(
            "#first-aid-heading",
            "If a needle or sharp has cut or pricked you",
        )
        .await;
        b.type_into("#description", "Pricked my finger taking the cartridge out")
            .await;
        b.click_and_load("#report-incident").await;
        b.wait_for_text("#device_type-error", "Is required").await;
        let kept = b
            .script(
                "return document.querySelector('#description').value",
                json!([]),
            )
            .await;
        assert_eq!(kept, "Pricked my finger taking the cartridge out");
        assert!(b
            .text("#immediate_actions-error")
            .await
            .contains("Is required"));
        b.type_into("#device_type", "needle cartridge, 3RL").await;
        b.type_into("#work_area", "treatment room").await;
        b.type_into(
            "#how_it_happened",
            "While removing the used cartridge from the machine",
        )
        .await;
        b.type_into(
            "#immediate_actions",
            "Washed under running water, covered, owner told",
        )
        .await;
        b.click_and_load("#report-incident").await;
        b.wait_for_text("#follow-ups-due", "Confidential medical evaluation")
            .await;

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

        // Another site's page posting the sign-in form (to sign this browser in as someone else).
        let res = reqwest::Client::new()
            .post(app.url("/sign-in"))
            .header("origin", "https://evil.example")
            .form(&[("email", "tech@ink.example"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert!(res.headers().get("set-cookie").is_none());

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
        b.click_and_load("#sign-in button[type=submit]").await;
        b.find("#pack-code").await;
        assert_eq!(b.url().await, session_page);

        // An address with no page: a page that says so.
        b.goto(&app.url(&format!("/clinics/{}/no-such-register", app.clinic_id)))
            .await;
        b.wait_for_text("main", "There is no page at this address")
            .await;

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

/// The technician's session of the morning, run through the API to its completion with the
/// released pack, after scanning the quarantined one and setting it aside; then a spore test in
/// a later load, not read yet.
async fn morning_worked(app: &TestApp, m: &Morning) -> String {
    let t = &app.technician;
    let s = |rest: &str| app.clinic_path(&format!("/sessions/{}{rest}", m.session));
    let session: Value = app.get(&s(""), t).await.json().await.unwrap();
    let lot_of = |kind: &'static str| async move {
        let lots: Value = app
            .get(&app.clinic_path(&format!("/lots?kind={kind}")), &app.owner)
            .await
            .json()
            .await
            .unwrap();
        lots["items"][0]["id"].as_str().unwrap().to_owned()
    };
    let cartridge = lot_of("needle_cartridge").await;
    let pigment = lot_of("pigment").await;
    let answers: Vec<Value> = session["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            let value = match line["key"].as_str().unwrap() {
                "cartridge_lot" => json!(cartridge),
                "surface_disinfectant" => json!("Mikrozid AF liquid"),
                "contact_time" => json!(60),
                _ => json!(true),
            };
            json!({"item_key": line["key"], "value": value})
        })
        .collect();
    created(
        app.post(&s("/answers"), t, &json!({"answers": answers}))
            .await,
    )
    .await;
    created(
        app.post(&s("/packs"), t, &json!({"code": m.quarantined_pack}))
            .await,
    )
    .await;
    created(
        app.post(
            &s("/pack-removals"),
            t,
            &json!({"code": m.quarantined_pack, "reason": "Its load failed: set aside for reprocessing"}),
        )
        .await,
    )
    .await;
    created(
        app.post(&s("/packs"), t, &json!({"code": m.released_pack}))
            .await,
    )
    .await;
    created(
        app.post(&s("/lots"), t, &json!({"lot_id": cartridge}))
            .await,
    )
    .await;
    created(app.post(&s("/lots"), t, &json!({"lot_id": pigment})).await).await;
    created(app.post(&s("/start"), t, &json!({})).await).await;
    created(app.post(&s("/complete"), t, &json!({})).await).await;
    // A later load with a spore test in it.
    let started = Utc::now() - Duration::hours(1);
    let load = created(
        app.post(
            &app.clinic_path("/cycles"),
            &app.owner,
            &json!({
                "steriliser_id": m.steriliser, "cycle_number": 4,
                "program": {"name": "134", "temperature_c": 134.0, "hold_minutes": 3.5},
                "started_at": started.to_rfc3339(), "finished_at": (started + Duration::minutes(40)).to_rfc3339(),
                "peak_temperature_c": 135.0, "peak_pressure_kpa": 313.0, "hold_minutes": 4.0,
                "load_indicator": {"type": 5, "passed": true}, "packs": []}),
        )
        .await,
    )
    .await;
    created(
        app.post(
            &app.clinic_path("/spore-tests"),
            &app.owner,
            &json!({"steriliser_id": m.steriliser, "cycle_id": load["id"], "bi_product": "Attest 1292",
                    "bi_lot": "2026-11B", "placed_at": (started + Duration::minutes(1)).to_rfc3339(),
                    "incubation": {"kind": "in_house", "hours": 24}}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An owner sees the pack set aside at the station, reads a spore test positive and then sees it
/// on the dashboard with the client to call, grants an inspector, asks for an export, downloads
/// it, and `aseptic verify-export` accepts the file.
#[actix_web::test]
async fn an_owner_prepares_for_an_inspection() {
    let _one = ONE_BROWSER.lock().await;
    for (width, height) in SIZES {
        let app = TestApp::spawn_binary().await;
        let m = morning(&app).await;
        let test_id = morning_worked(&app, &m).await;
        let b = Browser::start(width, height).await;
        sign_in(&b, &app, "owner@ink.example").await;
        assert!(b.url().await.ends_with("/dashboard"), "{}", b.url().await);
        b.wait_for_text("#set-aside-packs", &m.quarantined_pack)
            .await;
        no_serious_violations(&b, "dashboard").await;

        // The spore test, read positive.
        b.goto(&app.url(&format!("/clinics/{}/spore-tests", app.clinic_id)))
            .await;
        let form = format!("#read-{test_id}");
        b.click(&format!("{form} summary")).await;
        b.script(
            "document.querySelector(arguments[0] + ' select[name=result]').value = 'positive'",
            json!([form]),
        )
        .await;
        b.click_and_load(&format!("{form}-submit")).await;
        b.wait_for_text(&format!("#spore-test-{test_id}"), "positive")
            .await;

        // A retest posted to a laboratory: the deadline is required, then it is recorded.
        b.click("#new-spore-test summary").await;
        b.script(
            "document.querySelector('#new-spore-test-incubation-kind').value = 'mail_in';\
             document.querySelector('#new-spore-test-incubation-posted_on').value = arguments[0];",
            json!([Utc::now().date_naive().to_string()]),
        )
        .await;
        b.type_into("#new-spore-test-bi_product", "Attest 1292")
            .await;
        b.type_into("#new-spore-test-bi_lot", "2026-11C").await;
        b.type_into("#new-spore-test-incubation-lab_name", "North Lab")
            .await;
        b.click_and_load("#new-spore-test-submit").await;
        let refused = b.text("#new-spore-test").await;
        assert!(refused.contains("Is required"), "{refused}");
        b.script(
            "document.querySelector('#new-spore-test-incubation-lab_deadline').value = arguments[0];",
            json!([(Utc::now() + Duration::days(7)).date_naive().to_string()]),
        )
        .await;
        b.click_and_load("#new-spore-test-submit").await;
        b.wait_for_text("#spore-tests", "lot 2026-11C").await;

        b.goto(&app.url(&format!("/clinics/{}/dashboard", app.clinic_id)))
            .await;
        let failures = b
            .wait_for_text("#failures-heading + .card, .failure", "positive")
            .await;
        assert!(
            failures.contains("Alex Client") && failures.contains("+44 7700 900123"),
            "{failures}"
        );
        let blockers = b.text("#findings-bad").await;
        assert!(
            blockers.contains("quarantined after a positive spore test"),
            "{blockers}"
        );
        b.screenshot("dashboard").await;

        // The cycle log, with its form.
        b.goto(&app.url(&format!("/clinics/{}/cycles", app.clinic_id)))
            .await;
        b.find("#cycles").await;
        no_serious_violations(&b, "cycle log").await;
        b.screenshot("cycle-log").await;

        // A correction: refused without a reason (what was typed is kept), then recorded with
        // one, and the history shows both versions.
        b.click_and_load("#cycles a[href$='/amend']").await;
        b.type_into("#amend-peak_temperature_c", "135.5").await;
        b.click_and_load("#amend-submit").await;
        b.wait_for_text("#amend-reason-error", "Is required: say why")
            .await;
        let kept = b
            .script(
                "return document.querySelector('#amend-peak_temperature_c').value",
                json!([]),
            )
            .await;
        assert_eq!(kept, "135.5");
        b.type_into("#amend-reason", "The printout reads 135.5 °C; typed as 135")
            .await;
        b.click_and_load("#amend-submit").await;
        let history = b.wait_for_text("#history", "Version 2").await;
        assert!(
            history.contains("The printout reads 135.5")
                && history.contains("Highest temperature reached, °C: 135 → 135.5"),
            "{history}"
        );

        // A new client and a session planned for them.
        b.goto(&app.url(&format!("/clinics/{}/sessions", app.clinic_id)))
            .await;
        b.click("#new-client summary").await;
        b.type_into("#new-client-name", "Jordan Reyes").await;
        b.type_into("#new-client-contact", "jordan@example.com")
            .await;
        b.script(
            "document.querySelector('#new-client-date_of_birth').value = '1988-07-14'",
            json!([]),
        )
        .await;
        b.click_and_load("#new-client-submit").await;
        b.click("#new-session summary").await;
        b.script(
            "const s = document.querySelector('#new-session-client_id');\
             s.value = [...s.options].find(o => o.text.startsWith('Jordan Reyes')).value;\
             const t = document.querySelector('#new-session-technician_id');\
             t.value = [...t.options].find(o => o.text === 'tech').value;",
            json!([]),
        )
        .await;
        b.type_into("#new-session-station", "Chair 1").await;
        b.type_into("#new-session-procedure", "SMP session 1 of 3, hairline")
            .await;
        b.click_and_load("#new-session-submit").await;
        b.wait_for_text("#sessions", "Jordan Reyes").await;

        // An inspector's access, and an export.
        b.goto(&app.url(&format!("/clinics/{}/inspection", app.clinic_id)))
            .await;
        b.click("#new-grant summary").await;
        b.type_into("#new-grant-email", "auditor@council.example")
            .await;
        b.type_into("#new-grant-purpose", "annual inspection 2026")
            .await;
        b.click_and_load("#new-grant-submit").await;
        b.wait_for_text("#grants", "auditor@council.example").await;
        // The weekly summary: an impossible time is named beside its field; then saved.
        b.click("#mail-settings summary").await;
        b.script(
            "document.querySelector('#mail-settings-summary-frequency').value = 'weekly'",
            json!([]),
        )
        .await;
        b.type_into("#mail-settings-summary-time", "25:00").await;
        b.type_into("#mail-settings-recipients", "owner.copy@ink.example")
            .await;
        b.click_and_load("#mail-settings-submit").await;
        b.find("#mail-settings-summary-time-error").await;
        b.type_into("#mail-settings-summary-time", "08:00").await;
        b.click_and_load("#mail-settings-submit").await;
        b.find("#mail").await;
        let saved: Value = app
            .get(&app.clinic_path("/mail/settings"), &app.owner)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(saved["summary"]["time"], "08:00", "{saved}");
        assert_eq!(saved["recipients"][0], "owner.copy@ink.example");
        b.click("#new-export summary").await;
        b.click_and_load("#new-export-submit").await;
        b.find(".export").await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while !b.text(".export").await.contains("ready") {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}",
                b.text(".export").await
            );
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            b.goto(&app.url(&format!("/clinics/{}/inspection", app.clinic_id)))
                .await;
        }
        b.screenshot("inspection").await;
        b.click(".export a.button").await;
        let zip = b.downloaded("aseptic-export-").await;
        // As a third party checks it: with the clinic's published public key.
        let pem = app
            .client
            .get(app.url("/.well-known/aseptic/export-key?format=pem"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let key = zip.with_file_name("export-key.pem");
        std::fs::write(&key, pem).unwrap();
        let verified = std::process::Command::new(env!("CARGO_BIN_EXE_aseptic"))
            .arg("verify-export")
            .arg(&zip)
            .arg("--key")
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{}{}",
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        );
    }
}

/// An invited inspector sets a password from the mailed link, reads the registers with no control
/// that changes a record, and a forged post with their cookie and token is refused.
#[actix_web::test]
async fn an_inspector_reads_and_cannot_write() {
    let _one = ONE_BROWSER.lock().await;
    for (width, height) in SIZES {
        let app = TestApp::spawn_binary().await;
        let m = morning(&app).await;
        morning_worked(&app, &m).await;
        created(
            app.post(
                &app.clinic_path("/inspectors"),
                &app.owner,
                &json!({"email": "auditor@council.example",
                        "valid_until": (Utc::now() + Duration::days(14)).to_rfc3339(),
                        "purpose": "annual inspection 2026"}),
            )
            .await,
        )
        .await;
        let token = common::mailed_invitation_token(&app, "auditor@council.example").await;
        let b = Browser::start(width, height).await;
        b.goto(&app.url(&format!("/invitations/accept?token={token}")))
            .await;
        b.type_into("#password", "a passphrase of my own 2026")
            .await;
        b.click_and_load("#invitation button[type=submit]").await;
        b.wait_for_text("#sign-in", "Your invitation is accepted")
            .await;
        b.type_into("#email", "auditor@council.example").await;
        b.type_into("#password", "a passphrase of my own 2026")
            .await;
        b.click_and_load("#sign-in button[type=submit]").await;
        b.find("header.top nav").await;
        assert!(b.url().await.ends_with("/registers"), "{}", b.url().await);
        no_serious_violations(&b, "inspector's registers").await;
        b.screenshot("inspector-registers").await;

        let c = &app.clinic_id;
        for page in [
            "registers",
            "dashboard",
            "sterilisers",
            "cycles",
            "spore-tests",
            "lots",
            "staff",
            "sessions",
            "incidents",
            "inspection",
            &format!("sessions/{}", m.session),
        ] {
            b.goto(&app.url(&format!("/clinics/{c}/{page}"))).await;
            b.find("main h1").await;
            let posts = b
                .strings("return [...document.querySelectorAll('form')].filter(f => f.method === 'post').map(f => new URL(f.action).pathname)")
                .await;
            let exports = format!("/clinics/{c}/exports");
            assert!(
                posts.iter().all(|p| p == "/sign-out" || *p == exports),
                "{page} offers an inspector {posts:?}"
            );
            assert!(
                !b.exists("button.tick, #add-pack, #start-session").await,
                "{page}"
            );
        }
        b.goto(&app.url(&format!("/clinics/{c}/cycles"))).await;
        no_serious_violations(&b, "inspector's cycle log").await;

        // The compliance view as of a day before this inspector's access began: refused, said
        // beside the date, and the view shown as it stands now.
        b.goto(&app.url(&format!("/clinics/{c}/dashboard?as_of=2026-01-05")))
            .await;
        b.wait_for_text(
            "#as_of-error",
            "Your inspection access reads the records from",
        )
        .await;
        assert!(!b.exists("#as-of").await);

        // A forged write with the inspector's own cookie and token.
        let cookie = b.cookie("aseptic_session").await.unwrap();
        let csrf = b
            .script(
                "return document.querySelector('meta[name=csrf-token]').content",
                json!([]),
            )
            .await
            .as_str()
            .unwrap()
            .to_owned();
        let before: Value = app
            .get(&app.clinic_path("/cycles"), &app.owner)
            .await
            .json()
            .await
            .unwrap();
        let res = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(app.url(&format!("/clinics/{c}/cycles")))
            .header("cookie", format!("aseptic_session={cookie}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("steriliser_id", m.steriliser.as_str()),
                ("cycle_number", "99"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let body = res.text().await.unwrap();
        assert!(body.contains("Inspectors have read-only access"), "{body}");
        let after: Value = app
            .get(&app.clinic_path("/cycles"), &app.owner)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            before["items"].as_array().unwrap().len(),
            after["items"].as_array().unwrap().len()
        );
    }
}
