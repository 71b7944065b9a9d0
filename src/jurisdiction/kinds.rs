//! The closed sets the jurisdictions' rules are written in: the kinds of credential a
//! practitioner holds and the kinds of supply lot a session uses. They sit below the records that
//! use them, so the profiles can name them and the clinic's context can hold a profile.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// OSHA bloodborne-pathogens training, repeated at least yearly.
    BloodbornePathogenTraining,
    /// Hepatitis B vaccination status (or a signed declination).
    HepatitisB,
    FirstAidCpr,
    /// Practitioner licence or registration.
    Licence,
    InfectionControl,
    SmpPmuTraining,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BloodbornePathogenTraining => "bloodborne_pathogen_training",
            Self::HepatitisB => "hepatitis_b",
            Self::FirstAidCpr => "first_aid_cpr",
            Self::Licence => "licence",
            Self::InfectionControl => "infection_control",
            Self::SmpPmuTraining => "smp_pmu_training",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "bloodborne_pathogen_training" => Self::BloodbornePathogenTraining,
            "hepatitis_b" => Self::HepatitisB,
            "first_aid_cpr" => Self::FirstAidCpr,
            "licence" => Self::Licence,
            "infection_control" => Self::InfectionControl,
            _ => Self::SmpPmuTraining,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::BloodbornePathogenTraining => "bloodborne-pathogen training",
            Self::HepatitisB => "hepatitis B status",
            Self::FirstAidCpr => "first aid / CPR",
            Self::Licence => "practitioner licence",
            Self::InfectionControl => "infection-control qualification",
            Self::SmpPmuTraining => "SMP/PMU training",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LotKind {
    NeedleCartridge,
    /// Pigment or ink.
    Pigment,
    /// Any other single-use supply (barrier film, caps, gloves, ...).
    Other,
}

impl LotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NeedleCartridge => "needle_cartridge",
            Self::Pigment => "pigment",
            Self::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "needle_cartridge" => Self::NeedleCartridge,
            "pigment" => Self::Pigment,
            _ => Self::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::NeedleCartridge => "needle-cartridge lot",
            Self::Pigment => "pigment lot",
            Self::Other => "lot",
        }
    }
}

/// What a jurisdiction requires of a credential kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Requirement {
    pub kind: CredentialKind,
    /// The credential must have been issued within this many days (e.g. yearly training).
    pub max_age_days: Option<i64>,
}

/// Until jurisdiction profiles exist: BBP training within 365 days (OSHA 1910.1030), hepatitis
/// B status on file, licence unexpired.
pub fn default_requirements() -> Vec<Requirement> {
    vec![
        Requirement {
            kind: CredentialKind::BloodbornePathogenTraining,
            max_age_days: Some(365),
        },
        Requirement {
            kind: CredentialKind::HepatitisB,
            max_age_days: None,
        },
        Requirement {
            kind: CredentialKind::Licence,
            max_age_days: None,
        },
    ]
}
