//! Sterilisation types, their validation, and the values derived from them: a cycle's
//! indicators and outcome, a pack's state, the look-back window of a failed spore test.
//! Everything here is pure; `store` does the I/O.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

// ---------------------------------------------------------------------------------------------
// Physics

/// Saturated steam temperatures a steam steriliser can plausibly report (°C). Small steam
/// sterilisers run 121–137 °C (DOMAIN.md 1.1); anything outside this band is a typing error.
pub const MIN_TEMPERATURE_C: f64 = 100.0;
pub const MAX_TEMPERATURE_C: f64 = 140.0;

/// How far a measured absolute pressure may stray from saturated steam at the measured
/// temperature: ±10 % (air in the chamber raises it, superheat lowers it, gauges drift).
pub const PRESSURE_TOLERANCE: f64 = 0.10;

/// Absolute pressure (kPa) of saturated steam at `celsius`, by the Antoine equation for water
/// (constants for 99–374 °C): log10(P / mmHg) = 8.14019 − 1810.94 / (244.485 + T).
pub fn saturation_pressure_kpa(celsius: f64) -> f64 {
    let mmhg = 10f64.powf(8.14019 - 1810.94 / (244.485 + celsius));
    mmhg * 0.133_322_368
}

fn check_temperature(field: &str, celsius: f64, errors: &mut Vec<FieldError>) {
    if !celsius.is_finite() || !(MIN_TEMPERATURE_C..=MAX_TEMPERATURE_C).contains(&celsius) {
        errors.push(FieldError::new(
            field,
            format!(
                "{celsius} °C is not a steam sterilisation temperature (expected {MIN_TEMPERATURE_C}–{MAX_TEMPERATURE_C} °C)"
            ),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Sterilisers

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SteriliserKind {
    /// Dynamic air removal (class B); needs a daily air-removal test.
    PreVacuum,
    /// Gravity displacement (class N).
    Gravity,
    Other,
}

impl SteriliserKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreVacuum => "pre_vacuum",
            Self::Gravity => "gravity",
            Self::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "pre_vacuum" => Self::PreVacuum,
            "gravity" => Self::Gravity,
            _ => Self::Other,
        }
    }
}

/// The fields of a steriliser record (what is created, and what an amendment may correct).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SteriliserInput {
    pub make: String,
    pub model: String,
    /// Unique within the clinic.
    pub serial_number: String,
    pub kind: SteriliserKind,
    pub chamber_litres: Option<f64>,
    pub location: Option<String>,
    pub installed_on: Option<NaiveDate>,
}

fn required_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        errors.push(FieldError::new(field, "is required"));
    } else if trimmed.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

fn optional_text(field: &str, value: &Option<String>, max: usize, errors: &mut Vec<FieldError>) {
    if let Some(v) = value {
        if v.chars().count() > max {
            errors.push(FieldError::new(
                field,
                format!("must be at most {max} characters"),
            ));
        }
    }
}

fn trim_opt(value: &mut Option<String>) {
    if let Some(v) = value {
        *v = v.trim().to_owned();
        if v.is_empty() {
            *value = None;
        }
    }
}

impl SteriliserInput {
    pub fn normalise(&mut self) {
        self.make = self.make.trim().to_owned();
        self.model = self.model.trim().to_owned();
        self.serial_number = self.serial_number.trim().to_owned();
        trim_opt(&mut self.location);
    }

