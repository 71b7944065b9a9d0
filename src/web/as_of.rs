//! "As of" a past date: the registers and the compliance view as they stood at the end of a
//! clinic-local day. An inspector may read back only to the start of their access; anyone else
//! to the clinic's first day.

use std::collections::HashMap;

use actix_web::{web, HttpRequest};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

use super::chrome::{state, ClinicPage};
use super::PageError;
use crate::clinics::context::{at_in_words, end_of_day};
use crate::db;

/// The day asked for, what was wrong with it, and the moment it stands for.
pub struct AsOf {
    /// As typed, so the field keeps it.
    pub asked: String,
    pub error: Option<String>,
    /// The first and last days that may be asked for (the date picker's bounds).
    pub first_day: String,
    pub today: String,
    /// The end of the chosen day; `None` for now (no day, today, or a refused day).
    pub at: Option<DateTime<Utc>>,
    /// `at` in the clinic's time zone, named.
    pub words: Option<String>,
}

impl AsOf {
    /// Reads `as_of` from the query string and checks it against the clinic's first day and,
    /// for an inspector, the start of their grant.
    pub async fn read(req: &HttpRequest, page: &ClinicPage) -> Result<Self, PageError> {
        let state = state(req)?;
        let tz = page.tz;
        let today = crate::clock::now().with_timezone(&tz).date_naive();
        let asked = web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("as_of").map(|s| s.trim().to_owned()))
            .filter(|s| !s.is_empty());
        let (clinic, user) = (page.clinic_id().to_owned(), page.browser.user.id.clone());
        let inspector = page.role() == crate::auth::Role::Inspector;
        let (created, grant_from) = db::run(&state.pool, move |conn| {
            let created = crate::clinics::store::find(conn, &clinic)?
                .map(|c| c.created_at)
                .unwrap_or_else(db::now);
            let grant_from = match inspector {
                true => match crate::inspectors::store::active_grant(conn, &clinic, &user)? {
                    Some((id, _)) => {
                        Some(crate::inspectors::store::find(conn, &clinic, &id)?.valid_from)
                    }
                    None => None,
                },
                false => None,
            };
            Ok((created, grant_from))
        })
        .await?;
        let first_day = grant_from
            .map_or(created, |g| g.max(created))
            .and_utc()
            .with_timezone(&tz)
            .date_naive();
        let (day, error) = judge(asked.as_deref(), today, first_day, grant_from.is_some());
        // The records as they stood at the end of that local day (or now, for today).
        let at = day
            .filter(|d| *d < today)
            .map(|d| db::to_utc(end_of_day(d, tz)) - Duration::microseconds(1));
        Ok(Self {
            asked: asked.unwrap_or_default(),
            error,
            first_day: first_day.to_string(),
            today: today.to_string(),
            words: at.map(|t| at_in_words(t, tz)),
            at,
        })
    }

    /// The moment the lists read the records at; `None` for now.
    pub fn standing(&self) -> Option<NaiveDateTime> {
        self.at.map(|t| db::truncate(t.naive_utc()))
    }

    /// A past view is for reading: no form that records something is offered on it.
    pub fn is_past(&self) -> bool {
        self.at.is_some()
    }

    /// `?as_of=…` for links that should keep the chosen day.
    pub fn query(&self) -> String {
        match self.is_past() {
            true => format!("?as_of={}", self.asked),
            false => String::new(),
        }
    }

    pub fn status(&self) -> actix_web::http::StatusCode {
        match self.error {
            Some(_) => actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            None => actix_web::http::StatusCode::OK,
        }
    }
}

/// The day, or why it cannot be shown, in words a clinic worker understands.
fn judge(
    asked: Option<&str>,
    today: NaiveDate,
    first_day: NaiveDate,
    inspector: bool,
) -> (Option<NaiveDate>, Option<String>) {
    match asked.map(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d")) {
        None => (None, None),
        Some(Err(_)) => (
            None,
            Some("Give a date, for example 2026-11-30.".to_owned()),
        ),
        Some(Ok(d)) if d > today => (
            None,
            Some("That day has not come yet: the records show what was recorded.".to_owned()),
        ),
        Some(Ok(d)) if d < first_day => (
            None,
            Some(match inspector {
                true => format!(
                    "Your inspection access reads the records from {} on.",
                    first_day.format("%-d %B %Y")
                ),
                false => format!(
                    "The clinic's records begin on {}.",
                    first_day.format("%-d %B %Y")
                ),
            }),
        ),
        Some(Ok(d)) => (Some(d), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn a_day_inside_the_bounds_is_shown_and_one_outside_is_refused_in_words() {
        let (today, first) = (day("2026-11-30"), day("2026-03-01"));
        assert_eq!(
            judge(Some("2026-06-01"), today, first, false),
            (Some(day("2026-06-01")), None)
        );
        assert_eq!(judge(None, today, first, false), (None, None));
        let (d, e) = judge(Some("2026-12-01"), today, first, false);
        assert!(d.is_none() && e.is_some_and(|e| e.contains("not come yet")));
        let (d, e) = judge(Some("2026-02-28"), today, first, true);
        assert!(
            d.is_none()
                && e.is_some_and(|e| e.contains("access reads the records from 1 March 2026"))
        );
        let (d, e) = judge(Some("last week"), today, first, false);
        assert!(d.is_none() && e.is_some_and(|e| e.contains("Give a date")));
    }
}
