//! Sterilisers: their kinds and what is recorded about them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SteriliserKind {
    /// Dynamic air removal (class B); needs a daily air-removal test.
    PreVacuum,
    /// Gravity displacement (class N).
    Gravity,
    Other,
}

crate::db::stored::stored_as!(SteriliserKind, "steriliser kind", {
    PreVacuum => "pre_vacuum",
    Gravity => "gravity",
    Other => "other",
});

/// The fields of a steriliser record (what is created, and what an amendment may correct).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SteriliserInput {
    pub make: String,
    pub model: String,
    /// Unique within the clinic.
    pub serial_number: String,
    pub kind: SteriliserKind,
    /// More than 0, at most 1000.
    #[schema(exclusive_minimum = 0, maximum = 1000)]
    pub chamber_litres: Option<f64>,
    pub location: Option<String>,
    pub installed_on: Option<NaiveDate>,
}

pub(super) fn required_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
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

pub(super) fn optional_text(
    field: &str,
    value: &Option<String>,
    max: usize,
    errors: &mut Vec<FieldError>,
) {
    if let Some(v) = value {
        if v.chars().count() > max {
            errors.push(FieldError::new(
                field,
                format!("must be at most {max} characters"),
            ));
        }
    }
}

pub(super) fn trim_opt(value: &mut Option<String>) {
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
