//! What an owner preparing for an inspection reads first: the compliance view's findings, what
//! falls due in the next 30 days, each steriliser's latest spore and air-removal tests, the
//! failures with the clients their look-backs reach, and mail given up on. The API answers it at
//! `/readiness` and the dashboard page draws it.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::lookback::{self, Lookback, Trigger};
use super::rules::Rule;
use super::view::{self, ComplianceView};
use crate::auth::Role;
use crate::db::{self, to_utc, DbConn};
use crate::error::AppResult;
use crate::jurisdiction::profiles::Profiles;
use crate::sterilisation::model::Biological;
use crate::sterilisation::store::LogFilter;

/// Something due within the next 30 days.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DueSoon {
    /// `credential`, `lot`, `spore_test`, `incident` or another finding's subject kind.
    pub kind: String,
    /// What the finding or credential is about, e.g. `member:<id>`.
    pub subject: String,
    pub what: String,
    pub due: DateTime<Utc>,
    /// As a person in the clinic reads it, with the zone named.
    pub due_local: String,
}

/// A steriliser's latest tests.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SteriliserTests {
    pub steriliser_id: String,
    pub steriliser: String,
    pub last_spore_test_placed_at: Option<DateTime<Utc>>,
    /// pending, negative, positive or invalid.
    pub last_spore_test_outcome: Option<Biological>,
    pub last_air_removal_at: Option<DateTime<Utc>>,
    pub last_air_removal_passed: Option<bool>,
}

/// A failure and whom it reaches.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Failure {
    /// `spore_test` or `lot`: the look-back's trigger, also its CSV's query.
    pub trigger: String,
    pub trigger_id: String,
    pub what: String,
    pub at: DateTime<Utc>,
    pub lookback: Lookback,
}

/// A pack scanned into a session and set aside before the start: an attempt the gate stopped, or
/// a scan by mistake.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetAside {
    pub session_id: String,
    pub pack_code: String,
    pub reason: String,
    pub set_aside_at: DateTime<Utc>,
    pub set_aside_by: Option<String>,
}

/// Mail the outbox gave up on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GivenUp {
    pub kind: String,
    pub recipient: String,
    pub subject: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadinessView {
    pub compliance: ComplianceView,
    pub due_soon: Vec<DueSoon>,
    pub sterilisers: Vec<SteriliserTests>,
    /// Positive spore tests and recalled lots of the last 12 months before the view's moment.
    pub failures: Vec<Failure>,
    /// Packs set aside at the station in the 30 days before the view's moment, latest first.
    pub set_aside: Vec<SetAside>,
    pub mail_given_up: Vec<GivenUp>,
}

/// How far back failures are listed.
const FAILURES_FOR_DAYS: i64 = 365;
const DUE_WITHIN_DAYS: i64 = 30;

