//! Air-removal (Bowie-Dick) tests.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AirRemovalTestType {
    BowieDick,
    Helix,
    Electronic,
}

crate::db::stored::stored_as!(AirRemovalTestType, "air-removal test type", {
    BowieDick => "bowie_dick",
    Helix => "helix",
    Electronic => "electronic",
});

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
