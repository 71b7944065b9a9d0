//! Public holidays, written as rules a profile can hold ("12-25", "4 thu 11", "last mon 5",
//! "day after 4 thu 11"), so a deadline in working days skips the jurisdiction's own holidays
//! in every year without a list of dates to keep up.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// One holiday rule, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holiday {
    /// A fixed date: month, day.
    Fixed(u32, u32),
    /// The nth (1–5) or last (0) given weekday of a month.
    Nth(u8, Weekday, u32),
    /// The day after another rule's day.
    DayAfter(Box<Holiday>),
}

fn weekday(word: &str) -> Option<Weekday> {
    Some(match word {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

impl Holiday {
    /// Reads a rule; the error says what a rule looks like.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let bad = || {
            format!(
                "{text:?} is not a holiday rule: write \"MM-DD\", \"N weekday month\" (\"4 thu 11\"), \
                 \"last weekday month\" (\"last mon 5\") or \"day after\" one of those"
            )
        };
        match words.as_slice() {
            ["day", "after", rest @ ..] => {
                Ok(Self::DayAfter(Box::new(Self::parse(&rest.join(" "))?)))
            }
            [date] => {
                let (m, d) = date.split_once('-').ok_or_else(bad)?;
                let (m, d): (u32, u32) =
                    (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
                // 2024 is a leap year, so 02-29 is accepted.
                NaiveDate::from_ymd_opt(2024, m, d).ok_or_else(bad)?;
                Ok(Self::Fixed(m, d))
            }
            [n, day, month] => {
                let n = if *n == "last" {
                    0
                } else {
                    n.parse().map_err(|_| bad())?
                };
                let month: u32 = month.parse().map_err(|_| bad())?;
                if n > 5 || !(1..=12).contains(&month) {
                    return Err(bad());
                }
                Ok(Self::Nth(n, weekday(day).ok_or_else(bad)?, month))
            }
            _ => Err(bad()),
        }
    }

    /// The rule's day in `year`, if it has one.
    pub fn in_year(&self, year: i32) -> Option<NaiveDate> {
        match self {
            Self::Fixed(m, d) => NaiveDate::from_ymd_opt(year, *m, *d),
            Self::Nth(0, wd, m) => {
                let next = if *m == 12 {
                    NaiveDate::from_ymd_opt(year + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(year, m + 1, 1)
                }?;
                let mut day = next - Duration::days(1);
                while day.weekday() != *wd {
                    day -= Duration::days(1);
                }
                Some(day)
            }
            Self::Nth(n, wd, m) => NaiveDate::from_weekday_of_month_opt(year, *m, *wd, *n),
            Self::DayAfter(rule) => rule.in_year(year).map(|d| d + Duration::days(1)),
        }
    }
}

/// A jurisdiction's holidays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar(Vec<Holiday>);

impl Calendar {
    pub fn parse(rules: &[String]) -> Result<Self, String> {
        rules
            .iter()
            .map(|r| Holiday::parse(r))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_holiday(&self, day: NaiveDate) -> bool {
        self.0.iter().any(|h| h.in_year(day.year()) == Some(day))
    }

    /// Whether `day` is a working day: Monday to Friday, not a holiday.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.is_holiday(day)
    }

    /// The day `n` working days after `from`.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut day = from;
        let mut left = n;
        while left > 0 {
            day += Duration::days(1);
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn rules_find_their_days() {
        let thanksgiving = Holiday::parse("4 thu 11").unwrap();
        assert_eq!(thanksgiving.in_year(2026), Some(d(2026, 11, 26)));
        assert_eq!(
            Holiday::parse("day after 4 thu 11").unwrap().in_year(2026),
            Some(d(2026, 11, 27))
        );
        assert_eq!(
            Holiday::parse("last mon 5").unwrap().in_year(2026),
            Some(d(2026, 5, 25))
        );
        assert_eq!(
            Holiday::parse("12-25").unwrap().in_year(2026),
            Some(d(2026, 12, 25))
        );
        for bad in ["13-01", "5 mon 13", "first mon 5", "christmas", ""] {
            assert!(Holiday::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let texas = Calendar::parse(&["4 thu 11".into(), "day after 4 thu 11".into()]).unwrap();
        // Tuesday 24 November 2026 + 5 working days skips Thanksgiving, the day after and the
        // weekend: Wednesday 25, Monday 30, Tuesday 1, Wednesday 2, Thursday 3 December.
        assert_eq!(texas.add_working_days(d(2026, 11, 24), 5), d(2026, 12, 3));
        assert_eq!(
            Calendar::default().add_working_days(d(2026, 11, 24), 5),
            d(2026, 12, 1)
        );
    }
}
