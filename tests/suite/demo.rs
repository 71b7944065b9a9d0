//! `aseptic demo`: a living clinic whose records, look-backs and past views are all real.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use aseptic::demo::{generate, DemoOptions};
use aseptic::jurisdiction::profiles::Profiles;
use common::TestApp;
use serde_json::Value;

#[actix_web::test]
async fn the_demo_clinic_lives_its_history() {
    let app = TestApp::spawn().await;
    let profiles = Profiles::load(None).unwrap();
    // Generated off the runtime, so the server keeps serving (and its idle connections stay
    // orderly) meanwhile.
    let pool = app.pool.clone();
    let demo = actix_web::rt::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        generate(
            &mut conn,
            &profiles,
            &DemoOptions {
                months: 1,
                sessions_per_day: 6,
                cycles_per_day: 2,
                ..Default::default()
            },
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert!(demo.counts.days >= 28);
    assert_eq!(demo.counts.sessions, demo.counts.days * 6);
    let owner = app
        .login_with(&demo.accounts[0].email, &demo.accounts[0].password)
        .await;
    let inspector = app
        .login_with(&demo.accounts[3].email, &demo.accounts[3].password)
        .await;
    let path = |rest: &str| format!("/api/v1/clinics/{}{rest}", demo.clinic_id);
    let get = |p: String, who| {
        let app = &app;
        async move {
            let res = app.get(&p, who).await;
            assert_eq!(res.status(), 200, "{p}");
            res.json::<Value>().await.unwrap()
        }
    };

    // The chain of every record written on its day verifies.
    let verify = get(path("/audit/verify"), &owner).await;
    assert_eq!(verify["valid"], true, "{verify}");

    // The failed spore test reaches back to the last negative one: a week of sessions, each
    // with the client's contact.
    let lookback = get(
        path(&format!(
            "/lookbacks?spore_test={}",
            demo.failed_spore_test_id
        )),
        &owner,
    )
    .await;
    let sessions = lookback["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 7 * 6, "{lookback}");
    assert!(sessions
        .iter()
        .all(|s| s["client_contact"].as_str().unwrap().starts_with("+44")));
    // The recalled lot reaches the sessions that used it.
    let recalled = get(
        path(&format!("/lookbacks?lot={}", demo.recalled_lot_id)),
        &owner,
    )
    .await;
    assert!(!recalled["sessions"].as_array().unwrap().is_empty());

    // The recalled stock went back to the supplier: the lot says so, and asks nothing more.
    let lot = get(path(&format!("/lots/{}", demo.recalled_lot_id)), &owner).await;
    assert_eq!(lot["status"], "withdrawn", "{lot}");
    assert!(
        lot["recall"].is_object() && lot["withdrawal"].is_object(),
        "{lot}"
    );

    // Now: the open incident shows; nothing blocks.
    let now = get(path("/compliance"), &inspector).await;
    let rules: Vec<&str> = now["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(now["summary"]["blocker"], 0, "{now}");
    assert!(!rules.contains(&"lot_recalled"), "{now}");
    assert!(rules.contains(&"incident_follow_up"), "{now}");

    // As of the morning the test was read positive, the steriliser was quarantined.
    let test = get(
        path(&format!("/spore-tests/{}", demo.failed_spore_test_id)),
        &owner,
    )
    .await;
    let read_at = chrono::DateTime::parse_from_rfc3339(test["result"]["read_at"].as_str().unwrap())
        .unwrap()
        + chrono::Duration::minutes(30);
    let then = get(
        path(&format!(
            "/compliance?at={}",
            read_at.to_rfc3339().replace('+', "%2B")
        )),
        &owner,
    )
    .await;
    assert!(
        then["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "failed_spore_test"),
        "{then}"
    );

    // The registers as they stood at a past moment. An hour after the failed test was placed
    // it was still incubating; the result read later is not part of that list.
    let at = |t: chrono::DateTime<chrono::FixedOffset>| t.to_rfc3339().replace('+', "%2B");
    let placed = chrono::DateTime::parse_from_rfc3339(test["placed_at"].as_str().unwrap()).unwrap();
    let listed = |page: &Value, id: &str| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not listed in {page}"))
    };
    let failed = demo.failed_spore_test_id.as_str();
    let before_read = get(
        path(&format!(
            "/spore-tests?limit=200&at={}",
            at(placed + chrono::Duration::hours(1))
        )),
        &inspector,
    )
    .await;
    let then = listed(&before_read, failed);
    assert!(then["result"].is_null(), "{then}");
    assert_eq!(then["outcome"], "pending", "{then}");
    let now_listed = get(path("/spore-tests?limit=200"), &inspector).await;
    assert_eq!(listed(&now_listed, failed)["outcome"], "positive");
    // A lot before and after its recall.
    let recalled_at =
        chrono::DateTime::parse_from_rfc3339(lot["recall"]["recalled_at"].as_str().unwrap())
            .unwrap();
    let recalled = demo.recalled_lot_id.as_str();
    let lots_before = get(
        path(&format!(
            "/lots?limit=200&at={}",
            at(recalled_at - chrono::Duration::minutes(1))
        )),
        &owner,
    )
    .await;
    let lot_then = listed(&lots_before, recalled);
    assert!(lot_then["recall"].is_null(), "{lot_then}");
    assert_eq!(lot_then["status"], "usable", "{lot_then}");
    // A moment to come has nothing to show yet.
    let future = app
        .get(
            &path(&format!(
                "/cycles?at={}",
                at((chrono::Utc::now() + chrono::Duration::days(2)).fixed_offset())
            )),
            &owner,
        )
        .await;
    assert_eq!(future.status(), 422);
    let problem: Value = future.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "at", "{problem}");

    // The same on the pages, by the clinic-local day: the owner reads the spore tests as of
    // the day the failed test was placed (it was read on a later day).
    let london = chrono_tz::Europe::London;
    let local_day =
        |t: chrono::DateTime<chrono::FixedOffset>| t.with_timezone(&london).date_naive();
    let read_at =
        chrono::DateTime::parse_from_rfc3339(test["result"]["read_at"].as_str().unwrap()).unwrap();
    assert!(local_day(read_at) > local_day(placed), "{test}");
    let c = &demo.clinic_id;
    let owner_cookie = app
        .sign_in_page(&demo.accounts[0].email, &demo.accounts[0].password)
        .await;
    let row = |html: &str, id: &str| {
        let start = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} not on the page"));
        let end = html[start..]
            .find("</tr>")
            .map_or(html.len(), |e| start + e);
        html[start..end].to_owned()
    };
    let (status, html) = app
        .page(
            &format!("/clinics/{c}/spore-tests?as_of={}", local_day(placed)),
            &owner_cookie,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Showing the records as they stood at"),
        "{html}"
    );
    assert!(
        html.contains("23:59 GMT,") || html.contains("23:59 BST,"),
        "the end of that day, with the zone named: {html}"
    );
    assert!(row(&html, &format!("spore-test-{failed}")).contains("incubating"));
    // A past view is for reading: it offers no form that records something.
    assert!(
        !html.contains("method=\"post\" action=\"/clinics/"),
        "{html}"
    );
    let (_, html) = app
        .page(&format!("/clinics/{c}/spore-tests"), &owner_cookie)
        .await;
    assert!(row(&html, &format!("spore-test-{failed}")).contains("positive"));
    assert!(html.contains("method=\"post\" action=\"/clinics/"));
    // The lot register the day before the recall, and now.
    let lot_card = |html: &str| {
        let start = html.find(&format!("id=\"lot-{recalled}\"")).unwrap();
        let end = html[start..]
            .find("</div>")
            .map_or(html.len(), |e| start + e);
        html[start..end].to_owned()
    };
    let (_, html) = app
        .page(
            &format!(
                "/clinics/{c}/lots?as_of={}",
                local_day(recalled_at) - chrono::Duration::days(1)
            ),
            &owner_cookie,
        )
        .await;
    assert!(!lot_card(&html).contains("Recalled"), "{}", lot_card(&html));
    let (_, html) = app.page(&format!("/clinics/{c}/lots"), &owner_cookie).await;
    assert!(lot_card(&html).contains("Recalled"), "{}", lot_card(&html));
    // The registers index keeps the chosen day in its links.
    let day = local_day(placed);
    let (_, html) = app
        .page(
            &format!("/clinics/{c}/registers?as_of={day}"),
            &owner_cookie,
        )
        .await;
    assert!(
        html.contains(&format!("/clinics/{c}/cycles?as_of={day}")),
        "{html}"
    );
    // An inspector reads back only to the start of their access (today, for the demo's), and
    // a day to come is refused beside the field; each shows the records as they stand now.
    let inspector_cookie = app
        .sign_in_page(&demo.accounts[3].email, &demo.accounts[3].password)
        .await;
    for (register, day, says) in [
        (
            "cycles",
            local_day(placed).to_string(),
            "Your inspection access reads the records from",
        ),
        (
            "staff",
            "2000-01-01".to_owned(),
            "Your inspection access reads the records from",
        ),
        (
            "incidents",
            "2999-01-01".to_owned(),
            "That day has not come yet",
        ),
    ] {
        let (status, html) = app
            .page(
                &format!("/clinics/{c}/{register}?as_of={day}"),
                &inspector_cookie,
            )
            .await;
        assert_eq!(status, 422, "{register}");
        assert!(html.contains(says), "{register}: {html}");
        assert!(!html.contains("Showing the records as they stood at"));
    }
}
