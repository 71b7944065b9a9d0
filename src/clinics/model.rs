//! Clinic types and their validation.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;
use crate::jurisdiction::profiles::Profiles;

#[derive(Debug, Clone)]
pub struct NewClinic {
    pub name: String,
    pub timezone: String,
    pub jurisdiction: String,
    pub address: Option<String>,
    pub registration_number: Option<String>,
    /// Whether the first owner works on clients (and so needs practitioner credentials).
    pub owner_works_on_clients: bool,
}

impl NewClinic {
    pub fn validate(&self, profiles: &Profiles) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = self.name.trim();
        if name.is_empty() {
            errors.push(FieldError::new("name", "is required"));
        } else if name.chars().count() > 200 {
            errors.push(FieldError::new("name", "must be at most 200 characters"));
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            errors.push(FieldError::new(
                "timezone",
                "is not an IANA time zone name (for example Europe/London or America/Los_Angeles)",
            ));
        }
        if profiles.get(&self.jurisdiction).is_none() {
            errors.push(FieldError::new(
                "jurisdiction",
                format!(
                    "is not a known profile; choose one of {}",
                    profiles.ids().join(", ")
                ),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClinicView {
    pub id: String,
    pub name: String,
    /// IANA time zone; reports and pages show local times in it.
    pub timezone: String,
    /// The jurisdiction profile the compliance rules follow.
    pub jurisdiction: String,
    pub address: Option<String>,
    pub registration_number: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Days a sterilised pack stays usable; null for an event-related policy (a pack stays
    /// usable until its wrap is damaged, wet or opened).
    pub pack_shelf_life_days: Option<i32>,
}

/// The clinic's settings as an owner reads them, with the jurisdiction's limit beside its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    /// Days a sterilised pack stays usable; null for an event-related policy.
    pub pack_shelf_life_days: Option<i32>,
    /// The longest shelf life the jurisdiction allows, if it sets one; the clinic's own may only
    /// be shorter.
    pub jurisdiction_pack_shelf_life_days: Option<u32>,
    /// The regulation or guidance behind the jurisdiction's limit (or its absence).
    pub jurisdiction_pack_shelf_life_source: String,
    /// IANA time zone the clinic's days and due times are counted in.
    pub timezone: String,
    /// The jurisdiction profile the compliance rules follow, and its name.
    pub jurisdiction: String,
    pub jurisdiction_name: String,
}

pub fn timestamp(t: NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    crate::db::to_utc(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clinic() -> NewClinic {
        NewClinic {
            name: "Ink & Needle".into(),
            timezone: "Europe/London".into(),
            jurisdiction: "gb-eng".into(),
            address: None,
            registration_number: None,
            owner_works_on_clients: false,
        }
    }

    #[test]
    fn validates_each_field() {
        let profiles = Profiles::load(None).unwrap();
        assert!(clinic().validate(&profiles).is_ok());
        let bad = NewClinic {
            name: " ".into(),
            timezone: "Mars/Olympus".into(),
            jurisdiction: "narnia".into(),
            ..clinic()
        };
        let fields: Vec<String> = bad
            .validate(&profiles)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["name", "timezone", "jurisdiction"]);
    }
}
