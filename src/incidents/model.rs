//! Incident types, validation, and the follow-ups each kind of incident requires, with their
//! due dates (pure).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// Sharps or needle-stick injury: carries the sharps-injury-log fields.
    SharpsInjury,
    BloodBodyFluidExposure,
    AdverseReaction,
    /// Suspected infection reported by a client.
    SuspectedInfection,
    EquipmentFailure,
    Spill,
}

crate::db::stored::stored_as!(IncidentKind, "incident kind", {
    SharpsInjury => "sharps_injury",
    BloodBodyFluidExposure => "blood_body_fluid_exposure",
    AdverseReaction => "adverse_reaction",
    SuspectedInfection => "suspected_infection",
    EquipmentFailure => "equipment_failure",
    Spill => "spill",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    /// Confidential medical evaluation offered to the exposed person.
    EvaluationOffered,
    /// The clinician's written opinion given to the exposed person.
    WrittenOpinion,
    /// Written report to the health authority.
    AuthorityReport,
    Other,
}

crate::db::stored::stored_as!(FollowUpKind, "follow-up kind", {
    EvaluationOffered => "evaluation_offered",
    WrittenOpinion => "written_opinion",
    AuthorityReport => "authority_report",
    Other => "other",
});

/// The sharps-injury-log fields (29 CFR 1904.8; DOMAIN.md 4.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharpsLog {
    pub device_type: String,
    pub device_brand: Option<String>,
    pub work_area: String,
    pub how_it_happened: String,
}

/// A person involved: a member (by user id), the client of the session, or someone named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub name: Option<String>,
    /// E.g. "injured", "source", "witness".
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentInput {
    pub kind: IncidentKind,
    pub occurred_at: DateTime<Utc>,
    /// Where it happened, e.g. "Chair 2".
    pub location: String,
    pub session_id: Option<String>,
    #[serde(default)]
    pub people: Vec<Person>,
    pub description: String,
    pub immediate_actions: String,
    /// Required for a sharps injury.
    pub sharps: Option<SharpsLog>,
}

fn required(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "is required"));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

impl IncidentInput {
    pub fn validate(&self, now: DateTime<Utc>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.occurred_at > now + Duration::minutes(1) {
            errors.push(FieldError::new("occurred_at", "must not be in the future"));
        }
        required("location", &self.location, 200, &mut errors);
        required("description", &self.description, 5000, &mut errors);
        required(
            "immediate_actions",
            &self.immediate_actions,
            5000,
            &mut errors,
        );
        for (i, p) in self.people.iter().enumerate() {
            required(&format!("people[{i}].role"), &p.role, 100, &mut errors);
            let named = [
                p.user_id.is_some(),
                p.client_id.is_some(),
                p.name.as_ref().is_some_and(|n| !n.trim().is_empty()),
            ];
            if named.iter().filter(|b| **b).count() != 1 {
                errors.push(FieldError::new(
                    format!("people[{i}]"),
                    "name exactly one of user_id, client_id or name",
                ));
            }
        }
        match (&self.kind, &self.sharps) {
            (IncidentKind::SharpsInjury, None) => errors.push(FieldError::new(
                "sharps",
                "is required for a sharps injury (device type, work area, how it happened)",
            )),
            (IncidentKind::SharpsInjury, Some(s)) => {
                required("sharps.device_type", &s.device_type, 200, &mut errors);
                required("sharps.work_area", &s.work_area, 200, &mut errors);
                required(
                    "sharps.how_it_happened",
                    &s.how_it_happened,
                    2000,
                    &mut errors,
                );
            }
            (_, Some(_)) => {
                errors.push(FieldError::new("sharps", "only applies to a sharps injury"))
            }
            (_, None) => {}
        }
        errors
    }
}

