//! Pseudonymous clients: the minimum a recall needs (name, contact, date of birth for the age
//! check). Other records refer to a client by id only, so personal data stays in one place.

pub mod store;
pub mod usecases;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    pub name: String,
    /// Phone or email, for a recall.
    pub contact: String,
    pub date_of_birth: NaiveDate,
}

impl ClientInput {
    pub fn normalise(&mut self) {
        self.name = self.name.trim().to_owned();
        self.contact = self.contact.trim().to_owned();
    }

    pub fn validate(&self, today: NaiveDate) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (field, value) in [("name", &self.name), ("contact", &self.contact)] {
            if value.is_empty() {
                errors.push(FieldError::new(field, "is required"));
            } else if value.chars().count() > 200 {
                errors.push(FieldError::new(field, "must be at most 200 characters"));
            }
        }
        if self.date_of_birth > today || self.date_of_birth.year() < 1900 {
            errors.push(FieldError::new(
                "date_of_birth",
                "is not a plausible date of birth",
            ));
        }
        errors
    }
}

/// Age in whole years on `on`.
pub fn age_on(date_of_birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - date_of_birth.year();
    if (on.month(), on.day()) < (date_of_birth.month(), date_of_birth.day()) {
        age -= 1;
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_turns_on_the_birthday() {
        let dob = NaiveDate::from_ymd_opt(2008, 11, 25).unwrap();
        assert_eq!(
            age_on(dob, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()),
            17
        );
        assert_eq!(
            age_on(dob, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()),
            18
        );
    }
}
