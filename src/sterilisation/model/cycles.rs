//! Cycles: a load's program, measured parameters and indicators, and the outcome derived from
//! them.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

use super::*;

/// An ISO 11140-1 chemical indicator and what it showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChemicalIndicator {
    /// ISO 11140-1 type, 1 (process) to 6 (emulating).
    #[serde(rename = "type")]
    pub indicator_type: i32,
    pub passed: bool,
}

/// What the steriliser was set to do: the minimums a load must reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Program {
    #[schema(example = "134 °C / 3.5 min pre-vacuum")]
    pub name: String,
    /// Minimum sterilising temperature, °C (steam: 100–140).
    #[schema(minimum = 100, maximum = 140)]
    pub temperature_c: f64,
    /// Minimum hold (exposure) time at that temperature, minutes (more than 0, at most 240).
    #[schema(exclusive_minimum = 0, maximum = 240)]
    pub hold_minutes: f64,
}

/// The fields of a cycle record (what is created, and what an amendment may correct).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CycleFields {
    pub steriliser_id: String,
    /// The steriliser's own counter, as printed on its record.
    #[schema(minimum = 1)]
    pub cycle_number: i64,
    pub program: Program,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Highest chamber temperature measured, °C (steam: 100–140).
    #[schema(minimum = 100, maximum = 140)]
    pub peak_temperature_c: f64,
    /// Absolute chamber pressure at the peak, kPa (saturated steam: about 204 kPa at 121 °C,
    /// 304 kPa at 134 °C); accepted within ±10 % of saturation at the peak temperature.
    #[schema(exclusive_minimum = 0)]
    pub peak_pressure_kpa: f64,
    /// Time held at or above the program temperature, minutes (more than 0, at most 240).
    #[schema(exclusive_minimum = 0, maximum = 240)]
    pub hold_minutes: f64,
    /// Who ran the load (a member of the clinic); defaults to the caller.
    pub operator_id: Option<String>,
    /// The chemical indicator of the load (every load carries one).
    pub load_indicator: ChemicalIndicator,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackInput {
    /// What is in the pack, e.g. "4 tube grips, 2 tips".
    pub contents: String,
    /// The pack's own chemical indicator, when it has one.
    pub indicator: Option<ChemicalIndicator>,
}

/// A new cycle: its fields and its load. Read with [`CycleInput::from_json`], because serde's
/// `flatten` would lose the name of a wrong field.
#[derive(Debug, Clone, PartialEq, ToSchema)]
pub struct CycleInput {
    // Documents the body as it is sent: the cycle's fields and `packs` side by side.
    #[serde(flatten)]
    pub fields: CycleFields,
    /// The load: each entry becomes a labelled pack. Empty for an empty-chamber test cycle.
    pub packs: Vec<PackInput>,
}

pub(super) fn check_indicator(field: &str, i: &ChemicalIndicator, errors: &mut Vec<FieldError>) {
    if !(1..=6).contains(&i.indicator_type) {
        errors.push(FieldError::new(
            format!("{field}.type"),
            "must be an ISO 11140-1 indicator type from 1 to 6",
        ));
    }
}

impl CycleFields {
    pub fn normalise(&mut self) {
        self.program.name = self.program.name.trim().to_owned();
        trim_opt(&mut self.notes);
        self.started_at = crate::db::to_utc(crate::db::truncate(self.started_at.naive_utc()));
        self.finished_at = crate::db::to_utc(crate::db::truncate(self.finished_at.naive_utc()));
    }

