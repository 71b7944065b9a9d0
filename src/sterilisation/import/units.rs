//! Normalising what devices write: temperatures to °C, pressures to absolute kPa (bar relative,
//! psig with inHg vacuum, bar or kPa absolute), device-local times to UTC in the clinic's zone.

use chrono::{LocalResult, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Reading;

/// Standard atmosphere. Gauge readings are converted with it: a site well above sea level reads
/// about 1 kPa lower for every 85 m, which the steam check's tolerance absorbs up to a few hundred
/// metres.
pub const ATMOSPHERE_KPA: f64 = 101.325;
const KPA_PER_PSI: f64 = 6.894_757;
const KPA_PER_INHG: f64 = 3.386_389;

/// How a device wrote a pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PressureUnit {
    /// bar above (or, negative, below) the atmosphere: W&H.
    BarRelative,
    /// bar absolute: Dentsply Sirona DAC.
    BarAbsolute,
    /// kPa absolute: SciCan.
    KpaAbsolute,
    /// kPa above the atmosphere.
    KpaRelative,
    /// psi above the atmosphere: Tuttnauer (with inHg below it).
    Psig,
    /// psi absolute.
    Psia,
    /// inches of mercury below the atmosphere (a vacuum reading).
    InHgVacuum,
    /// MPa absolute.
    MpaAbsolute,
}

impl PressureUnit {
    pub fn to_kpa_absolute(self, v: f64) -> f64 {
        match self {
            Self::BarRelative => v * 100.0 + ATMOSPHERE_KPA,
            Self::BarAbsolute => v * 100.0,
            Self::KpaAbsolute => v,
            Self::KpaRelative => v + ATMOSPHERE_KPA,
            Self::Psig => v * KPA_PER_PSI + ATMOSPHERE_KPA,
            Self::Psia => v * KPA_PER_PSI,
            Self::InHgVacuum => ATMOSPHERE_KPA - v * KPA_PER_INHG,
            Self::MpaAbsolute => v * 1000.0,
        }
    }

    /// Whether the unit is relative to the atmosphere (its conversion assumes sea level).
    pub fn is_gauge(self) -> bool {
        matches!(
            self,
            Self::BarRelative | Self::KpaRelative | Self::Psig | Self::InHgVacuum
        )
    }

    /// The unit as a person writes it, e.g. in a CSV mapping: `bar`, `bar_abs`, `kpa`, `psig`…
    pub fn parse(s: &str) -> Option<Self> {
        Some(
            match s
                .trim()
                .to_ascii_lowercase()
                .replace([' ', '-'], "_")
                .as_str()
            {
                "bar" | "bar_relative" | "bar_gauge" | "barg" | "bar_g" => Self::BarRelative,
                "bar_absolute" | "bar_abs" | "bara" | "bar_a" => Self::BarAbsolute,
                "kpa" | "kpa_absolute" | "kpa_abs" | "kpaa" => Self::KpaAbsolute,
                "kpa_relative" | "kpa_gauge" | "kpag" | "kpa_g" => Self::KpaRelative,
                "psi" | "psig" | "psi_gauge" => Self::Psig,
                "psia" | "psi_absolute" | "psi_abs" => Self::Psia,
                "inhg" | "inhg_vacuum" => Self::InHgVacuum,
                "mpa" | "mpa_absolute" | "mpa_abs" => Self::MpaAbsolute,
                _ => return None,
            },
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::BarRelative => "bar (relative)",
            Self::BarAbsolute => "bar (absolute)",
            Self::KpaAbsolute => "kPa (absolute)",
            Self::KpaRelative => "kPa (relative)",
            Self::Psig => "psig",
            Self::Psia => "psia",
            Self::InHgVacuum => "inHg (vacuum)",
            Self::MpaAbsolute => "MPa (absolute)",
        }
    }
}