/// Adds `n` working days (Monday to Friday) to a date.
pub fn add_working_days(from: NaiveDate, n: u32) -> NaiveDate {
    let mut day = from;
    let mut left = n;
    while left > 0 {
        day += Duration::days(1);
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    day
}

pub use crate::clinics::context::end_of_day;

/// The follow-ups an incident requires and when each is due: for an exposure, evaluation offered
/// the same day and the written opinion within 15 days (29 CFR 1910.1030(f)); for a client's
/// infection or reaction, a report to the authority within `report_working_days` (default 5).
pub fn required_follow_ups(
    kind: IncidentKind,
    occurred_at: NaiveDateTime,
    tz: Tz,
    report_working_days: u32,
) -> Vec<(FollowUpKind, NaiveDateTime)> {
    let local_day = occurred_at.and_utc().with_timezone(&tz).date_naive();
    match kind {
        IncidentKind::SharpsInjury | IncidentKind::BloodBodyFluidExposure => vec![
            (FollowUpKind::EvaluationOffered, end_of_day(local_day, tz)),
            (
                FollowUpKind::WrittenOpinion,
                end_of_day(local_day + Duration::days(15), tz),
            ),
        ],
        IncidentKind::SuspectedInfection | IncidentKind::AdverseReaction => {
            vec![(
                FollowUpKind::AuthorityReport,
                end_of_day(add_working_days(local_day, report_working_days), tz),
            )]
        }
        IncidentKind::EquipmentFailure | IncidentKind::Spill => Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpStatus {
    Done,
    Due,
    Overdue,
}

pub fn follow_up_status(
    due: NaiveDateTime,
    done_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> FollowUpStatus {
    match done_at {
        Some(_) => FollowUpStatus::Done,
        None if now > due => FollowUpStatus::Overdue,
        None => FollowUpStatus::Due,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn working_days_skip_weekends() {
        // Thursday 2026-11-26 + 5 working days = Thursday 2026-12-03.
        let thu = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(
            add_working_days(thu, 5),
            NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
        );
        let fri = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        assert_eq!(
            add_working_days(fri, 1),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
        );
    }

    #[test]
    fn exposure_follow_ups_are_due_the_same_local_day_and_in_15_days() {
        let tz: Tz = "Europe/London".parse().unwrap();
        // 23:30 UTC on 31 March 2026 is 00:30 on 1 April in London (BST).
        let at = Utc
            .with_ymd_and_hms(2026, 3, 31, 23, 30, 0)
            .unwrap()
            .naive_utc();
        let due = required_follow_ups(IncidentKind::SharpsInjury, at, tz, 5);
        assert_eq!(due[0].0, FollowUpKind::EvaluationOffered);
        // End of 1 April in London = 22:59:59.999999 UTC on 1 April.
        assert_eq!(
            due[0].1,
            Utc.with_ymd_and_hms(2026, 4, 1, 22, 59, 59)
                .unwrap()
                .naive_utc()
                + Duration::microseconds(999_999)
        );
        assert_eq!(
            due[1].1.date(),
            NaiveDate::from_ymd_opt(2026, 4, 16).unwrap()
        );
        assert!(required_follow_ups(IncidentKind::Spill, at, tz, 5).is_empty());
    }

    #[test]
    fn status_boundaries() {
        let due = Utc
            .with_ymd_and_hms(2026, 4, 1, 22, 59, 59)
            .unwrap()
            .naive_utc();
        assert_eq!(follow_up_status(due, None, due), FollowUpStatus::Due);
        assert_eq!(
            follow_up_status(due, None, due + Duration::seconds(1)),
            FollowUpStatus::Overdue
        );
        assert_eq!(
            follow_up_status(due, Some(due + Duration::days(3)), due + Duration::days(9)),
            FollowUpStatus::Done
        );
    }

    #[test]
    fn sharps_injuries_need_the_log_fields() {
        let input = IncidentInput {
            kind: IncidentKind::SharpsInjury,
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap(),
            location: "Chair 2".into(),
            session_id: None,
            people: vec![],
            description: "needle stick while breaking down".into(),
            immediate_actions: "washed, reported".into(),
            sharps: None,
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        assert_eq!(input.validate(now)[0].field, "sharps");
        let future = IncidentInput {
            occurred_at: now + Duration::hours(2),
            kind: IncidentKind::Spill,
            ..input
        };
        assert_eq!(future.validate(now)[0].field, "occurred_at");
    }
}
