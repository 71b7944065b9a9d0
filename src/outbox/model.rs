//! Pure mail rules: the summary schedule and its periods in the clinic's time zone, retry
//! back-off, reminder thresholds and address checks. No I/O here.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Weekly,
    Monthly,
}

crate::db::stored::stored_as!(Frequency, "summary frequency", {
    Weekly => "weekly",
    Monthly => "monthly",
});

/// When the audit summary goes out, in the clinic's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub frequency: Frequency,
    /// ISO weekday (1 = Monday … 7 = Sunday) for weekly; day of the month (1–28) for monthly.
    pub day: u32,
    pub time: NaiveTime,
}

/// The schedule as an owner sends it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub frequency: Frequency,
    /// Weekly: 1 (Monday) to 7 (Sunday). Monthly: 1 to 28, so that every month has the day.
    #[schema(minimum = 1, maximum = 28)]
    pub day: u32,
    /// Local time, `HH:MM` (24-hour clock), in the clinic's time zone.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub time: String,
}

impl ScheduleInput {
    /// Checks the day and the time, naming the field at fault (`prefix.day`, `prefix.time`).
    pub fn validate(&self, prefix: &str) -> Result<Schedule, Vec<FieldError>> {
        let mut errors = Vec::new();
        let day_ok = match self.frequency {
            Frequency::Weekly => (1..=7).contains(&self.day),
            Frequency::Monthly => (1..=28).contains(&self.day),
        };
        if !day_ok {
            errors.push(FieldError::new(
                format!("{prefix}.day"),
                match self.frequency {
                    Frequency::Weekly => {
                        "a weekly summary needs a weekday from 1 (Monday) to 7 (Sunday)"
                    }
                    Frequency::Monthly => {
                        "a monthly summary needs a day from 1 to 28, which every month has"
                    }
                },
            ));
        }
        let time = parse_time(&self.time);
        if time.is_none() {
            errors.push(FieldError::new(
                format!("{prefix}.time"),
                "must be a local time HH:MM between 00:00 and 23:59",
            ));
        }
        match time {
            Some(time) if errors.is_empty() => Ok(Schedule {
                frequency: self.frequency,
                day: self.day,
                time,
            }),
            _ => Err(errors),
        }
    }
}

/// `HH:MM`, strictly: two digits each, 00–23 and 00–59.
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

impl Schedule {
    pub fn time_text(&self) -> String {
        self.time.format("%H:%M").to_string()
    }

    fn falls_on(&self, date: NaiveDate) -> bool {
        match self.frequency {
            Frequency::Weekly => date.weekday().number_from_monday() == self.day,
            Frequency::Monthly => date.day() == self.day,
        }
    }

    /// The latest scheduled local date on or before `date`.
    fn latest_date_on_or_before(&self, date: NaiveDate) -> NaiveDate {
        let mut d = date;
        // At most a month back: the loop is bounded whatever the input.
        for _ in 0..31 {
            if self.falls_on(d) {
                return d;
            }
            d = d.pred_opt().unwrap_or(d);
        }
        d
    }

    fn previous_date(&self, date: NaiveDate) -> NaiveDate {
        match self.frequency {
            Frequency::Weekly => date - Duration::days(7),
            Frequency::Monthly => {
                let (y, m) = if date.month() == 1 {
                    (date.year() - 1, 12)
                } else {
                    (date.year(), date.month() - 1)
                };
                NaiveDate::from_ymd_opt(y, m, self.day).unwrap_or(date)
            }
        }
    }

    /// The most recent occurrence at or before `now`, with the period it summarises (from the
    /// occurrence before it up to this one) and the period's key (the local date it went out).
    pub fn latest_due(&self, now: DateTime<Utc>, tz: Tz) -> Occurrence {
        let today = now.with_timezone(&tz).date_naive();
        let mut date = self.latest_date_on_or_before(today);
        if at_local(date, self.time, tz) > now {
            date = self.previous_date(date);
        }
        // The last whole clinic-local calendar week (Monday to Sunday) or month before the day
        // it goes out: what a person means by "last week" or "last month".
        let (first, next) = match self.frequency {
            Frequency::Weekly => {
                let monday =
                    date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
                (monday - Duration::days(7), monday)
            }
            Frequency::Monthly => {
                let this = date.with_day(1).unwrap_or(date);
                let last = this
                    .checked_sub_months(chrono::Months::new(1))
                    .unwrap_or(this);
                (last, this)
            }
        };
        Occurrence {
            key: date.to_string(),
            at: at_local(date, self.time, tz),
            from: at_local(first, NaiveTime::MIN, tz),
            to: at_local(next, NaiveTime::MIN, tz),
        }
    }
}

