//! Gathers the facts the rules judge, as the clinic's records stood at one moment.
//!
//! Compliance records are never updated: each version and each event row carries the time it
//! was recorded, in the same transaction as its audit event. So "as of `at`" is, per record, the
//! highest version recorded at or before `at`, and per event (a result, a recall, a
//! verification, a closure) whether it was recorded by then. Memberships are the one thing kept
//! in place; their state at `at` is replayed from the clinic's audit chain. The view for "now"
//! is the same query with `at` = now, so the two cannot drift apart.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use super::rules::{
    CredentialExpiryFacts, Facts, FollowUpFacts, ImportedCycleFacts, LotFacts, MailFacts,
    SessionLotFacts, StaffFacts, SteriliserFacts, StockPackFacts,
};
use crate::audit::store::AuditEventRow;
use crate::credentials::model::{eligibility, CredentialFact, CredentialKind};
use crate::credentials::store::{CredentialRow, VerificationRow};
use crate::db::schema::{
    audit_events, credential_verifications, credentials, cycles, incident_closures, incidents,
    lot_recalls, lot_withdrawals, lots, packs, session_lots, session_starts, spore_test_results,
    spore_tests,
};
use crate::db::DbConn;
use crate::error::AppResult;
use crate::incidents::store::IncidentRow;
use crate::jurisdiction::profiles::Profile;
use crate::lots::model::{lot_status, LotKind};
use crate::lots::store::LotRow;
use crate::records::as_of;
use crate::sterilisation::model::{load_checks, requalified_after, LoadRules};
use crate::sterilisation::store::{CycleRow, PackRow};
use crate::sterilisation::usecases::gate::{judge_loads, load_rules, SteriliserAt};

/// Unused packs from loads older than this, and lots expired or recalled longer ago without a
/// recorded withdrawal, are taken to have been reprocessed or discarded; session start refuses
/// them whatever their age.
pub const STOCK_HORIZON_DAYS: i64 = 90;

pub use crate::clinics::context::local_day;

pub fn gather(
    conn: &mut DbConn,
    profile: &Profile,
    clinic_id: &str,
    tz: Tz,
    at: NaiveDateTime,
) -> AppResult<Facts> {
    let (today, day_start, day_end) = local_day(at, tz);
    let rules = load_rules(profile, tz);
    // The oldest load judged here is the oldest stock still counted, or the start of today.
    let judged_from = (at - Duration::days(STOCK_HORIZON_DAYS)).min(day_start);
    let records = crate::sterilisation::usecases::gate::sterilisers_at(
        conn,
        clinic_id,
        profile,
        at,
        judged_from,
    )?;
    let sterilisers = sterilisers_at(conn, clinic_id, at, &records, &rules, day_start, day_end)?;
    let (staff, credential_expiries) = staff_at(conn, profile, clinic_id, at, today)?;
    let mail = mail_at(conn, profile, clinic_id, at)?;
    let imported_cycles = imported_cycles_at(conn, clinic_id, at, &sterilisers)?;
    Ok(Facts {
        mail,
        now: at,
        today,
        tz,
        sterilisers,
        lots: lots_at(conn, clinic_id, at, today)?,
        staff,
        credential_expiries,
        follow_ups: follow_ups_at(conn, profile, clinic_id, tz, at)?,
        stock: stock_at(conn, clinic_id, at, &records, &rules)?,
        sessions_missing_lots: sessions_missing_lots_at(conn, profile, clinic_id, at)?,
        imported_cycles,
    })
}

