//! The clinic's context, resolved once: its record, its time zone as a parsed zone and its
//! jurisdiction profile, with one rule for what cannot be resolved (an error that names it, never
//! a silent fallback to UTC or to another jurisdiction), and the clinic-local day.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use super::store::ClinicRow;
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::jurisdiction::profiles::{Profile, Profiles};

/// A clinic with its time zone and profile.
pub struct ClinicContext<'p> {
    pub clinic: ClinicRow,
    pub tz: Tz,
    pub profile: &'p Profile,
}

/// Loads the clinic in `clinic_id` with its context; a clinic that does not exist is not found.
pub fn load<'p>(
    conn: &mut DbConn,
    profiles: &'p Profiles,
    clinic_id: &str,
) -> AppResult<ClinicContext<'p>> {
    let clinic = super::store::find(conn, clinic_id)?.ok_or(AppError::NoSuch("clinic"))?;
    let tz = time_zone(&clinic)?;
    let profile = profile(profiles, &clinic)?;
    Ok(ClinicContext {
        clinic,
        tz,
        profile,
    })
}

/// The clinic's time zone. Clinics are created with a checked zone, so a zone that no longer
/// parses is a fault in the data, reported as such.
pub fn time_zone(clinic: &ClinicRow) -> AppResult<Tz> {
    clinic.timezone.parse().map_err(|_| {
        AppError::Misconfigured(format!(
            "the clinic's time zone {:?} is not a known IANA time zone",
            clinic.timezone
        ))
    })
}

/// The clinic's jurisdiction profile, which must be installed on this server.
pub fn profile<'p>(profiles: &'p Profiles, clinic: &ClinicRow) -> AppResult<&'p Profile> {
    profiles.get(&clinic.jurisdiction).ok_or_else(|| {
        AppError::Misconfigured(format!(
            "the clinic's jurisdiction profile {:?} is not installed on this server; the operator \
             must add config/jurisdictions/{}.toml before its rules can be applied",
            clinic.jurisdiction, clinic.jurisdiction
        ))
    })
}

/// The clinic's own date now: dates a person reads (a lot's expiry, a birthday, a certificate's
/// issue) turn at the clinic's midnight, not at UTC's.
pub fn today(conn: &mut DbConn, clinic_id: &str) -> AppResult<NaiveDate> {
    day_at(conn, clinic_id, None)
}

/// The clinic-local date at `at` (today when absent).
pub fn day_at(
    conn: &mut DbConn,
    clinic_id: &str,
    at: Option<NaiveDateTime>,
) -> AppResult<NaiveDate> {
    let clinic = super::store::find(conn, clinic_id)?.ok_or(AppError::NoSuch("clinic"))?;
    let tz = time_zone(&clinic)?;
    let at = at.map_or_else(crate::clock::now, crate::db::to_utc);
    Ok(at.with_timezone(&tz).date_naive())
}

/// The clinic-local day that holds `at`, as UTC bounds.
pub fn local_day(at: NaiveDateTime, tz: Tz) -> (NaiveDate, NaiveDateTime, NaiveDateTime) {
    let today = at.and_utc().with_timezone(&tz).date_naive();
    let start = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(tz).earliest())
            .map(|t| t.naive_utc())
    };
    let day_start = start(today).unwrap_or(at);
    // The next local midnight, not 24 hours later: days are 23 or 25 hours long across a
    // daylight-saving change.
    let day_end = start(today + Duration::days(1)).unwrap_or(day_start + Duration::days(1));
    (today, day_start, day_end)
}