/// One summary: the clinic-local period `[from, to)` it covers, sent at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub key: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// The instant a local date and time names. A time skipped by a clock change is taken as the
/// first instant after the gap; a time that happens twice, as the first of the two.
pub fn at_local(date: NaiveDate, time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let mut local = date.and_time(time);
    for _ in 0..4 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => local += Duration::minutes(30),
        }
    }
    Utc.from_utc_datetime(&local)
}

/// Delay before retry number `attempt` (1 = the first retry): `base` doubling up to 120 times
/// `base` (30 s to an hour by default), scaled by `jitter` in [0, 1) into the upper half of that
/// range, so that messages that failed together do not all come back together.
pub fn backoff(attempt: u32, jitter: f64, base: Duration) -> Duration {
    let base_ms = base.num_milliseconds().max(1);
    let grown = base_ms.saturating_mul(1i64 << attempt.saturating_sub(1).min(20));
    let capped = grown.min(base_ms.saturating_mul(120));
    let jitter = jitter.clamp(0.0, 1.0);
    let ms = (capped as f64 * (0.5 + jitter / 2.0)) as i64;
    Duration::milliseconds(ms.max(1))
}

/// Days before an expiry when owners are reminded.
pub const REMINDER_DAYS: [i64; 3] = [30, 7, 1];

/// The reminder an expiry `days_left` away calls for: the tightest threshold it has reached, so
/// a day missed (the service was down) is made up once and not repeated.
pub fn reminder_threshold(days_left: i64) -> Option<i64> {
    if days_left < 0 {
        return None;
    }
    REMINDER_DAYS
        .iter()
        .rev()
        .copied()
        .find(|t| days_left <= *t)
}

/// Checks an address the way lettre will have to parse it, so a bad one is refused at the door
/// instead of failing in the worker days later.
pub fn check_address(raw: &str) -> Result<String, &'static str> {
    let email = crate::auth::normalise_email(raw);
    crate::auth::check_email(&email)?;
    email
        .parse::<lettre::Address>()
        .map_err(|_| "is not a valid email address")?;
    Ok(email)
}

