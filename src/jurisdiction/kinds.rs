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

crate::db::stored::stored_as!(CredentialKind, "credential kind", {
    BloodbornePathogenTraining => "bloodborne_pathogen_training",
    HepatitisB => "hepatitis_b",
    FirstAidCpr => "first_aid_cpr",
    Licence => "licence",
    InfectionControl => "infection_control",
    SmpPmuTraining => "smp_pmu_training",
});

impl CredentialKind {
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

crate::db::stored::stored_as!(LotKind, "lot kind", {
    NeedleCartridge => "needle_cartridge",
    Pigment => "pigment",
    Other => "other",
});

impl LotKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::NeedleCartridge => "needle-cartridge lot",
            Self::Pigment => "pigment lot",
            Self::Other => "lot",
        }
    }
}

/// A practitioner's hepatitis B status. OSHA 29 CFR 1910.1030(f)(2) asks only that the vaccine be
/// offered (any of these shows it was); a profile may accept fewer (California: vaccination or
/// immunity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HepatitisBStatus {
    /// Offered and accepted; the vaccination series is not complete yet.
    Offered,
    Vaccinated,
    ImmuneByTitre,
    /// Declined, with the date of the signed declination (OSHA Appendix A).
    Declined,
    Contraindicated,
}

crate::db::stored::stored_as!(HepatitisBStatus, "hepatitis B status", {
    Offered => "offered",
    Vaccinated => "vaccinated",
    ImmuneByTitre => "immune_by_titre",
    Declined => "declined",
    Contraindicated => "contraindicated",
});

/// What a jurisdiction requires of a credential kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Requirement {
    pub kind: CredentialKind,
    /// The credential must have been issued within this many days (e.g. yearly training).
    pub max_age_days: Option<i64>,
    /// For hepatitis B: the statuses that meet it (all of them when absent).
    pub accepts: Option<Vec<HepatitisBStatus>>,
}

/// Until jurisdiction profiles exist: BBP training within 365 days (OSHA 1910.1030), hepatitis
/// B status on file, licence unexpired.
pub fn default_requirements() -> Vec<Requirement> {
    vec![
        Requirement {
            kind: CredentialKind::BloodbornePathogenTraining,
            max_age_days: Some(365),
            accepts: None,
        },
        Requirement {
            kind: CredentialKind::HepatitisB,
            max_age_days: None,
            accepts: None,
        },
        Requirement {
            kind: CredentialKind::Licence,
            max_age_days: None,
            accepts: None,
        },
    ]
}