    pub fn validate(&self, now: DateTime<Utc>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.cycle_number < 1 {
            errors.push(FieldError::new("cycle_number", "must be 1 or more"));
        }
        required_text("program.name", &self.program.name, 100, &mut errors);
        check_temperature(
            "program.temperature_c",
            self.program.temperature_c,
            &mut errors,
        );
        if !(self.program.hold_minutes.is_finite()
            && self.program.hold_minutes > 0.0
            && self.program.hold_minutes <= 240.0)
        {
            errors.push(FieldError::new(
                "program.hold_minutes",
                "must be more than 0 and at most 240",
            ));
        }
        check_temperature("peak_temperature_c", self.peak_temperature_c, &mut errors);
        if !(self.hold_minutes.is_finite() && self.hold_minutes > 0.0 && self.hold_minutes <= 240.0)
        {
            errors.push(FieldError::new(
                "hold_minutes",
                "must be more than 0 and at most 240",
            ));
        }
        let temperature_ok = errors.iter().all(|e| e.field != "peak_temperature_c");
        if !self.peak_pressure_kpa.is_finite() || self.peak_pressure_kpa <= 0.0 {
            errors.push(FieldError::new(
                "peak_pressure_kpa",
                "must be a positive absolute pressure in kPa",
            ));
        } else if temperature_ok {
            let expected = saturation_pressure_kpa(self.peak_temperature_c);
            if (self.peak_pressure_kpa - expected).abs() > expected * PRESSURE_TOLERANCE {
                errors.push(FieldError::new(
                    "peak_pressure_kpa",
                    format!(
                        "{} kPa is impossible for saturated steam at {} °C: expected {:.0} kPa absolute (±{:.0} %)",
                        self.peak_pressure_kpa,
                        self.peak_temperature_c,
                        expected,
                        PRESSURE_TOLERANCE * 100.0
                    ),
                ));
            }
        }
        if self.finished_at <= self.started_at {
            errors.push(FieldError::new("finished_at", "must be after started_at"));
        } else {
            let minutes = (self.finished_at - self.started_at).num_seconds() as f64 / 60.0;
            if minutes > 24.0 * 60.0 {
                errors.push(FieldError::new(
                    "finished_at",
                    "a cycle cannot last more than 24 hours",
                ));
            } else if self.hold_minutes.is_finite() && self.hold_minutes > minutes {
                errors.push(FieldError::new(
                    "hold_minutes",
                    "is longer than the cycle itself",
                ));
            }
        }
        // A minute of grace for clocks that disagree.
        if self.finished_at > now + Duration::minutes(1) {
            errors.push(FieldError::new("finished_at", "must not be in the future"));
        }
        check_indicator("load_indicator", &self.load_indicator, &mut errors);
        optional_text("notes", &self.notes, 2000, &mut errors);
        errors
    }

    /// The mechanical indicator: did the measured values reach the program's minimums?
    pub fn mechanical_passed(&self) -> bool {
        self.peak_temperature_c >= self.program.temperature_c
            && self.hold_minutes >= self.program.hold_minutes
    }
}

impl CycleInput {
    pub fn from_json(mut body: serde_json::Value) -> Result<Self, crate::error::AppError> {
        let Some(object) = body.as_object_mut() else {
            return Err(crate::error::AppError::invalid(
                "body",
                "must be a JSON object",
            ));
        };
        let packs = object
            .remove("packs")
            .unwrap_or_else(|| serde_json::Value::Array(Vec::new()));
        Ok(Self {
            fields: crate::input::from_value(body, "")?,
            packs: crate::input::from_value(packs, "packs")?,
        })
    }

    pub fn validate(&self, now: DateTime<Utc>) -> Vec<FieldError> {
        let mut errors = self.fields.validate(now);
        // No packs is an empty-chamber test cycle (a spore-test rechallenge, a Bowie-Dick run).
        if self.packs.len() > 200 {
            errors.push(FieldError::new("packs", "at most 200 packs per load"));
        }
        for (i, pack) in self.packs.iter().enumerate() {
            required_text(
                &format!("packs[{i}].contents"),
                &pack.contents,
                500,
                &mut errors,
            );
            if let Some(indicator) = &pack.indicator {
                check_indicator(&format!("packs[{i}].indicator"), indicator, &mut errors);
            }
        }
        errors
    }
}

/// The biological indicator of a load, if a spore test rode in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Biological {
    /// No spore test rode in this load.
    None,
    /// A spore test rode in this load and has not been read.
    Pending,
    Negative,
    Positive,
    /// Read, but its control vial did not grow: the test proves nothing and must be repeated.
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
}

/// Pass only if every indicator read so far passed: mechanical, the load's chemical indicator,
/// every pack's chemical indicator, and a spore test in the load if it has been read positive.
pub fn cycle_outcome(
    mechanical: bool,
    load_indicator: bool,
    pack_indicators: impl IntoIterator<Item = bool>,
    biological: Biological,
) -> Outcome {
    let packs_ok = pack_indicators.into_iter().all(|p| p);
    if mechanical && load_indicator && packs_ok && biological != Biological::Positive {
        Outcome::Pass
    } else {
        Outcome::Fail
    }
}

/// Missing numbers just before this cycle on its steriliser, if any (possible missing records).
pub fn cycle_number_gap(number: i64, previous: Option<i64>) -> Option<String> {
    match previous {
        Some(prev) if number - prev > 1 => Some(if number - prev == 2 {
            format!(
                "cycle number {} is missing before this one (possible missing record)",
                prev + 1
            )
        } else {
            format!(
                "cycle numbers {} to {} are missing before this one (possible missing records)",
                prev + 1,
                number - 1
            )
        }),
        _ => None,
    }
}