/// A number as devices write it: `30.62`, `-0.88`, `24.90In`, `132,6` (a decimal comma).
pub fn number(s: &str) -> Option<f64> {
    let t = s
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '°');
    let t = t.trim();
    let v: f64 = if t.contains(',') && !t.contains('.') {
        t.replace(',', ".").parse().ok()?
    } else {
        t.parse().ok()?
    };
    v.is_finite().then_some(v)
}

pub fn pressure(original: &str, value: f64, unit: PressureUnit) -> Reading {
    Reading {
        value: round(unit.to_kpa_absolute(value), 3),
        original: original.trim().to_owned(),
    }
}

pub fn celsius(original: &str, value: f64) -> Reading {
    Reading {
        value: round(value, 3),
        original: original.trim().to_owned(),
    }
}

pub fn fahrenheit(original: &str, value: f64) -> Reading {
    Reading {
        value: round((value - 32.0) * 5.0 / 9.0, 3),
        original: original.trim().to_owned(),
    }
}

/// A duration in seconds, with the text it was read from (e.g. `4.0 min`).
pub fn seconds(original: &str, value: f64) -> Reading {
    Reading {
        value: round(value, 1),
        original: original.trim().to_owned(),
    }
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// A device's local clock reading placed in the clinic's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// The UTC instant; for a reading that exists twice, the earlier of the two.
    pub utc: NaiveDateTime,
    pub problem: Option<ClockProblem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockProblem {
    /// The clocks went forward over it: no such local time.
    DoesNotExist,
    /// The clocks went back over it: it happened twice.
    Ambiguous,
}

/// Places a local reading in `tz`. A time that falls in a clock change is flagged, never silently
/// resolved: one that does not exist is placed as if the clocks had not yet changed, one that
/// exists twice at its earlier occurrence, and the flag says so.
pub fn place(local: NaiveDateTime, tz: Tz) -> Placed {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Placed {
            utc: t.naive_utc(),
            problem: None,
        },
        LocalResult::Ambiguous(a, b) => Placed {
            utc: a.naive_utc().min(b.naive_utc()),
            problem: Some(ClockProblem::Ambiguous),
        },
        LocalResult::None => {
            // The offset in force a few hours before: the device's clock had not moved yet.
            let before = local
                .checked_sub_signed(chrono::Duration::hours(3))
                .unwrap_or(local);
            let offset = match tz.from_local_datetime(&before) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.naive_utc() - before,
                LocalResult::None => chrono::Duration::zero(),
            };
            Placed {
                utc: local.checked_add_signed(offset).unwrap_or(local),
                problem: Some(ClockProblem::DoesNotExist),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn pressures_normalise_to_absolute_kpa() {
        assert!((PressureUnit::BarRelative.to_kpa_absolute(2.03) - 304.3).abs() < 0.1);
        assert!((PressureUnit::Psig.to_kpa_absolute(29.4) - 304.0).abs() < 0.5);
        assert!((PressureUnit::InHgVacuum.to_kpa_absolute(24.9) - 17.0).abs() < 0.1);
        assert_eq!(number("24.90In"), Some(24.9));
        assert_eq!(number("132,6"), Some(132.6));
        assert_eq!(number("-0.88"), Some(-0.88));
        assert_eq!(number("abc"), None);
    }

    #[test]
    fn clock_changes_are_flagged() {
        let tz = chrono_tz::Europe::London;
        let d = |m, day, h, min| {
            NaiveDate::from_ymd_opt(2024, m, day)
                .unwrap()
                .and_hms_opt(h, min, 0)
                .unwrap()
        };
        let gap = place(d(3, 31, 1, 30), tz);
        assert_eq!(gap.problem, Some(ClockProblem::DoesNotExist));
        assert_eq!(gap.utc, d(3, 31, 1, 30));
        let twice = place(d(10, 27, 1, 30), tz);
        assert_eq!(twice.problem, Some(ClockProblem::Ambiguous));
        assert_eq!(twice.utc, d(10, 27, 0, 30));
        assert_eq!(place(d(6, 1, 12, 0), tz).utc, d(6, 1, 11, 0));
    }
}
