//! Incident types, validation, and the follow-ups each kind of incident requires, with their
//! due dates (pure).

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use crate::jurisdiction::holidays::Calendar;
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
    /// The evaluation was completed: the written opinion is due 15 days later.
    EvaluationCompleted,
    /// The clinician's written opinion given to the exposed person.
    WrittenOpinion,
    /// Written report to the health authority.
    AuthorityReport,
    Other,
}

crate::db::stored::stored_as!(FollowUpKind, "follow-up kind", {
    EvaluationOffered => "evaluation_offered",
    EvaluationCompleted => "evaluation_completed",
    WrittenOpinion => "written_opinion",
    AuthorityReport => "authority_report",
    Other => "other",
});

/// The sharps-injury-log fields (29 CFR 1910.1030(h)(5) sharps injury log).
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

pub use crate::clinics::context::end_of_day;

/// The moments an incident's deadlines run from.
#[derive(Debug, Clone, Copy)]
pub struct FollowUpClock {
    pub occurred_at: NaiveDateTime,
    /// When the clinic learned of it: when it was first recorded.
    pub known_at: NaiveDateTime,
    /// When the exposed person's medical evaluation was completed, once recorded.
    pub evaluation_completed_at: Option<NaiveDateTime>,
}

/// The follow-ups an incident requires and when each is due.
/// - An exposure: the confidential medical evaluation offered immediately (29 CFR
///   1910.1030(f)(3)), so due at the moment it occurred; the clinician's written opinion within
///   15 days of the evaluation's completion (1910.1030(f)(5)), due once the completion is
///   recorded.
/// - A client's infection or reaction, where the profile asks for a report: the report within
///   its working days of the occurrence or of the clinic learning of it, whichever is later,
///   skipping the jurisdiction's holidays.
pub fn required_follow_ups(
    kind: IncidentKind,
    clock: &FollowUpClock,
    tz: Tz,
    report: Option<&(u32, Calendar)>,
) -> Vec<(FollowUpKind, NaiveDateTime)> {
    let local = |t: NaiveDateTime| t.and_utc().with_timezone(&tz).date_naive();
    match kind {
        IncidentKind::SharpsInjury | IncidentKind::BloodBodyFluidExposure => {
            let mut due = vec![(FollowUpKind::EvaluationOffered, clock.occurred_at)];
            if let Some(done) = clock.evaluation_completed_at {
                due.push((
                    FollowUpKind::WrittenOpinion,
                    end_of_day(local(done) + Duration::days(15), tz),
                ));
            }
            due
        }
        IncidentKind::SuspectedInfection | IncidentKind::AdverseReaction => match report {
            Some((days, calendar)) => {
                let from = local(clock.occurred_at.max(clock.known_at));
                vec![(
                    FollowUpKind::AuthorityReport,
                    end_of_day(calendar.add_working_days(from, *days), tz),
                )]
            }
            None => Vec::new(),
        },
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
        None if now >= due => FollowUpStatus::Overdue,
        None => FollowUpStatus::Due,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_exposure_needs_an_evaluation_at_once_and_an_opinion_15_days_after_it() {
        let tz: Tz = "Europe/London".parse().unwrap();
        let at = Utc
            .with_ymd_and_hms(2026, 3, 31, 23, 30, 0)
            .unwrap()
            .naive_utc();
        let mut clock = FollowUpClock {
            occurred_at: at,
            known_at: at,
            evaluation_completed_at: None,
        };
        let due = required_follow_ups(IncidentKind::SharpsInjury, &clock, tz, None);
        assert_eq!(due, [(FollowUpKind::EvaluationOffered, at)], "immediately");
        // Evaluated on 10 April (London): the opinion is due by the end of 25 April.
        clock.evaluation_completed_at = Some(
            Utc.with_ymd_and_hms(2026, 4, 10, 9, 0, 0)
                .unwrap()
                .naive_utc(),
        );
        let due = required_follow_ups(IncidentKind::SharpsInjury, &clock, tz, None);
        assert_eq!(due[1].0, FollowUpKind::WrittenOpinion);
        assert_eq!(
            due[1].1,
            Utc.with_ymd_and_hms(2026, 4, 25, 23, 0, 0)
                .unwrap()
                .naive_utc()
        );
        assert!(required_follow_ups(IncidentKind::Spill, &clock, tz, None).is_empty());
    }

    #[test]
    fn a_report_runs_from_knowledge_and_skips_holidays_only_where_a_profile_asks_for_one() {
        let tz: Tz = "America/Chicago".parse().unwrap();
        let noon = |d: u32| {
            Utc.with_ymd_and_hms(2026, 11, d, 18, 0, 0)
                .unwrap()
                .naive_utc()
        };
        let clock = FollowUpClock {
            occurred_at: noon(2),
            known_at: noon(24),
            evaluation_completed_at: None,
        };
        assert!(required_follow_ups(IncidentKind::SuspectedInfection, &clock, tz, None).is_empty());
        let texas = (
            5,
            Calendar::parse(&["4 thu 11".into(), "day after 4 thu 11".into()]).unwrap(),
        );
        let due = required_follow_ups(IncidentKind::SuspectedInfection, &clock, tz, Some(&texas));
        // Learned of on Tuesday 24 November: Wed 25, (Thanksgiving and the day after, the
        // weekend), Mon 30, Tue 1, Wed 2, Thu 3 December.
        // Due by the end of Thursday 3 December: local midnight as it begins the 4th.
        assert_eq!(
            due[0].1.and_utc().with_timezone(&tz).naive_local(),
            chrono::NaiveDate::from_ymd_opt(2026, 12, 4)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
        );
    }

    #[test]
    fn status_boundaries() {
        // Due by the end of 1 April (London): overdue from local midnight on.
        let due = Utc
            .with_ymd_and_hms(2026, 4, 1, 23, 0, 0)
            .unwrap()
            .naive_utc();
        assert_eq!(
            follow_up_status(due, None, due - Duration::seconds(1)),
            FollowUpStatus::Due
        );
        assert_eq!(follow_up_status(due, None, due), FollowUpStatus::Overdue);
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
