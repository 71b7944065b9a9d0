//! Credential types, their validation, and the eligibility rule: may this person work on a client
//! at this moment? The rule is pure; the jurisdiction profile supplies the requirements.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

pub use crate::jurisdiction::kinds::HepatitisBStatus;

/// The fields of a credential record (what is submitted, and what an amendment may correct).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialInput {
    /// The member it belongs to.
    pub user_id: String,
    pub kind: CredentialKind,
    pub issuer: Option<String>,
    /// Certificate, licence or registration number.
    pub number: Option<String>,
    pub issued_on: Option<NaiveDate>,
    pub expires_on: Option<NaiveDate>,
    /// Required for `hepatitis_b`, and only there.
    pub hepatitis_b_status: Option<HepatitisBStatus>,
    /// The date of the signed declination, when the status is `declined`.
    pub declined_on: Option<NaiveDate>,
}

fn trim_opt(value: &mut Option<String>) {
    if let Some(v) = value {
        *v = v.trim().to_owned();
        if v.is_empty() {
            *value = None;
        }
    }
}

impl CredentialInput {
    pub fn normalise(&mut self) {
        self.user_id = self.user_id.trim().to_owned();
        trim_opt(&mut self.issuer);
        trim_opt(&mut self.number);
    }

    pub fn validate(&self, today: NaiveDate) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (field, value) in [("issuer", &self.issuer), ("number", &self.number)] {
            if value.as_ref().is_some_and(|v| v.chars().count() > 200) {
                errors.push(FieldError::new(field, "must be at most 200 characters"));
            }
        }
        if self.issued_on.is_some_and(|d| d > today) {
            errors.push(FieldError::new("issued_on", "must not be in the future"));
        }
        if let (Some(issued), Some(expires)) = (self.issued_on, self.expires_on) {
            if expires < issued {
                errors.push(FieldError::new("expires_on", "is before issued_on"));
            }
        }
        match self.kind {
            CredentialKind::HepatitisB => match self.hepatitis_b_status {
                None => errors.push(FieldError::new("hepatitis_b_status", "is required for a hepatitis B credential")),
                Some(HepatitisBStatus::Declined) => match self.declined_on {
                    None => errors.push(FieldError::new("declined_on", "is required when the vaccine was declined (the date of the signed declination)")),
                    Some(d) if d > today => errors.push(FieldError::new("declined_on", "must not be in the future")),
                    _ => {}
                },
                Some(_) if self.declined_on.is_some() => {
                    errors.push(FieldError::new("declined_on", "only applies when the vaccine was declined"))
                }
                Some(_) => {}
            },
            kind => {
                if self.hepatitis_b_status.is_some() {
                    errors.push(FieldError::new("hepatitis_b_status", "only applies to a hepatitis B credential"));
                }
                if self.declined_on.is_some() {
                    errors.push(FieldError::new("declined_on", "only applies to a hepatitis B credential"));
                }
                if self.issued_on.is_none() {
                    errors.push(FieldError::new("issued_on", format!("is required for {}", kind.label())));
                }
                if kind == CredentialKind::Licence && self.number.is_none() {
                    errors.push(FieldError::new("number", "is required for a licence"));
                }
            }
        }
        errors
    }
}

pub use crate::jurisdiction::kinds::{default_requirements, CredentialKind, Requirement};

