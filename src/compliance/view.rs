//! The compliance view: the clinic's facts at a moment (now, or as of a past one), judged by the
//! rules of its jurisdiction profile.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::facts;
use super::rules::{self, Finding, Severity};
use crate::db::schema::audit_events;
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::jurisdiction::profiles::Profiles;

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    pub blocker: usize,
    pub warning: usize,
    pub info: usize,
}

/// The audit-chain event the view stands on: the last one recorded at or before `at`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChainPosition {
    pub seq: i64,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ComplianceView {
    pub at: DateTime<Utc>,
    /// True when `at` was asked for: the view shows the records as they stood then.
    pub as_of: bool,
    pub jurisdiction: String,
    pub chain: Option<ChainPosition>,
    pub summary: Summary,
    pub findings: Vec<Finding>,
}

/// The compliance view now, or as of `at`. A moment in the future, or before the clinic existed,
/// is refused: there is nothing recorded to judge.
pub fn view(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    at: Option<DateTime<Utc>>,
) -> AppResult<ComplianceView> {
    Ok(view_with_facts(conn, profiles, clinic_id, at)?.0)
}

/// The view and the facts it judged, for callers that show both (the export's report).
pub fn view_with_facts(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    at: Option<DateTime<Utc>>,
) -> AppResult<(ComplianceView, rules::Facts)> {
    let clinic = crate::clinics::store::find(conn, clinic_id)?.ok_or(AppError::NoSuch("clinic"))?;
    let now = db::now();
    let moment = match at {
        None => now,
        Some(t) => {
            let t = db::truncate(t.naive_utc());
            if t > now {
                return Err(AppError::invalid(
                    "at",
                    "is in the future: the view shows what was recorded, not what may come",
                ));
            }
            if t < clinic.created_at {
                return Err(AppError::invalid(
                    "at",
                    format!(
                        "is before the clinic was registered ({})",
                        to_utc(clinic.created_at).to_rfc3339()
                    ),
                ));
            }
            t
        }
    };
    let profile = crate::clinics::context::profile(profiles, &clinic)?;
    let tz = crate::clinics::context::time_zone(&clinic)?;
    let facts = facts::gather(conn, profile, clinic_id, tz, moment)?;
    let findings = rules::evaluate(profile, &facts);
    let chain = audit_events::table
        .filter(audit_events::clinic_id.eq(clinic_id))
        .filter(audit_events::recorded_at.le(moment))
        .order(audit_events::seq.desc())
        .select((audit_events::seq, audit_events::hash))
        .first::<(i64, String)>(conn)
        .optional()?
        .map(|(seq, hash)| ChainPosition { seq, hash });
    let mut summary = Summary::default();
    for f in &findings {
        match f.severity {
            Severity::Blocker => summary.blocker += 1,
            Severity::Warning => summary.warning += 1,
            Severity::Info => summary.info += 1,
        }
    }
    Ok((
        ComplianceView {
            at: to_utc(moment),
            as_of: at.is_some(),
            jurisdiction: profile.id.clone(),
            chain,
            summary,
            findings,
        },
        facts,
    ))
}