    pub fn validate(&self, today: NaiveDate) -> Vec<FieldError> {
        let mut errors = Vec::new();
        required_text("make", &self.make, 100, &mut errors);
        required_text("model", &self.model, 100, &mut errors);
        required_text("serial_number", &self.serial_number, 100, &mut errors);
        optional_text("location", &self.location, 200, &mut errors);
        if let Some(litres) = self.chamber_litres {
            if !litres.is_finite() || litres <= 0.0 || litres > 1000.0 {
                errors.push(FieldError::new(
                    "chamber_litres",
                    "must be more than 0 and at most 1000",
                ));
            }
        }
        if self.installed_on.is_some_and(|d| d > today) {
            errors.push(FieldError::new("installed_on", "must not be in the future"));
        }
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Cycles

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
    /// Minimum sterilising temperature, °C.
    pub temperature_c: f64,
    /// Minimum hold (exposure) time at that temperature, minutes.
    pub hold_minutes: f64,
}

/// The fields of a cycle record (what is created, and what an amendment may correct).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CycleFields {
    pub steriliser_id: String,
    /// The steriliser's own counter, as printed on its record.
    pub cycle_number: i64,
    pub program: Program,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Highest chamber temperature measured, °C.
    pub peak_temperature_c: f64,
    /// Absolute chamber pressure at the peak, kPa (saturated steam: about 204 kPa at 121 °C,
    /// 304 kPa at 134 °C); accepted within ±10 % of saturation at the peak temperature.
    pub peak_pressure_kpa: f64,
    /// Time held at or above the program temperature, minutes.
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

fn check_indicator(field: &str, i: &ChemicalIndicator, errors: &mut Vec<FieldError>) {
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

// ---------------------------------------------------------------------------------------------
// Spore tests

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Incubation {
    /// Read in the clinic's own incubator after `hours`.
    InHouse { hours: f64 },
    /// Posted to a laboratory, which reports by its deadline.
    MailIn {
        posted_on: NaiveDate,
        lab_name: String,
        lab_deadline: NaiveDate,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SporeTestInput {
    pub steriliser_id: String,
    /// The cycle (load) the test rode in; it must be a cycle of the same steriliser.
    pub cycle_id: String,
    /// The biological indicator product, e.g. "Attest 1292".
    pub bi_product: String,
    pub bi_lot: String,
    pub placed_at: DateTime<Utc>,
    pub incubation: Incubation,
}

impl SporeTestInput {
    pub fn normalise(&mut self) {
        self.bi_product = self.bi_product.trim().to_owned();
        self.bi_lot = self.bi_lot.trim().to_owned();
        self.placed_at = crate::db::to_utc(crate::db::truncate(self.placed_at.naive_utc()));
        if let Incubation::MailIn { lab_name, .. } = &mut self.incubation {
            *lab_name = lab_name.trim().to_owned();
        }
    }

    pub fn validate(&self, now: DateTime<Utc>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        required_text("bi_product", &self.bi_product, 200, &mut errors);
        required_text("bi_lot", &self.bi_lot, 100, &mut errors);
        if self.placed_at > now + Duration::minutes(1) {
            errors.push(FieldError::new("placed_at", "must not be in the future"));
        }
        match &self.incubation {
            Incubation::InHouse { hours } => {
                if !(hours.is_finite() && *hours > 0.0 && *hours <= 240.0) {
                    errors.push(FieldError::new(
                        "incubation.hours",
                        "must be more than 0 and at most 240",
                    ));
                }
            }
            Incubation::MailIn {
                posted_on,
                lab_name,
                lab_deadline,
            } => {
                required_text("incubation.lab_name", lab_name, 200, &mut errors);
                if *posted_on < self.placed_at.date_naive() {
                    errors.push(FieldError::new(
                        "incubation.posted_on",
                        "must not be before the test was placed",
                    ));
                }
                if lab_deadline < posted_on {
                    errors.push(FieldError::new(
                        "incubation.lab_deadline",
                        "must not be before posted_on",
                    ));
                }
            }
        }
        errors
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SporeResult {
    /// No growth: the load was sterilised (pass).
    Negative,
    /// Growth: the steriliser failed (fail).
    Positive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControlResult {
    /// The unprocessed control vial grew, so the spores were viable and the test is valid.
    Growth,
    /// The control did not grow: the test is invalid and must be repeated.
    NoGrowth,
}

// The one place these closed sets meet the database's text columns. Reading is fail-safe: a
// stored value that is not exactly a passing one never reads as a pass.
impl SporeResult {
    pub fn as_db(self) -> &'static str {
        match self {
            Self::Negative => "negative",
            Self::Positive => "positive",
        }
    }

    /// Only `negative` is a negative: anything else counts as growth.
    pub fn from_db(value: &str) -> Self {
        if value == "negative" {
            Self::Negative
        } else {
            Self::Positive
        }
    }
}

impl ControlResult {
    pub fn as_db(self) -> &'static str {
        match self {
            Self::Growth => "growth",
            Self::NoGrowth => "no_growth",
        }
    }

    /// Only `growth` makes a reading valid.
    pub fn from_db(value: &str) -> Self {
        if value == "growth" {
            Self::Growth
        } else {
            Self::NoGrowth
        }
    }
}

/// Whether a stored reading is a valid negative: the only reading that passes a steriliser.
pub fn is_valid_negative(result: &str, control: &str) -> bool {
    SporeResult::from_db(result) == SporeResult::Negative
        && ControlResult::from_db(control) == ControlResult::Growth
}

/// Whether a stored reading is a valid positive: the steriliser failed.
pub fn is_valid_positive(result: &str, control: &str) -> bool {
    SporeResult::from_db(result) == SporeResult::Positive
        && ControlResult::from_db(control) == ControlResult::Growth
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SporeResultInput {
    pub result: SporeResult,
    pub control_result: ControlResult,
    pub read_at: DateTime<Utc>,
    /// The laboratory's report number, for mail-in tests.
    pub lab_reference: Option<String>,
}

impl SporeResultInput {
    pub fn validate(&self, placed_at: DateTime<Utc>, now: DateTime<Utc>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.read_at < placed_at {
            errors.push(FieldError::new(
                "read_at",
                "must not be before the test was placed",
            ));
        }
        if self.read_at > now + Duration::minutes(1) {
            errors.push(FieldError::new("read_at", "must not be in the future"));
        }
        optional_text("lab_reference", &self.lab_reference, 200, &mut errors);
        errors
    }
}

/// A read spore test, as the derivations need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadTest {
    /// When the load it rode in started: tests are ordered by their loads.
    pub cycle_started_at: NaiveDateTime,
    pub result: SporeResult,
    pub valid: bool,
}

pub fn biological(test_placed: bool, read: Option<(SporeResult, bool)>) -> Biological {
    match (test_placed, read) {
        (false, _) => Biological::None,
        (true, None) => Biological::Pending,
        (true, Some((_, false))) => Biological::Invalid,
        (true, Some((SporeResult::Negative, true))) => Biological::Negative,
        (true, Some((SporeResult::Positive, true))) => Biological::Positive,
    }
}

/// A span of loads by start time; `None` bounds are open.
pub type Window = (Option<NaiveDateTime>, Option<NaiveDateTime>);

/// The loads a positive spore test puts in doubt: every load of that steriliser after the load
/// of the last valid negative test before it, up to (not including) the load of the first valid
/// negative test after it (the passing retest). `None` bounds are open. CDC / NEHA: recall items
/// "back to the last negative BI".
pub fn lookback_windows(tests: &[ReadTest]) -> Vec<Window> {
    let negatives: Vec<NaiveDateTime> = tests
        .iter()
        .filter(|t| t.valid && t.result == SporeResult::Negative)
        .map(|t| t.cycle_started_at)
        .collect();
    tests
        .iter()
        .filter(|t| t.valid && t.result == SporeResult::Positive)
        .map(|p| {
            let before = negatives
                .iter()
                .filter(|n| **n < p.cycle_started_at)
                .max()
                .copied();
            let after = negatives
                .iter()
                .filter(|n| **n > p.cycle_started_at)
                .min()
                .copied();
            (before, after)
        })
        .collect()
}

pub fn in_window(started_at: NaiveDateTime, window: &Window) -> bool {
    window.0.is_none_or(|from| started_at > from) && window.1.is_none_or(|to| started_at < to)
}

// ---------------------------------------------------------------------------------------------
// Packs

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PackState {
    /// Its load carried a spore test that has not been read yet.
    Pending,
    /// Fit to use.
    Released,
    /// Must not be used: the load failed, or a failed spore test reaches back to it.
    Quarantined,
    /// Past its shelf life.
    Expired,
    /// Opened for a client.
    Used,
}

/// Everything a pack's state depends on.
#[derive(Debug, Clone)]
pub struct PackFacts {
    pub used: bool,
    pub cycle_outcome: Outcome,
    pub cycle_started_at: NaiveDateTime,
    pub biological: Biological,
    pub lookback: Vec<Window>,
    pub expires_at: Option<NaiveDateTime>,
    /// Its load ran after the steriliser's spore test fell overdue, and no later test of that
    /// steriliser has read negative yet (DOMAIN.md rule 1).
    pub run_while_overdue: bool,
}

/// The pack's state and why. Used beats everything (it is history); then quarantine (a failed
/// load or look-back); then expiry; then a spore test still incubating.
pub fn pack_state(f: &PackFacts, now: NaiveDateTime) -> (PackState, String) {
    if f.used {
        return (PackState::Used, "opened for a client session".into());
    }
    if f.cycle_outcome == Outcome::Fail {
        return (
            PackState::Quarantined,
            "its load failed an indicator".into(),
        );
    }
    if f.lookback.iter().any(|w| in_window(f.cycle_started_at, w)) {
        return (
            PackState::Quarantined,
            "a positive spore test reaches back to its load: reprocess it".into(),
        );
    }
    if f.run_while_overdue {
        return (
            PackState::Pending,
            "its load ran while the steriliser's spore test was overdue: hold it until a spore test of that steriliser reads negative".into(),
        );
    }
    if let Some(expiry) = f.expires_at {
        if expiry <= now {
            return (
                PackState::Expired,
                "past its shelf life: reprocess it".into(),
            );
        }
    }
    match f.biological {
        Biological::Pending => (
            PackState::Pending,
            "its load's spore test has not been read".into(),
        ),
        Biological::Invalid => (
            PackState::Pending,
            "its load's spore test was invalid (control did not grow); repeat it".into(),
        ),
        _ => (PackState::Released, "all indicators passed".into()),
    }
}

/// DOMAIN.md rule 1: a load started after its steriliser's spore test fell due (the end of the
/// clinic-local day `interval_days` after the last negative test's load) is not releasable until
/// a spore test in a load started at or after it reads negative. A steriliser with no negative
/// test yet is left to rule 2 (a test after installation), not judged here.
pub fn run_while_overdue(
    load_started: NaiveDateTime,
    negatives: &[NaiveDateTime],
    interval_days: Option<u32>,
    tz: chrono_tz::Tz,
) -> bool {
    let Some(days) = interval_days else {
        return false;
    };
    let Some(last) = negatives.iter().filter(|t| **t < load_started).max() else {
        return false;
    };
    let due_day = last.and_utc().with_timezone(&tz).date_naive() + Duration::days(i64::from(days));
    if load_started <= crate::incidents::model::end_of_day(due_day, tz) {
        return false;
    }
    !negatives.iter().any(|t| *t >= load_started)
}

/// Crockford base 32 without the letters people misread (I, L, O, U).
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A short code to print on the pack and type back: `XXX-XXX` (30 bits).
pub fn new_pack_code() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(7);
    for i in 0..6 {
        if i == 3 {
            code.push('-');
        }
        code.push(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char);
    }
    code
}

/// Accepts a typed code with any case, spaces or dashes, and the usual misreadings.
pub fn normalise_pack_code(typed: &str) -> Option<String> {
    let chars: Vec<char> = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if chars.len() != 6 || !chars.iter().all(|c| CODE_ALPHABET.contains(&(*c as u8))) {
        return None;
    }
    Some(format!(
        "{}-{}",
        chars[..3].iter().collect::<String>(),
        chars[3..].iter().collect::<String>()
    ))
}

/// Initials for the pack label, e.g. "Sam Q. Tech" → "SQT".
pub fn initials(name: &str) -> String {
    name.split(|c: char| c.is_whitespace() || c == '.' || c == '-' || c == '@')
        .filter_map(|w| w.chars().next())
        .filter(|c| c.is_alphabetic())
        .take(4)
        .flat_map(char::to_uppercase)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Air-removal tests

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AirRemovalTestType {
    BowieDick,
    Helix,
    Electronic,
}

impl AirRemovalTestType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BowieDick => "bowie_dick",
            Self::Helix => "helix",
            Self::Electronic => "electronic",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "helix" => Self::Helix,
            "electronic" => Self::Electronic,
            _ => Self::BowieDick,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AirRemovalInput {
    pub steriliser_id: String,
    pub performed_at: DateTime<Utc>,
    pub test_type: AirRemovalTestType,
    /// Uniform colour change (Bowie-Dick), or the device's pass.
    pub passed: bool,
    pub notes: Option<String>,
}

impl AirRemovalInput {
    pub fn normalise(&mut self) {
        trim_opt(&mut self.notes);
        self.performed_at = crate::db::to_utc(crate::db::truncate(self.performed_at.naive_utc()));
    }

    pub fn validate(&self, now: DateTime<Utc>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.performed_at > now + Duration::minutes(1) {
            errors.push(FieldError::new("performed_at", "must not be in the future"));
        }
        optional_text("notes", &self.notes, 2000, &mut errors);
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0).unwrap()
    }

    fn cycle() -> CycleFields {
        CycleFields {
            steriliser_id: "s".into(),
            cycle_number: 7,
            program: Program {
                name: "134 °C / 3.5 min".into(),
                temperature_c: 134.0,
                hold_minutes: 3.5,
            },
            started_at: t(9, 0),
            finished_at: t(9, 40),
            peak_temperature_c: 135.0,
            peak_pressure_kpa: 313.0,
            hold_minutes: 4.0,
            operator_id: None,
            load_indicator: ChemicalIndicator {
                indicator_type: 5,
                passed: true,
            },
            notes: None,
        }
    }

    fn fields_of(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn saturated_steam_matches_steam_tables() {
        // Steam tables: 121 °C ≈ 205 kPa, 134 °C ≈ 304 kPa absolute.
        assert!((saturation_pressure_kpa(121.0) - 205.0).abs() < 3.0);
        assert!((saturation_pressure_kpa(134.0) - 304.0).abs() < 3.0);
    }

    #[test]
    fn a_plausible_cycle_validates_and_passes_mechanically() {
        let c = cycle();
        assert!(
            c.validate(t(12, 0)).is_empty(),
            "{:?}",
            c.validate(t(12, 0))
        );
        assert!(c.mechanical_passed());
        let short_hold = CycleFields {
            hold_minutes: 3.0,
            ..cycle()
        };
        assert!(!short_hold.mechanical_passed());
        let cool = CycleFields {
            peak_temperature_c: 133.5,
            peak_pressure_kpa: 300.0,
            ..cycle()
        };
        assert!(!cool.mechanical_passed());
    }

    #[test]
    fn physics_boundaries() {
        let now = t(12, 0);
        assert_eq!(
            fields_of(
                CycleFields {
                    peak_temperature_c: 300.0,
                    ..cycle()
                }
                .validate(now)
            ),
            ["peak_temperature_c"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    peak_temperature_c: 140.1,
                    ..cycle()
                }
                .validate(now)
            ),
            ["peak_temperature_c"]
        );
        // 10 % either side of saturation is accepted; just beyond is not.
        let sat = saturation_pressure_kpa(135.0);
        assert!(CycleFields {
            peak_pressure_kpa: sat * 1.099,
            ..cycle()
        }
        .validate(now)
        .is_empty());
        assert!(CycleFields {
            peak_pressure_kpa: sat * 0.901,
            ..cycle()
        }
        .validate(now)
        .is_empty());
        assert_eq!(
            fields_of(
                CycleFields {
                    peak_pressure_kpa: sat * 1.11,
                    ..cycle()
                }
                .validate(now)
            ),
            ["peak_pressure_kpa"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    peak_pressure_kpa: 101.0,
                    ..cycle()
                }
                .validate(now)
            ),
            ["peak_pressure_kpa"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    hold_minutes: 0.0,
                    ..cycle()
                }
                .validate(now)
            ),
            ["hold_minutes"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    finished_at: t(8, 59),
                    ..cycle()
                }
                .validate(now)
            ),
            ["finished_at"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    finished_at: t(12, 2),
                    ..cycle()
                }
                .validate(now)
            ),
            ["finished_at"]
        );
        assert!(CycleFields {
            finished_at: t(12, 1),
            ..cycle()
        }
        .validate(now)
        .is_empty());
        assert_eq!(
            fields_of(
                CycleFields {
                    hold_minutes: 41.0,
                    program: Program {
                        hold_minutes: 3.5,
                        ..cycle().program
                    },
                    ..cycle()
                }
                .validate(now)
            ),
            ["hold_minutes"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    load_indicator: ChemicalIndicator {
                        indicator_type: 7,
                        passed: true
                    },
                    ..cycle()
                }
                .validate(now)
            ),
            ["load_indicator.type"]
        );
    }

    #[test]
    fn outcome_needs_every_indicator() {
        assert_eq!(
            cycle_outcome(true, true, [true, true], Biological::None),
            Outcome::Pass
        );
        assert_eq!(
            cycle_outcome(true, true, [true, false], Biological::None),
            Outcome::Fail
        );
        assert_eq!(
            cycle_outcome(false, true, [], Biological::None),
            Outcome::Fail
        );
        assert_eq!(
            cycle_outcome(true, false, [], Biological::None),
            Outcome::Fail
        );
        assert_eq!(
            cycle_outcome(true, true, [], Biological::Positive),
            Outcome::Fail
        );
        assert_eq!(
            cycle_outcome(true, true, [], Biological::Pending),
            Outcome::Pass
        );
    }

    #[test]
    fn gaps_in_cycle_numbers_are_named() {
        assert_eq!(cycle_number_gap(8, Some(7)), None);
        assert_eq!(cycle_number_gap(1, None), None);
        assert!(cycle_number_gap(9, Some(7))
            .unwrap()
            .contains("cycle number 8 is missing"));
        assert!(cycle_number_gap(12, Some(7)).unwrap().contains("8 to 11"));
    }

    fn read(h: u32, result: SporeResult) -> ReadTest {
        ReadTest {
            cycle_started_at: t(h, 0).naive_utc(),
            result,
            valid: true,
        }
    }

    #[test]
    fn lookback_reaches_back_to_the_last_negative_and_ends_at_the_retest() {
        let tests = [
            read(8, SporeResult::Negative),
            read(11, SporeResult::Positive),
            read(15, SporeResult::Negative),
        ];
        let windows = lookback_windows(&tests);
        assert_eq!(windows.len(), 1);
        let w = &windows[0];
        assert!(
            !in_window(t(8, 0).naive_utc(), w),
            "the load of the last negative is fine"
        );
        assert!(in_window(t(9, 0).naive_utc(), w));
        assert!(in_window(t(11, 0).naive_utc(), w), "the failed load itself");
        assert!(in_window(t(14, 59).naive_utc(), w));
        assert!(
            !in_window(t(15, 0).naive_utc(), w),
            "the passing retest's load"
        );
        assert!(!in_window(t(16, 0).naive_utc(), w));
        // Without a retest the window stays open; an invalid negative does not close it.
        let open = lookback_windows(&[
            read(11, SporeResult::Positive),
            ReadTest {
                valid: false,
                ..read(15, SporeResult::Negative)
            },
        ]);
        assert_eq!(open, vec![(None, None)]);
    }

    #[test]
    fn loads_run_while_the_spore_test_is_overdue_wait_for_the_next_negative() {
        let tz = chrono_tz::Europe::London;
        let day = |d: u32, h: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 3, d)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
        };
        // Negative test in a load on 1 March; weekly: due by the end of 8 March (London time).
        let negatives = [day(1, 21)];
        assert!(!run_while_overdue(day(8, 23), &negatives, Some(7), tz));
        assert!(run_while_overdue(day(9, 8), &negatives, Some(7), tz));
        // The next negative test, run in a load after it, releases it.
        assert!(!run_while_overdue(
            day(9, 8),
            &[day(1, 21), day(9, 21)],
            Some(7),
            tz
        ));
        // Across the clock change (29 March): due by the end of 29 March, London time.
        let negatives = [day(22, 21)];
        assert!(!run_while_overdue(day(29, 22), &negatives, Some(7), tz));
        // 23:00 UTC on the 29th is already 00:00 on the 30th in London: overdue.
        assert!(run_while_overdue(day(29, 23), &negatives, Some(7), tz));
        assert!(run_while_overdue(day(30, 7), &negatives, Some(7), tz));
        // No periodic test in the profile, or no negative test yet: not judged here.
        assert!(!run_while_overdue(day(30, 7), &negatives, None, tz));
        assert!(!run_while_overdue(day(30, 7), &[], Some(7), tz));
    }

    #[test]
    fn pack_states() {
        let now = t(12, 0).naive_utc();
        let base = PackFacts {
            used: false,
            cycle_outcome: Outcome::Pass,
            cycle_started_at: t(9, 0).naive_utc(),
            biological: Biological::None,
            lookback: vec![],
            expires_at: Some(t(13, 0).naive_utc()),
            run_while_overdue: false,
        };
        assert_eq!(pack_state(&base, now).0, PackState::Released);
        assert_eq!(
            pack_state(
                &PackFacts {
                    run_while_overdue: true,
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Pending
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    biological: Biological::Pending,
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Pending
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    cycle_outcome: Outcome::Fail,
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Quarantined
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    lookback: vec![(None, None)],
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Quarantined
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    expires_at: Some(now),
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Expired
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    expires_at: None,
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Released
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    used: true,
                    cycle_outcome: Outcome::Fail,
                    ..base
                },
                now
            )
            .0,
            PackState::Used
        );
    }

    #[test]
    fn pack_codes_are_short_and_forgiving() {
        for _ in 0..100 {
            let code = new_pack_code();
            assert_eq!(code.len(), 7);
            assert_eq!(normalise_pack_code(&code).as_deref(), Some(code.as_str()));
            assert_eq!(
                normalise_pack_code(&code.to_lowercase().replace('-', " ")).as_deref(),
                Some(code.as_str())
            );
        }
        assert_eq!(normalise_pack_code("ab0-o1l").as_deref(), Some("AB0-011"));
        assert_eq!(normalise_pack_code("AB0-01"), None);
        assert_eq!(normalise_pack_code("AB0-01U"), None);
    }

    #[test]
    fn initials_for_labels() {
        assert_eq!(initials("Sam Q. Tech"), "SQT");
        assert_eq!(initials("owner@ink.example"), "OIE");
        assert_eq!(initials("Zoë"), "Z");
    }
}

#[cfg(test)]
mod stored_readings {
    use super::*;

    #[test]
    fn only_an_exact_valid_negative_passes() {
        assert!(is_valid_negative("negative", "growth"));
        for (result, control) in [
            ("negative", "no_growth"),
            ("Negative", "growth"),
            ("", "growth"),
            ("positive", "growth"),
            ("negative", "grown"),
        ] {
            assert!(!is_valid_negative(result, control), "{result} {control}");
        }
        assert!(is_valid_positive("positive", "growth"));
        assert!(
            is_valid_positive("unreadable", "growth"),
            "unknown never reads as a pass"
        );
        assert!(!is_valid_positive("positive", "no_growth"));
        for r in [SporeResult::Negative, SporeResult::Positive] {
            assert_eq!(SporeResult::from_db(r.as_db()), r);
        }
        for c in [ControlResult::Growth, ControlResult::NoGrowth] {
            assert_eq!(ControlResult::from_db(c.as_db()), c);
        }
    }
}