fn sterilisers_at(
    conn: &mut DbConn,
    clinic_id: &str,
    at: NaiveDateTime,
    sterilisers: &BTreeMap<String, SteriliserAt>,
    rules: &LoadRules,
    day_start: NaiveDateTime,
    day_end: NaiveDateTime,
) -> AppResult<Vec<SteriliserFacts>> {
    // Spore tests placed in the last fortnight and not read by `at`, with their load's start.
    let placed: Vec<(String, String, NaiveDateTime)> = spore_tests::table
        .inner_join(cycles::table.on(cycles::id.eq(spore_tests::cycle_id)))
        .filter(spore_tests::clinic_id.eq(clinic_id))
        .filter(as_of("spore_tests", at))
        .filter(as_of("cycles", at))
        .filter(spore_tests::placed_at.le(at))
        .filter(spore_tests::placed_at.ge(at - Duration::days(14)))
        .select((
            spore_tests::id,
            spore_tests::steriliser_id,
            cycles::started_at,
        ))
        .load(conn)?;
    let read_by_then: HashSet<String> = spore_test_results::table
        .filter(spore_test_results::clinic_id.eq(clinic_id))
        .filter(spore_test_results::recorded_at.le(at))
        .filter(spore_test_results::spore_test_id.eq_any(placed.iter().map(|p| p.0.clone())))
        .select(spore_test_results::spore_test_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    // Today's loads, each judged against the air-removal tests before it that day.
    let loads_today: Vec<(String, NaiveDateTime, i32)> = cycles::table
        .filter(cycles::clinic_id.eq(clinic_id))
        .filter(as_of("cycles", at))
        .filter(cycles::started_at.ge(day_start))
        .filter(cycles::started_at.lt(day_end))
        .filter(cycles::started_at.le(at))
        .select((
            cycles::steriliser_id,
            cycles::started_at,
            cycles::load_indicator_type,
        ))
        .load(conn)?;

    let mut out = Vec::new();
    for (id, s) in sterilisers {
        let Some(current) = s.current() else {
            continue;
        };
        let status = s.status();
        let today: Vec<&(String, NaiveDateTime, i32)> =
            loads_today.iter().filter(|(sid, _, _)| sid == id).collect();
        out.push(SteriliserFacts {
            id: id.clone(),
            label: format!(
                "{} {} ({})",
                current.make, current.model, current.serial_number
            ),
            pre_vacuum: s.record.pre_vacuum,
            in_service: status.is_none_or(|s| s.in_service),
            quarantined: crate::sterilisation::usecases::is_quarantined(status),
            last_negative_spore_test: s.record.negatives().into_iter().max(),
            incubating_spore_test: placed
                .iter()
                .filter(|(test, sid, _)| sid == id && !read_by_then.contains(test))
                .map(|(_, _, started)| *started)
                .max(),
            loads_today: !today.is_empty(),
            loads_today_without_air_removal: today
                .iter()
                .filter(|(_, started, kind)| {
                    load_checks(*started, *kind, &s.record, rules).without_air_removal
                })
                .count(),
            air_removal_passed_today: s
                .record
                .air_removal_passes
                .iter()
                .any(|p| *p >= day_start && *p < day_end),
            loads_today_without_automatic_control: today
                .iter()
                .filter(|(_, started, kind)| {
                    load_checks(*started, *kind, &s.record, rules).without_automatic_control
                })
                .count(),
            automatic_control_passed_today: s
                .record
                .automatic_control_passes
                .iter()
                .any(|p| *p >= day_start && *p < day_end),
            loads_today_without_air_leakage: today
                .iter()
                .filter(|(_, started, kind)| {
                    load_checks(*started, *kind, &s.record, rules).without_air_leakage
                })
                .count(),
            // A load now would need a passing test in the seven local days up to today.
            air_leakage_passed_this_week: !load_checks(at, 1, &s.record, rules).without_air_leakage,
            requalified_since_event: s.record.last_event.as_ref().is_none_or(|e| {
                requalified_after(&s.record.reads, e.at, rules.requalification_spore_tests)
            }),
            last_event: s.record.last_event.clone(),
            hours_since_negative: s.record.hours_since_negative(at),
        });
    }
    Ok(out)
}

fn lots_at(
    conn: &mut DbConn,
    clinic_id: &str,
    at: NaiveDateTime,
    today: NaiveDate,
) -> AppResult<Vec<LotFacts>> {
    let rows: Vec<LotRow> = lots::table
        .filter(lots::clinic_id.eq(clinic_id))
        .filter(as_of("lots", at))
        .select(LotRow::as_select())
        .order(lots::id.asc())
        .load(conn)?;
    let recalled: HashMap<String, NaiveDateTime> = lot_recalls::table
        .filter(lot_recalls::clinic_id.eq(clinic_id))
        .filter(lot_recalls::recalled_at.le(at))
        .select((lot_recalls::lot_id, lot_recalls::recalled_at))
        .load::<(String, NaiveDateTime)>(conn)?
        .into_iter()
        .collect();
    let withdrawn: HashSet<String> = lot_withdrawals::table
        .filter(lot_withdrawals::clinic_id.eq(clinic_id))
        .filter(lot_withdrawals::withdrawn_at.le(at))
        .select(lot_withdrawals::lot_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let horizon = Duration::days(STOCK_HORIZON_DAYS);
    Ok(rows
        .into_iter()
        // Stock taken off the shelf asks nothing more of the clinic.
        .filter(|l| !withdrawn.contains(&l.id))
        // Like packs, a lot long expired or long recalled is taken to be off the shelf.
        .filter(|l| match recalled.get(&l.id) {
            Some(when) => *when >= at - horizon,
            None => l.expiry_date >= today - horizon,
        })
        .map(|l| LotFacts {
            label: format!(
                "lot {} of {} {}",
                l.lot_number, l.manufacturer, l.product_name
            ),
            status: lot_status(l.expiry_date, recalled.contains_key(&l.id), today),
            expiry_date: l.expiry_date,
            id: l.id,
        })
        .collect())
}

/// Each membership as its latest audit event before `at` left it; the flag says whether it was
/// active and working on clients then (practitioner rules apply to nobody else).
fn members_at(
    conn: &mut DbConn,
    clinic_id: &str,
    at: NaiveDateTime,
) -> AppResult<Vec<(String, String, String, bool)>> {
    let events: Vec<AuditEventRow> = audit_events::table
        .filter(audit_events::clinic_id.eq(clinic_id))
        .filter(audit_events::entity_kind.eq("member"))
        .filter(audit_events::recorded_at.le(at))
        .select(AuditEventRow::as_select())
        .order(audit_events::seq.asc())
        .load(conn)?;
    let mut members: BTreeMap<String, (String, String, String, bool)> = BTreeMap::new();
    for e in events {
        let p = e.payload_json();
        let text = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        members.insert(
            e.entity_id.clone(),
            (
                text("user_id"),
                text("display_name"),
                text("role"),
                // Events from before members said whether they work on clients: everyone on
                // staff did, as far as the rules knew.
                p.get("active").and_then(|v| v.as_bool()).unwrap_or(false)
                    && p.get("works_on_clients")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(true),
            ),
        );
    }
    Ok(members.into_values().collect())
}

fn staff_at(
    conn: &mut DbConn,
    profile: &Profile,
    clinic_id: &str,
    at: NaiveDateTime,
    today: NaiveDate,
) -> AppResult<(Vec<StaffFacts>, Vec<CredentialExpiryFacts>)> {
    let creds: Vec<CredentialRow> = credentials::table
        .filter(credentials::clinic_id.eq(clinic_id))
        .filter(as_of("credentials", at))
        .select(CredentialRow::as_select())
        .load(conn)?;
    let verified: HashSet<(String, i32)> = credential_verifications::table
        .filter(credential_verifications::clinic_id.eq(clinic_id))
        .filter(credential_verifications::verified_at.le(at))
        .select(VerificationRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|v| (v.credential_id, v.credential_version))
        .collect();
    let requirements = profile.requirements();
    let mut out = Vec::new();
    let mut expiries = Vec::new();
    for (user_id, name, role, practising) in members_at(conn, clinic_id, at)? {
        // Staff only, by the closed set of roles: an unknown role is nobody's practitioner.
        let staff = matches!(
            crate::auth::Role::from_db(&role),
            Ok(crate::auth::Role::Owner | crate::auth::Role::Technician)
        );
        if !practising || !staff {
            continue;
        }
        for c in creds.iter().filter(|c| c.user_id == user_id) {
            if let Some(expires_on) = c.expires_on.filter(|e| *e >= today) {
                expiries.push(CredentialExpiryFacts {
                    credential_id: c.id.clone(),
                    member: name.clone(),
                    kind: CredentialKind::from_db(&c.kind)?,
                    expires_on,
                });
            }
        }
        let facts: Vec<CredentialFact> = creds
            .iter()
            .filter(|c| c.user_id == user_id)
            .map(|c| c.fact(verified.contains(&(c.id.clone(), c.version))))
            .collect::<AppResult<_>>()?;
        out.push(StaffFacts {
            user_id,
            name,
            eligibility: eligibility(&requirements, &facts, today),
        });
    }
    Ok((out, expiries))
}

/// Messages given up on, and events the profile says to report with no address to report to.
fn mail_at(
    conn: &mut DbConn,
    profile: &Profile,
    clinic_id: &str,
    at: NaiveDateTime,
) -> AppResult<MailFacts> {
    let failed = crate::outbox::failed_by(conn, clinic_id, at)?;
    let required = profile
        .notify_authority_of
        .value
        .clone()
        .unwrap_or_default();
    let authority_missing = if required.is_empty() {
        Vec::new()
    } else {
        // Settings are kept in place: the address as it is now.
        let address =
            crate::outbox::settings::find(conn, clinic_id)?.and_then(|s| s.authority_email);
        if address.is_some() {
            Vec::new()
        } else {
            required
        }
    };
    Ok(MailFacts {
        failed,
        authority_missing,
    })
}

fn follow_ups_at(
    conn: &mut DbConn,
    profile: &Profile,
    clinic_id: &str,
    tz: Tz,
    at: NaiveDateTime,
) -> AppResult<Vec<FollowUpFacts>> {
    let closed_by_then = incident_closures::table
        .filter(incident_closures::incident_id.eq(incidents::id))
        .filter(incident_closures::closed_at.le(at));
    let open: Vec<IncidentRow> = incidents::table
        .filter(incidents::clinic_id.eq(clinic_id))
        .filter(as_of("incidents", at))
        .filter(not(exists(closed_by_then)))
        .select(IncidentRow::as_select())
        .load(conn)?;
    let mut out = Vec::new();
    for i in &open {
        let involving = match crate::incidents::usecases::people_in_words(conn, &i.people)? {
            who if who.is_empty() => String::new(),
            who => format!(" involving {who}"),
        };
        for f in crate::incidents::usecases::required_at(conn, profile, tz, i, at)? {
            out.push(FollowUpFacts {
                incident_id: i.id.clone(),
                incident: format!(
                    "the {}{involving} at {} on {}",
                    i.kind.replace('_', " "),
                    i.location,
                    i.occurred_at
                        .and_utc()
                        .with_timezone(&tz)
                        .format("%A %-d %B %Y, %H:%M %Z")
                ),
                kind: f.kind,
                due: f.due,
                done: f.done_at.is_some(),
            });
        }
    }
    Ok(out)
}

/// Packs on the shelf at `at` (made, not yet opened in a session that started), from recent
/// loads, each with the facts the one pack judgement takes.
fn stock_at(
    conn: &mut DbConn,
    clinic_id: &str,
    at: NaiveDateTime,
    sterilisers: &BTreeMap<String, SteriliserAt>,
    rules: &LoadRules,
) -> AppResult<Vec<StockPackFacts>> {
    // The recent loads first, then their packs: both by index however long the history.
    let recent: Vec<CycleRow> = cycles::table
        .filter(cycles::clinic_id.eq(clinic_id))
        .filter(cycles::started_at.ge(at - Duration::days(STOCK_HORIZON_DAYS)))
        .filter(as_of("cycles", at))
        .select(CycleRow::as_select())
        .load(conn)?;
    let recent_ids: Vec<&str> = recent.iter().map(|c| c.id.as_str()).collect();
    let made: Vec<PackRow> = packs::table
        .filter(packs::clinic_id.eq(clinic_id))
        .filter(packs::cycle_id.eq_any(&recent_ids))
        .filter(packs::created_at.le(at))
        .select(PackRow::as_select())
        .load(conn)?;
    // A pack is scanned into a session only once it is on record, and the session starts after
    // its packs are scanned, both on the service's clock: only sessions started since the oldest
    // of these packs was recorded can have opened one (a day earlier, for a clock set back).
    let codes: HashSet<&str> = made.iter().map(|p| p.code.as_str()).collect();
    let used: HashSet<String> = match made.iter().map(|p| p.created_at).min() {
        Some(oldest) => crate::sterilisation::store::packs_opened_between(
            conn,
            clinic_id,
            oldest - Duration::days(1),
            at,
        )?
        .into_iter()
        .filter(|code| codes.contains(code.as_str()))
        .collect(),
        None => HashSet::new(),
    };
    let judged = judge_loads(
        conn,
        clinic_id,
        rules,
        sterilisers,
        &recent,
        &made,
        &used,
        at,
    )?;
    let by_id: HashMap<&str, &CycleRow> = recent.iter().map(|c| (c.id.as_str(), c)).collect();
    Ok(made
        .iter()
        .filter(|p| !used.contains(&p.code))
        .filter_map(|p| {
            let load = by_id.get(p.cycle_id.as_str())?;
            let facts = judged.get(&load.id)?.packs.get(&p.code)?.clone();
            Some(StockPackFacts {
                code: p.code.clone(),
                cycle_id: load.id.clone(),
                cycle_number: load.cycle_number,
                facts,
            })
        })
        .collect())
}

/// Imported cycles of the last [`STOCK_HORIZON_DAYS`] whose checks found something, as the
/// records stood at `at`.
fn imported_cycles_at(
    conn: &mut DbConn,
    clinic_id: &str,
    at: NaiveDateTime,
    sterilisers: &[SteriliserFacts],
) -> AppResult<Vec<ImportedCycleFacts>> {
    let since = at - Duration::days(STOCK_HORIZON_DAYS);
    let found = crate::sterilisation::usecases::imported_cycles_warned(conn, clinic_id, since, at)?;
    Ok(found
        .into_iter()
        .map(|c| ImportedCycleFacts {
            steriliser: sterilisers
                .iter()
                .find(|s| s.id == c.steriliser_id)
                .map_or_else(|| c.steriliser_id.clone(), |s| s.label.clone()),
            id: c.id,
            cycle_number: c.cycle_number,
            warnings: c
                .warnings
                .into_iter()
                .map(|w| (w.check, w.message, w.evidence))
                .collect(),
        })
        .collect())
}

/// Sessions started by `at` without a lot of each kind the profile requires.
fn sessions_missing_lots_at(
    conn: &mut DbConn,
    profile: &Profile,
    clinic_id: &str,
    at: NaiveDateTime,
) -> AppResult<Vec<SessionLotFacts>> {
    let mut missing: BTreeMap<String, Vec<LotKind>> = BTreeMap::new();
    for kind in profile.lots_recorded_per_session.value.iter().flatten() {
        let recorded = session_lots::table
            .inner_join(
                lots::table.on(lots::id
                    .eq(session_lots::lot_id)
                    .and(lots::version.eq(session_lots::lot_version))),
            )
            .filter(session_lots::session_id.eq(session_starts::session_id))
            .filter(session_lots::added_at.le(at))
            .filter(lots::kind.eq(kind.as_db()));
        // Start refuses a session without them unless an owner overrides, so only overridden
        // starts can lack them (judged against the profile as it is now).
        let ids: Vec<String> = session_starts::table
            .filter(session_starts::clinic_id.eq(clinic_id))
            .filter(session_starts::override_reason.is_not_null())
            .filter(session_starts::started_at.le(at))
            .filter(not(exists(recorded)))
            .select(session_starts::session_id)
            .load(conn)?;
        for id in ids {
            missing.entry(id).or_default().push(*kind);
        }
    }
    Ok(missing
        .into_iter()
        .map(|(session_id, kinds)| SessionLotFacts { session_id, kinds })
        .collect())
}
