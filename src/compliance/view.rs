//! The compliance view: gathers a clinic's facts as they stand now and runs the rules.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::profiles::Profiles;
use super::rules::{
    self, Facts, Finding, FollowUpFacts, LotFacts, Severity, StaffFacts, SteriliserFacts,
};
use crate::auth::{store as accounts, Role};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::sterilisation::model::SporeResult;

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    pub blocker: usize,
    pub warning: usize,
    pub info: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ComplianceView {
    pub at: DateTime<Utc>,
    pub jurisdiction: String,
    pub summary: Summary,
    pub findings: Vec<Finding>,
}

const ALL: i64 = 100_000;

pub fn now(conn: &mut DbConn, profiles: &Profiles, clinic_id: &str) -> AppResult<ComplianceView> {
    let clinic = crate::clinics::store::find(conn, clinic_id)?.ok_or(AppError::NotFound)?;
    let profile = profiles
        .get(&clinic.jurisdiction)
        .or_else(|| profiles.get("baseline"))
        .ok_or_else(|| AppError::internal("no baseline profile"))?;
    let tz: chrono_tz::Tz = clinic.timezone.parse().unwrap_or(chrono_tz::UTC);
    let at = Utc::now();
    let today = at.with_timezone(&tz).date_naive();
    let day_start = today
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(tz).earliest())
        .map(|t| t.naive_utc())
        .unwrap_or(at.naive_utc());
    let day_end = day_start + Duration::days(1);

    let mut sterilisers = Vec::new();
    for s in crate::sterilisation::service::list_sterilisers(conn, clinic_id)? {
        let tests = crate::sterilisation::store::read_tests_of_steriliser(conn, clinic_id, &s.id)?;
        let last_negative = tests
            .iter()
            .filter(|t| t.valid && t.result == SporeResult::Negative)
            .map(|t| t.cycle_started_at)
            .max();
        let today_filter = crate::sterilisation::store::LogFilter {
            steriliser_id: Some(s.id.clone()),
            from: Some(day_start),
            to: Some(day_end),
            after: None,
            limit: 1,
        };
        let loads_today =
            !crate::sterilisation::store::list_cycles(conn, clinic_id, &today_filter)?.is_empty();
        let air_today = crate::sterilisation::store::list_air_removal(
            conn,
            clinic_id,
            &crate::sterilisation::store::LogFilter {
                limit: 50,
                ..today_filter
            },
        )?
        .iter()
        .any(|t| t.passed);
        sterilisers.push(SteriliserFacts {
            label: format!(
                "{} {} ({})",
                s.fields.make, s.fields.model, s.fields.serial_number
            ),
            pre_vacuum: s.fields.kind == crate::sterilisation::model::SteriliserKind::PreVacuum,
            in_service: s.in_service,
            quarantined: s.quarantined,
            last_negative_spore_test: last_negative,
            loads_today,
            air_removal_passed_today: air_today,
            id: s.id,
        });
    }
    let (lot_views, _) = crate::lots::service::list_lots(
        conn,
        clinic_id,
        &crate::lots::store::LotFilter {
            limit: ALL,
            ..Default::default()
        },
    )?;
    let lots = lot_views
        .into_iter()
        .map(|l| LotFacts {
            label: format!(
                "lot {} of {} {}",
                l.fields.lot_number, l.fields.manufacturer, l.fields.product_name
            ),
            status: l.status,
            expiry_date: l.fields.expiry_date,
            id: l.id,
        })
        .collect();
    let mut staff = Vec::new();
    for (m, u) in accounts::members_of(conn, clinic_id)? {
        if !m.active || m.role() == Role::Inspector {
            continue;
        }
        let e = crate::credentials::service::member_eligibility(
            conn,
            profiles,
            Role::Owner,
            "",
            clinic_id,
            &u.id,
            at,
        )?;
        staff.push(StaffFacts {
            user_id: u.id,
            name: u.display_name,
            eligibility: e.eligibility,
        });
    }
    let (incidents, _) =
        crate::incidents::store::list(conn, profiles, clinic_id, None, ALL, false)?;
    let follow_ups = incidents
        .iter()
        .filter(|i| i.closed_at.is_none())
        .flat_map(|i| {
            i.required_follow_ups.iter().map(move |f| FollowUpFacts {
                incident_id: i.id.clone(),
                kind: f.kind.as_str().to_owned(),
                due: f.due.naive_utc(),
                done: f.status == crate::incidents::model::FollowUpStatus::Done,
            })
        })
        .collect();
    let facts = Facts {
        now: at.naive_utc(),
        today,
        sterilisers,
        lots,
        staff,
        follow_ups,
    };
    let findings = rules::evaluate(profile, &facts);
    let mut summary = Summary::default();
    for f in &findings {
        match f.severity {
            Severity::Blocker => summary.blocker += 1,
            Severity::Warning => summary.warning += 1,
            Severity::Info => summary.info += 1,
        }
    }
    Ok(ComplianceView {
        at,
        jurisdiction: profile.id.clone(),
        summary,
        findings,
    })
}
