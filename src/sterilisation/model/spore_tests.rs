//! Spore tests: results, the one mapping to their stored text, and the look-back window a failed
//! test opens.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Incubation {
    /// Read in the clinic's own incubator after `hours`.
    InHouse {
        /// More than 0, at most 240.
        #[schema(exclusive_minimum = 0, maximum = 240)]
        hours: f64,
    },
    /// Posted to a laboratory, which reports by its deadline.
    MailIn {
        posted_on: NaiveDate,
        lab_name: String,
        lab_deadline: NaiveDate,
    },
}

impl Incubation {
    /// How each kind is kept in the `incubation` column.
    pub const IN_HOUSE: &'static str = "in_house";
    pub const MAIL_IN: &'static str = "mail_in";
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

crate::db::stored::stored_as!(SporeResult, "spore-test result", {
    Negative => "negative",
    Positive => "positive",
});

crate::db::stored::stored_as!(ControlResult, "spore-test control result", {
    Growth => "growth",
    NoGrowth => "no_growth",
});

/// Whether a stored reading is a valid negative: the only reading that passes a steriliser.
/// Fail-safe: a stored value that is not exactly a passing one never reads as a pass.
pub fn is_valid_negative(result: &str, control: &str) -> bool {
    matches!(SporeResult::from_db(result), Ok(SporeResult::Negative))
        && matches!(ControlResult::from_db(control), Ok(ControlResult::Growth))
}

/// Whether a stored reading is a valid positive: the steriliser failed.
/// Fail-safe: a result that does not read as negative counts as growth.
pub fn is_valid_positive(result: &str, control: &str) -> bool {
    !matches!(SporeResult::from_db(result), Ok(SporeResult::Negative))
        && matches!(ControlResult::from_db(control), Ok(ControlResult::Growth))
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

/// A laboratory's correction of a recorded reading: the corrected reading, the laboratory's
/// reference for it, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SporeResultCorrection {
    pub result: SporeResult,
    pub control_result: ControlResult,
    /// When the corrected reading was made.
    pub read_at: DateTime<Utc>,
    /// The laboratory's reference for the corrected report.
    pub lab_reference: String,
    /// Why the reading is corrected (the laboratory's explanation).
    pub reason: String,
}

impl SporeResultCorrection {
    pub fn reading(&self) -> SporeResultInput {
        SporeResultInput {
            result: self.result,
            control_result: self.control_result,
            read_at: self.read_at,
            lab_reference: Some(self.lab_reference.clone()),
        }
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.lab_reference.trim().is_empty() {
            errors.push(FieldError::new(
                "lab_reference",
                "is required: the laboratory's reference for the corrected report",
            ));
        }
        if self.reason.trim().is_empty() {
            errors.push(FieldError::new(
                "reason",
                "is required: say why the reading is corrected",
            ));
        }
        optional_text("reason", &Some(self.reason.clone()), 2000, &mut errors);
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
    /// The load carried no packs: an empty-chamber test, the kind requalification counts.
    pub empty_chamber: bool,
}

impl ReadTest {
    /// A stored reading, fail-safe: only a valid negative reads as negative.
    pub fn from_db(
        result: &str,
        control: &str,
        cycle_started_at: NaiveDateTime,
        empty_chamber: bool,
    ) -> Self {
        Self {
            cycle_started_at,
            empty_chamber,
            result: if is_valid_negative(result, control) {
                SporeResult::Negative
            } else {
                SporeResult::Positive
            },
            valid: matches!(ControlResult::from_db(control), Ok(ControlResult::Growth)),
        }
    }
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

/// Whether the tests read on loads run after `since` requalify the steriliser: `needed`
/// consecutive valid negatives. Where more than one is needed (CDC, AAMI ST79: three in an empty
/// chamber), only empty-chamber tests count and any failing or invalid test starts the count
/// again; a single passing test on any load is enough otherwise.
pub fn requalified_after(reads: &[ReadTest], since: NaiveDateTime, needed: u32) -> bool {
    let mut after: Vec<&ReadTest> = reads
        .iter()
        .filter(|t| t.cycle_started_at > since)
        .collect();
    after.sort_by_key(|t| t.cycle_started_at);
    if needed <= 1 {
        return after
            .iter()
            .any(|t| t.valid && t.result == SporeResult::Negative);
    }
    let mut run = 0;
    for t in after {
        if !(t.valid && t.result == SporeResult::Negative) {
            run = 0;
        } else if t.empty_chamber {
            run += 1;
            if run >= needed {
                return true;
            }
        }
    }
    false
}