pub fn dashboard(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    caller: &str,
    at: Option<DateTime<Utc>>,
) -> AppResult<ReadinessView> {
    let compliance = view::view(conn, profiles, clinic_id, at)?;
    let moment = compliance.at;
    // Every list below reads the records as they stood at that moment.
    let standing = at.map(|_| moment.naive_utc());
    let context = crate::clinics::context::load(conn, profiles, clinic_id)?;
    let tz = context.tz;
    let horizon = moment + Duration::days(DUE_WITHIN_DAYS);
    let mut due_soon: Vec<DueSoon> = compliance
        .findings
        .iter()
        .filter_map(|f| {
            let due = f.due?;
            (due >= moment && due <= horizon).then(|| DueSoon {
                kind: f.subject.split(':').next().unwrap_or_default().to_owned(),
                subject: f.subject.clone(),
                what: f.message.clone(),
                due,
                due_local: crate::clinics::context::due_in_words(due.naive_utc(), tz),
            })
        })
        .collect();
    // Credentials that lapse within the window, for everyone who works on clients.
    for (membership, user) in crate::auth::store::members_of(conn, clinic_id)? {
        if !membership.active || membership.role() == Role::Inspector {
            continue;
        }
        let credentials = crate::credentials::usecases::list(
            conn,
            Role::Owner,
            caller,
            clinic_id,
            &crate::credentials::store::CredentialFilter {
                user_id: Some(user.id.clone()),
                limit: 100,
                at: standing,
                ..Default::default()
            },
        )?
        .0;
        for c in credentials {
            let Some(expires_on) = c.fields.expires_on else {
                continue;
            };
            let due = to_utc(crate::clinics::context::end_of_day(expires_on, tz));
            if due >= moment && due <= horizon {
                due_soon.push(DueSoon {
                    kind: "credential".into(),
                    subject: format!("member:{}", user.id),
                    what: format!(
                        "{}'s {} expires on {}: renew it to keep working on clients",
                        user.display_name,
                        c.fields.kind.label(),
                        expires_on.format("%-d %B %Y")
                    ),
                    due,
                    due_local: crate::clinics::context::due_in_words(due.naive_utc(), tz),
                });
            }
        }
    }
    due_soon.sort_by_key(|d| d.due);

    let mut sterilisers = Vec::new();
    let mut failures = Vec::new();
    let since = moment.naive_utc() - Duration::days(FAILURES_FOR_DAYS);
    for s in crate::sterilisation::store::list_sterilisers(conn, clinic_id)? {
        let filter = LogFilter {
            steriliser_id: Some(s.id.clone()),
            to: Some(moment.naive_utc() + Duration::microseconds(1)),
            limit: 1,
            at: standing,
            ..Default::default()
        };
        let (spore, _) =
            crate::sterilisation::usecases::list_spore_tests(conn, clinic_id, &filter)?;
        let (air, _) = crate::sterilisation::usecases::list_air_removal(conn, clinic_id, &filter)?;
        sterilisers.push(SteriliserTests {
            steriliser_id: s.id.clone(),
            steriliser: s.name(),
            last_spore_test_placed_at: spore.first().map(|t| t.fields.placed_at),
            last_spore_test_outcome: spore.first().map(|t| t.outcome),
            last_air_removal_at: air.first().map(|t| t.fields.performed_at),
            last_air_removal_passed: air.first().map(|t| t.fields.passed),
        });
        let (tests, _) = crate::sterilisation::usecases::list_spore_tests(
            conn,
            clinic_id,
            &LogFilter {
                steriliser_id: Some(s.id.clone()),
                from: Some(since),
                to: Some(moment.naive_utc() + Duration::microseconds(1)),
                limit: 500,
                at: standing,
                ..Default::default()
            },
        )?;
        for t in tests.iter().filter(|t| t.outcome == Biological::Positive) {
            failures.push(Failure {
                trigger: "spore_test".into(),
                trigger_id: t.id.clone(),
                what: format!(
                    "Spore test of {} placed {} read positive",
                    s.name(),
                    crate::clinics::context::at_in_words(t.fields.placed_at, tz)
                ),
                at: t.fields.placed_at,
                lookback: lookback::compute(conn, clinic_id, &Trigger::SporeTest(t.id.clone()))?,
            });
        }
    }
    for f in compliance
        .findings
        .iter()
        .filter(|f| f.rule == Rule::LotRecalled)
    {
        let Some(lot_id) = f.subject.strip_prefix("lot:") else {
            continue;
        };
        let lot = crate::lots::usecases::get_lot(conn, clinic_id, lot_id)?;
        failures.push(Failure {
            trigger: "lot".into(),
            trigger_id: lot_id.to_owned(),
            what: f.message.clone(),
            at: lot
                .recall
                .as_ref()
                .map_or(lot.recorded_at, |r| r.recalled_at),
            lookback: lookback::compute(conn, clinic_id, &Trigger::Lot(lot_id.to_owned()))?,
        });
    }
    failures.sort_by_key(|f| std::cmp::Reverse(f.at));

    let mail_given_up =
        crate::outbox::queue::failed_by(conn, clinic_id, db::truncate(moment.naive_utc()))?
            .into_iter()
            .map(|(kind, recipient, subject)| GivenUp {
                kind,
                recipient,
                subject,
            })
            .collect();
    let set_aside = {
        use crate::db::schema::session_pack_removals as r;
        use diesel::prelude::*;
        let until = db::truncate(moment.naive_utc());
        r::table
            .filter(r::clinic_id.eq(clinic_id))
            .filter(r::removed_at.le(until))
            .filter(r::removed_at.gt(until - Duration::days(DUE_WITHIN_DAYS)))
            .order(r::removed_at.desc())
            .limit(100)
            .select((
                r::session_id,
                r::pack_code,
                r::reason,
                r::removed_at,
                r::removed_by,
            ))
            .load::<(
                String,
                String,
                String,
                chrono::NaiveDateTime,
                Option<String>,
            )>(conn)?
            .into_iter()
            .map(|(session_id, pack_code, reason, at, by)| SetAside {
                session_id,
                pack_code,
                reason,
                set_aside_at: to_utc(at),
                set_aside_by: by,
            })
            .collect()
    };
    Ok(ReadinessView {
        compliance,
        due_soon,
        sterilisers,
        failures,
        set_aside,
        mail_given_up,
    })
}