/// `Name <address>` or a bare address.
pub fn parse_mailbox(raw: &str) -> Result<lettre::message::Mailbox, String> {
    raw.parse::<lettre::message::Mailbox>()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn weekly(day: u32, time: &str) -> Schedule {
        ScheduleInput {
            frequency: Frequency::Weekly,
            day,
            time: time.into(),
        }
        .validate("summary")
        .unwrap()
    }

    #[test]
    fn impossible_days_and_times_are_refused_by_field() {
        let bad = |frequency, day, time: &str| {
            ScheduleInput {
                frequency,
                day,
                time: time.into(),
            }
            .validate("summary")
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect::<Vec<_>>()
        };
        assert_eq!(bad(Frequency::Weekly, 0, "09:00"), ["summary.day"]);
        assert_eq!(bad(Frequency::Weekly, 8, "09:00"), ["summary.day"]);
        assert_eq!(bad(Frequency::Monthly, 29, "09:00"), ["summary.day"]);
        assert_eq!(bad(Frequency::Monthly, 31, "09:00"), ["summary.day"]);
        for time in ["24:00", "9:00", "09:60", "09:00:00", "nine", ""] {
            assert_eq!(bad(Frequency::Weekly, 1, time), ["summary.time"], "{time}");
        }
        assert_eq!(
            bad(Frequency::Monthly, 0, "25:00"),
            ["summary.day", "summary.time"]
        );
        assert!(ScheduleInput {
            frequency: Frequency::Monthly,
            day: 28,
            time: "23:59".into()
        }
        .validate("summary")
        .is_ok());
    }

    #[test]
    fn weekly_periods_run_from_one_occurrence_to_the_next() {
        let s = weekly(1, "09:00"); // Mondays at 09:00, London
        let tz: Tz = "Europe/London".parse().unwrap();
        // Wednesday 25 November 2026: the last occurrence was Monday the 23rd.
        let o = s.latest_due(utc("2026-11-25T12:00:00Z"), tz);
        assert_eq!(o.key, "2026-11-23");
        assert_eq!(o.at, utc("2026-11-23T09:00:00Z"));
        // It covers the clinic's last whole week, Monday 16 to Sunday 22 November.
        assert_eq!(o.from, utc("2026-11-16T00:00:00Z"));
        assert_eq!(o.to, utc("2026-11-23T00:00:00Z"));
        // A minute before Monday 09:00 the previous Monday is still the latest.
        let o = s.latest_due(utc("2026-11-30T08:59:00Z"), tz);
        assert_eq!(o.key, "2026-11-23");
        let o = s.latest_due(utc("2026-11-30T09:00:00Z"), tz);
        assert_eq!(o.key, "2026-11-30");
    }

    #[test]
    fn local_time_holds_across_a_clock_change() {
        let tz: Tz = "Europe/London".parse().unwrap();
        // Sunday 29 March 2026 the clocks go forward: 09:00 BST is 08:00 UTC.
        let s = weekly(7, "09:00");
        let o = s.latest_due(utc("2026-03-29T12:00:00Z"), tz);
        assert_eq!(o.at, utc("2026-03-29T08:00:00Z"));
        // Sent on a Sunday: the week before it, Monday 16 to Sunday 22 March (GMT).
        assert_eq!(o.from, utc("2026-03-16T00:00:00Z"));
        assert_eq!(o.to, utc("2026-03-23T00:00:00Z"));
        // 01:30 does not exist that day: the summary goes at the end of the gap.
        let gap = weekly(7, "01:30");
        let o = gap.latest_due(utc("2026-03-29T12:00:00Z"), tz);
        assert_eq!(o.at, utc("2026-03-29T01:00:00Z"));
        // 01:30 happens twice on 25 October: the first one counts.
        let twice = weekly(7, "01:30");
        let o = twice.latest_due(utc("2026-10-25T12:00:00Z"), tz);
        assert_eq!(o.at, utc("2026-10-25T00:30:00Z"));
    }

    #[test]
    fn monthly_periods_cross_the_year() {
        let tz: Tz = "America/Los_Angeles".parse().unwrap();
        let s = ScheduleInput {
            frequency: Frequency::Monthly,
            day: 1,
            time: "07:30".into(),
        }
        .validate("summary")
        .unwrap();
        let o = s.latest_due(utc("2027-01-01T16:00:00Z"), tz);
        assert_eq!(o.key, "2027-01-01");
        assert_eq!(o.at, utc("2027-01-01T15:30:00Z"));
        // December, from Los Angeles' midnights.
        assert_eq!(o.from, utc("2026-12-01T08:00:00Z"));
        assert_eq!(o.to, utc("2027-01-01T08:00:00Z"));
        // Before 07:30 local on the 1st, December's is the latest.
        let o = s.latest_due(utc("2027-01-01T15:00:00Z"), tz);
        assert_eq!(o.key, "2026-12-01");
    }

    #[test]
    fn backoff_doubles_to_an_hour_and_jitters_within_half() {
        let b = Duration::seconds(30);
        assert_eq!(backoff(1, 0.0, b), Duration::seconds(15));
        assert_eq!(backoff(1, 0.999_999, b), Duration::milliseconds(29_999));
        assert_eq!(backoff(2, 0.0, b), Duration::seconds(30));
        assert_eq!(backoff(8, 0.0, b), Duration::seconds(1800));
        assert_eq!(backoff(9, 0.0, b), Duration::seconds(1800));
        assert_eq!(backoff(400, 0.0, b), Duration::seconds(1800));
        // Four days of retries is about a hundred attempts, not thousands.
        let mut t = Duration::zero();
        let mut n = 0;
        while t < Duration::hours(96) {
            n += 1;
            t += backoff(n, 0.5, b);
        }
        assert!((100..200).contains(&n), "{n} attempts");
    }

    #[test]
    fn reminders_fire_once_per_threshold() {
        assert_eq!(reminder_threshold(45), None);
        assert_eq!(reminder_threshold(30), Some(30));
        assert_eq!(reminder_threshold(8), Some(30));
        assert_eq!(reminder_threshold(7), Some(7));
        assert_eq!(reminder_threshold(2), Some(7));
        assert_eq!(reminder_threshold(1), Some(1));
        assert_eq!(reminder_threshold(0), Some(1));
        assert_eq!(reminder_threshold(-1), None);
    }

    #[test]
    fn addresses_are_checked_as_lettre_will_parse_them() {
        assert_eq!(
            check_address(" Inspector@Council.example ").unwrap(),
            "inspector@council.example"
        );
        for bad in ["", "no-at.example", "a@b", "a b@c.example", "a@@c.example"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