/// A credential as the rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFact {
    pub id: String,
    pub kind: CredentialKind,
    pub hepatitis_b_status: Option<HepatitisBStatus>,
    pub issued_on: Option<NaiveDate>,
    pub expires_on: Option<NaiveDate>,
    pub verified: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Shortfall {
    Missing,
    /// On file, but its status is not one the jurisdiction accepts.
    NotAccepted,
    Expired,
    Unverified,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    pub kind: CredentialKind,
    pub problem: Shortfall,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Eligibility {
    pub eligible: bool,
    /// Why not: one entry per unmet requirement.
    pub reasons: Vec<Reason>,
    /// Requirements met now that lapse within 30 days.
    pub warnings: Vec<String>,
}

/// The last day a credential counts for a requirement, if it ends at all.
fn valid_until(fact: &CredentialFact, requirement: &Requirement) -> Option<NaiveDate> {
    let by_age = match (requirement.max_age_days, fact.issued_on) {
        (Some(days), Some(issued)) => Some(issued + Duration::days(days)),
        _ => None,
    };
    match (by_age, fact.expires_on) {
        (Some(a), Some(e)) => Some(a.min(e)),
        (a, e) => a.or(e),
    }
}

/// May someone holding `facts` work on a client on `on`? Credentials issued after that day do
/// not count; an unverified credential never counts.
pub fn eligibility(
    requirements: &[Requirement],
    facts: &[CredentialFact],
    on: NaiveDate,
) -> Eligibility {
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();
    for req in requirements {
        let on_file: Vec<&CredentialFact> = facts
            .iter()
            .filter(|f| f.kind == req.kind && f.issued_on.is_none_or(|d| d <= on))
            .collect();
        let accepted = |f: &&CredentialFact| match (&req.accepts, f.hepatitis_b_status) {
            (Some(accepts), Some(status)) => accepts.contains(&status),
            (Some(_), None) => false,
            (None, _) => true,
        };
        let held: Vec<&CredentialFact> = on_file.iter().copied().filter(accepted).collect();
        let current: Vec<&CredentialFact> = held
            .iter()
            .copied()
            .filter(|f| valid_until(f, req).is_none_or(|until| on <= until))
            .collect();
        let label = req.kind.label();
        let best = current
            .iter()
            .filter(|f| f.verified)
            .max_by_key(|f| valid_until(f, req).unwrap_or(NaiveDate::MAX));
        match best {
            Some(f) => {
                if let Some(until) = valid_until(f, req) {
                    if until - on <= Duration::days(30) {
                        warnings.push(format!("{label} lapses after {until}"));
                    }
                }
            }
            None => {
                let (problem, message) = if !current.is_empty() {
                    (
                        Shortfall::Unverified,
                        format!("{label} is on file but not verified by an owner"),
                    )
                } else if !held.is_empty() {
                    let until = held.iter().filter_map(|f| valid_until(f, req)).max();
                    (
                        Shortfall::Expired,
                        match until {
                            Some(d) => format!("{label} lapsed after {d}"),
                            None => format!("{label} has lapsed"),
                        },
                    )
                } else if let (Some(accepts), Some(f)) = (&req.accepts, on_file.first()) {
                    let words: Vec<&str> = accepts.iter().map(|s| s.as_db()).collect();
                    (
                        Shortfall::NotAccepted,
                        format!(
                            "{label} on file is {}, but this jurisdiction needs one of: {}",
                            f.hepatitis_b_status.map_or("not stated", |s| s.as_db()),
                            words.join(", ")
                        ),
                    )
                } else {
                    (Shortfall::Missing, format!("no {label} on file"))
                };
                reasons.push(Reason {
                    kind: req.kind,
                    problem,
                    message,
                });
            }
        }
    }
    Eligibility {
        eligible: reasons.is_empty(),
        reasons,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn fact(
        kind: CredentialKind,
        issued: NaiveDate,
        expires: Option<NaiveDate>,
        verified: bool,
    ) -> CredentialFact {
        CredentialFact {
            id: "c".into(),
            kind,
            hepatitis_b_status: (kind == CredentialKind::HepatitisB)
                .then_some(HepatitisBStatus::Offered),
            issued_on: Some(issued),
            expires_on: expires,
            verified,
        }
    }

    fn all_good() -> Vec<CredentialFact> {
        vec![
            fact(
                CredentialKind::BloodbornePathogenTraining,
                day(2026, 1, 10),
                None,
                true,
            ),
            fact(CredentialKind::HepatitisB, day(2020, 5, 1), None, true),
            fact(
                CredentialKind::Licence,
                day(2025, 6, 1),
                Some(day(2027, 5, 31)),
                true,
            ),
        ]
    }

    #[test]
    fn eligible_with_everything_verified() {
        let e = eligibility(&default_requirements(), &all_good(), day(2026, 11, 25));
        assert!(e.eligible, "{e:?}");
        assert!(e.warnings.is_empty());
    }

    #[test]
    fn bbp_training_counts_for_365_days() {
        let reqs = default_requirements();
        // Issued 2026-01-10: counts through 2027-01-10, lapses on 2027-01-11.
        assert!(eligibility(&reqs, &all_good(), day(2027, 1, 10)).eligible);
        let e = eligibility(&reqs, &all_good(), day(2027, 1, 11));
        assert!(!e.eligible);
        assert_eq!(
            e.reasons[0].kind,
            CredentialKind::BloodbornePathogenTraining
        );
        assert_eq!(e.reasons[0].problem, Shortfall::Expired);
        // 30 days ahead it warns.
        let e = eligibility(&reqs, &all_good(), day(2026, 12, 11));
        assert!(e.eligible);
        assert!(e.warnings[0].contains("2027-01-10"), "{:?}", e.warnings);
    }

    #[test]
    fn licence_expiry_is_inclusive() {
        let reqs = default_requirements();
        assert!(eligibility(&reqs, &all_good(), day(2026, 12, 31)).eligible);
        let mut facts = all_good();
        facts[0].issued_on = Some(day(2027, 1, 1));
        assert!(eligibility(&reqs, &facts, day(2027, 5, 31)).eligible);
        let e = eligibility(&reqs, &facts, day(2027, 6, 1));
        assert_eq!(e.reasons.len(), 1);
        assert_eq!(e.reasons[0].kind, CredentialKind::Licence);
    }

    #[test]
    fn missing_unverified_and_not_yet_issued() {
        let reqs = default_requirements();
        let mut facts = all_good();
        facts[1].verified = false;
        facts.remove(2);
        let e = eligibility(&reqs, &facts, day(2026, 11, 25));
        let problems: Vec<(CredentialKind, Shortfall)> =
            e.reasons.iter().map(|r| (r.kind, r.problem)).collect();
        assert_eq!(
            problems,
            [
                (CredentialKind::HepatitisB, Shortfall::Unverified),
                (CredentialKind::Licence, Shortfall::Missing)
            ]
        );
        // A training recorded later does not make an earlier day compliant.
        let e = eligibility(&reqs, &all_good(), day(2026, 1, 9));
        assert_eq!(
            e.reasons[0].kind,
            CredentialKind::BloodbornePathogenTraining
        );
        assert_eq!(e.reasons[0].problem, Shortfall::Missing);
    }

    fn input() -> CredentialInput {
        CredentialInput {
            user_id: "u".into(),
            kind: CredentialKind::HepatitisB,
            issuer: None,
            number: None,
            issued_on: None,
            expires_on: None,
            hepatitis_b_status: Some(HepatitisBStatus::Declined),
            declined_on: Some(day(2026, 3, 1)),
        }
    }

    #[test]
    fn credential_validation() {
        let today = day(2026, 11, 25);
        let fields = |c: CredentialInput| {
            c.validate(today)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(input()).is_empty());
        assert_eq!(
            fields(CredentialInput {
                declined_on: None,
                ..input()
            }),
            ["declined_on"]
        );
        assert_eq!(
            fields(CredentialInput {
                hepatitis_b_status: None,
                declined_on: None,
                ..input()
            }),
            ["hepatitis_b_status"]
        );
        assert_eq!(
            fields(CredentialInput {
                kind: CredentialKind::Licence,
                hepatitis_b_status: None,
                declined_on: None,
                issued_on: Some(today),
                ..input()
            }),
            ["number"]
        );
        assert_eq!(
            fields(CredentialInput {
                kind: CredentialKind::FirstAidCpr,
                hepatitis_b_status: None,
                declined_on: None,
                issued_on: Some(day(2026, 5, 1)),
                expires_on: Some(day(2026, 4, 1)),
                ..input()
            }),
            ["expires_on"]
        );
    }

    #[test]
    fn a_hepatitis_b_status_meets_a_requirement_only_if_the_jurisdiction_accepts_it() {
        let on = day(2026, 6, 1);
        let offered = [fact(
            CredentialKind::HepatitisB,
            day(2026, 1, 1),
            None,
            true,
        )];
        let any = [Requirement {
            kind: CredentialKind::HepatitisB,
            max_age_days: None,
            accepts: None,
        }];
        assert!(
            eligibility(&any, &offered, on).eligible,
            "OSHA: offered is enough"
        );
        let immunity = [Requirement {
            accepts: Some(vec![
                HepatitisBStatus::Vaccinated,
                HepatitisBStatus::ImmuneByTitre,
            ]),
            ..any[0].clone()
        }];
        let e = eligibility(&immunity, &offered, on);
        assert!(!e.eligible);
        assert_eq!(e.reasons[0].problem, Shortfall::NotAccepted);
        assert!(e.reasons[0].message.contains("offered"), "{:?}", e.reasons);
    }
}
