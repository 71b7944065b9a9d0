//! Dates a person reads turn at the clinic's midnight: a lot's expiry, a client's birthday, a
//! certificate issued today. Checked far east of UTC (Auckland) and west of it (Los Angeles),
//! whatever the hour the tests run at.

use crate::common;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use common::TestApp;
use diesel::connection::SimpleConnection;
use serde_json::{json, Value};

async fn in_zone(zone: &str) -> (TestApp, NaiveDate) {
    let app = TestApp::spawn().await;
    app.raw_connection()
        .batch_execute(&format!(
            "UPDATE clinics SET timezone = '{zone}' WHERE id = '{}'",
            app.clinic_id
        ))
        .unwrap();
    let tz: Tz = zone.parse().unwrap();
    let today = Utc::now().with_timezone(&tz).date_naive();
    (app, today)
}

async fn lot_expiring(app: &TestApp, number: &str, expiry: NaiveDate) -> Value {
    let res = app
        .post(&app.clinic_path("/lots"), &app.owner, &json!({
            "kind": "needle_cartridge", "manufacturer": "Cheyenne", "product_name": "Craft",
            "lot_number": number, "expiry_date": expiry.to_string(),
            "sterilisation_method": "ethylene_oxide", "received_on": (expiry - Duration::days(400)).to_string(),
            "quantity_received": 20}))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn local_dates_hold_in(zone: &str) {
    let (app, today) = in_zone(zone).await;

    // A lot that expired yesterday, local, is expired; one that expires today is still usable,
    // and its expiry is due at the end of the clinic's day.
    let yesterday = lot_expiring(&app, "L-YESTERDAY", today - Duration::days(1)).await;
    assert_eq!(yesterday["status"], "expired", "{zone}: {yesterday}");
    let last_day = lot_expiring(&app, "L-TODAY", today).await;
    assert_eq!(last_day["status"], "usable", "{zone}: {last_day}");
    let view: Value = app
        .get(&app.clinic_path("/compliance"), &app.owner)
        .await
        .json()
        .await
        .unwrap();
    let expiring = view["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == format!("lot:{}", last_day["id"].as_str().unwrap()).as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{zone}: {view}"));
    let due: chrono::DateTime<Utc> = expiring["due"].as_str().unwrap().parse().unwrap();
    let tz: Tz = zone.parse().unwrap();
    assert_eq!(
        due.with_timezone(&tz).naive_local(),
        (today + Duration::days(1)).and_hms_opt(0, 0, 0).unwrap(),
        "{zone}: due at the end of the clinic's day"
    );
    // People read the same due time as the clinic's own day, with the zone named.
    assert_eq!(
        expiring["due_local"],
        format!("by the end of {} ({zone})", today.format("%A %-d %B %Y")).as_str(),
        "{expiring}"
    );

    // A certificate issued today, local, is not "in the future".
    let res = app
        .post(
            &app.clinic_path("/credentials"),
            &app.owner,
            &json!({
            "user_id": app.technician.user_id, "kind": "bloodborne_pathogen_training",
            "issued_on": today.to_string()}),
        )
        .await;
    assert_eq!(res.status(), 201, "{zone}: {}", res.text().await.unwrap());

    // A client born eighteen years ago today, local, may be recorded and is eighteen today.
    let born = NaiveDate::from_ymd_opt(today.year() - 18, today.month(), today.day())
        .unwrap_or(today - Duration::days(18 * 366));
    let res = app
        .post(&app.clinic_path("/clients"), &app.technician, &json!({
            "name": "Birthday Client", "contact": "+64 21 000 000", "date_of_birth": born.to_string()}))
        .await;
    assert_eq!(res.status(), 201, "{zone}: {}", res.text().await.unwrap());
    let tomorrow = app
        .post(
            &app.clinic_path("/clients"),
            &app.technician,
            &json!({
            "name": "Not Yet Born", "contact": "+64 21 000 001",
            "date_of_birth": (today + Duration::days(1)).to_string()}),
        )
        .await;
    common::assert_problem(tomorrow, 422, Some("date_of_birth")).await;
}

#[actix_web::test]
async fn dates_turn_at_the_clinics_midnight_far_east_of_utc() {
    local_dates_hold_in("Pacific/Auckland").await;
}

#[actix_web::test]
async fn dates_turn_at_the_clinics_midnight_west_of_utc() {
    local_dates_hold_in("America/Los_Angeles").await;
}
