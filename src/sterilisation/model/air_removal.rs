//! Air-removal (Bowie-Dick) tests, and the other routine tests of a steriliser recorded beside
//! them: HTM 01-05's daily automatic control test and weekly air-leakage test.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AirRemovalTestType {
    /// Air removal (steam penetration): a Bowie-Dick pack.
    BowieDick,
    /// Air removal (steam penetration): a helix (hollow-load) device.
    Helix,
    /// Air removal (steam penetration): an electronic test device.
    Electronic,
    /// The automatic control test: the cycle's time, temperature and pressure against the
    /// steriliser's specification (HTM 01-05, daily).
    AutomaticControl,
    /// The vacuum chamber's air-leakage test (HTM 01-05, weekly).
    AirLeakage,
}

crate::db::stored::stored_as!(AirRemovalTestType, "steriliser test type", {
    BowieDick => "bowie_dick",
    Helix => "helix",
    Electronic => "electronic",
    AutomaticControl => "automatic_control",
    AirLeakage => "air_leakage",
});

impl AirRemovalTestType {
    /// Whether the test shows that air is removed from the load (what the daily air-removal
    /// rule asks for).
    pub fn removes_air(self) -> bool {
        matches!(self, Self::BowieDick | Self::Helix | Self::Electronic)
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