/// The end of a clinic-local day, in UTC: the next local midnight, exclusive. Something due by
/// the end of the day is overdue from this instant on.
pub fn end_of_day(day: NaiveDate, tz: Tz) -> NaiveDateTime {
    let next = day + Duration::days(1);
    next.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(tz).earliest())
        .map(|t| t.naive_utc())
        .unwrap_or_else(|| next.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// A period as a person in the clinic reads it: whole local days as "Monday 16 November to
/// Sunday 22 November 2026 (Europe/London)", a calendar month as "October 2026 (Europe/London)",
/// anything else as local times.
pub fn period_in_words(from: NaiveDateTime, to: NaiveDateTime, tz: Tz) -> String {
    let (f, t) = (
        from.and_utc().with_timezone(&tz),
        to.and_utc().with_timezone(&tz),
    );
    if f.time() == chrono::NaiveTime::MIN && t.time() == chrono::NaiveTime::MIN {
        let (first, last) = (f.date_naive(), t.date_naive() - Duration::days(1));
        let whole_month = chrono::Datelike::day(&first) == 1
            && chrono::Datelike::day(&t.date_naive()) == 1
            && first.checked_add_months(chrono::Months::new(1)) == Some(t.date_naive());
        if whole_month {
            return format!("{} ({tz})", first.format("%B %Y"));
        }
        if first == last {
            return format!("{} ({tz})", first.format("%A %-d %B %Y"));
        }
        return format!(
            "{} to {} ({tz})",
            first.format("%A %-d %B %Y"),
            last.format("%A %-d %B %Y")
        );
    }
    format!(
        "{} to {} ({tz})",
        f.format("%Y-%m-%d %H:%M"),
        t.format("%Y-%m-%d %H:%M")
    )
}

/// A moment as a person in the clinic reads it, with the zone's abbreviation for that moment:
/// "09:30 GMT, Tuesday 1 December 2026".
pub fn at_in_words(at: chrono::DateTime<chrono::Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%H:%M %Z, %A %-d %B %Y")
        .to_string()
}

/// A clinic-local wall-clock time (as a form's date and time fields give it) as UTC; a time that
/// does not exist or exists twice across a clock change is refused rather than guessed.
pub fn local_to_utc(local: NaiveDateTime, tz: Tz) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::offset::LocalResult;
    match local.and_local_timezone(tz) {
        LocalResult::Single(t) => Ok(t.with_timezone(&chrono::Utc)),
        LocalResult::Ambiguous(_, _) => Err(format!(
            "{} happened twice that night in {tz} (the clocks went back); give a time outside that hour",
            local.format("%H:%M")
        )),
        LocalResult::None => Err(format!(
            "{} did not exist that night in {tz} (the clocks went forward); give the time as the clock showed it",
            local.format("%H:%M")
        )),
    }
}

/// A due instant as a person in the clinic reads it: "by the end of Sunday 6 September 2026
/// (Europe/London)" for the end of a local day, else "by 14:05 on Sunday 6 September 2026
/// (Europe/London)".
pub fn due_in_words(due: NaiveDateTime, tz: Tz) -> String {
    let local = due.and_utc().with_timezone(&tz);
    if local.time() == chrono::NaiveTime::MIN {
        let day = local.date_naive() - Duration::days(1);
        format!("by the end of {} ({tz})", day.format("%A %-d %B %Y"))
    } else {
        format!(
            "by {} on {} ({tz})",
            local.format("%H:%M"),
            local.format("%A %-d %B %Y")
        )
    }
}

#[cfg(test)]
mod words {
    use super::*;

    fn utc(s: &str) -> NaiveDateTime {
        s.parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn periods_and_due_times_read_as_the_clinics_own_days() {
        let london: Tz = "Europe/London".parse().unwrap();
        assert_eq!(
            period_in_words(
                utc("2026-11-16T00:00:00Z"),
                utc("2026-11-23T00:00:00Z"),
                london
            ),
            "Monday 16 November 2026 to Sunday 22 November 2026 (Europe/London)"
        );
        assert_eq!(
            period_in_words(
                utc("2026-09-30T23:00:00Z"),
                utc("2026-11-01T00:00:00Z"),
                london
            ),
            "October 2026 (Europe/London)"
        );
        assert_eq!(
            due_in_words(utc("2026-09-06T23:00:00Z"), london),
            "by the end of Sunday 6 September 2026 (Europe/London)"
        );
        let auckland: Tz = "Pacific/Auckland".parse().unwrap();
        assert_eq!(
            due_in_words(utc("2026-09-06T02:05:00Z"), auckland),
            "by 14:05 on Sunday 6 September 2026 (Pacific/Auckland)"
        );
    }
}
