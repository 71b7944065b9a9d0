//! Look-back: which packs and which client sessions a failed spore test, a load, a recalled lot
//! or a span of a steriliser's loads reaches, with the client's contact for notification.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::schema::{
    clients, cycles, packs, session_lots, session_pack_removals, session_packs, session_starts,
    sessions,
};
use crate::db::{to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::records::{current, not_found};
use crate::sterilisation::model::{in_window, lookback_windows, SporeResult};
use crate::sterilisation::store as sterilisation;

/// What a look-back starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    SporeTest(String),
    Cycle(String),
    Lot(String),
    Steriliser {
        id: String,
        from: Option<NaiveDateTime>,
        to: Option<NaiveDateTime>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackReached {
    pub code: String,
    pub cycle_id: String,
    pub cycle_number: i64,
    pub contents: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionReached {
    pub session_id: String,
    pub planned_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub technician_id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    /// How to reach the client for notification.
    pub client_contact: Option<String>,
    /// The pack code or lot id through which the session is reached.
    pub via: String,
}

impl Lookback {
    /// The look-back as someone without access to clients' details reads it: sessions by the
    /// client's pseudonymous id, with no name or contact.
    pub fn pseudonymous(mut self) -> Self {
        for s in &mut self.sessions {
            s.client_name = None;
            s.client_contact = None;
        }
        self
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Lookback {
    /// `spore_test`, `cycle`, `lot` or `steriliser`.
    pub trigger: String,
    pub trigger_id: String,
    /// The loads in doubt, by start time: after `from`, before `to` (open when absent).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub cycle_ids: Vec<String>,
    pub packs: Vec<PackReached>,
    pub sessions: Vec<SessionReached>,
}

/// Cycles of a steriliser (current versions) started after `from` (or at it, when
/// `from_inclusive`) and before `to`; `None` bounds are open.
fn cycles_of(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_id: &str,
    from: Option<NaiveDateTime>,
    from_inclusive: bool,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<(String, i64, NaiveDateTime)>> {
    let mut query = cycles::table
        .filter(cycles::clinic_id.eq(clinic_id))
        .filter(cycles::steriliser_id.eq(steriliser_id))
        .filter(current("cycles"))
        .select((cycles::id, cycles::cycle_number, cycles::started_at))
        .order(cycles::started_at.asc())
        .into_boxed();
    match from {
        Some(f) if from_inclusive => query = query.filter(cycles::started_at.ge(f)),
        Some(f) => query = query.filter(cycles::started_at.gt(f)),
        None => {}
    }
    if let Some(t) = to {
        query = query.filter(cycles::started_at.lt(t));
    }
    query.load(conn)
}

pub fn compute(conn: &mut DbConn, clinic_id: &str, trigger: &Trigger) -> AppResult<Lookback> {
    let (kind, trigger_id, mut window, cycles) = match trigger {
        Trigger::SporeTest(id) => {
            let test = sterilisation::find_spore_test(conn, clinic_id, id)?
                .ok_or_else(|| not_found("spore_test", "spore test"))?;
            let result = sterilisation::find_spore_result(conn, clinic_id, id)?;
            let failed = result
                .as_ref()
                .is_some_and(|r| r.valid() && r.result() == SporeResult::Positive);
            let own = sterilisation::find_cycle(conn, clinic_id, &test.cycle_id)?;
            if failed {
                // Back to the last negative test of that steriliser, up to the passing retest.
                let tests =
                    sterilisation::read_tests_of_steriliser(conn, clinic_id, &test.steriliser_id)?;
                let window = lookback_windows(&tests)
                    .into_iter()
                    .find(|w| own.as_ref().is_some_and(|c| in_window(c.started_at, w)))
                    .unwrap_or((None, None));
                let cycles = cycles_of(
                    conn,
                    clinic_id,
                    &test.steriliser_id,
                    window.0,
                    false,
                    window.1,
                )?;
                ("spore_test", id.clone(), Some(window), cycles)
            } else {
                let cycles = own
                    .map(|c| vec![(c.id, c.cycle_number, c.started_at)])
                    .unwrap_or_default();
                ("spore_test", id.clone(), None, cycles)
            }
        }
        Trigger::Cycle(id) => {
            let c = sterilisation::find_cycle(conn, clinic_id, id)?
                .ok_or_else(|| not_found("cycle", "cycle"))?;
            (
                "cycle",
                id.clone(),
                None,
                vec![(c.id, c.cycle_number, c.started_at)],
            )
        }
        Trigger::Lot(id) => {
            crate::lots::store::find_lot(conn, clinic_id, id)?
                .ok_or_else(|| not_found("lot", "lot"))?;
            ("lot", id.clone(), None, Vec::new())
        }
        Trigger::Steriliser { id, from, to } => {
            sterilisation::find_steriliser(conn, clinic_id, id)?
                .ok_or_else(|| not_found("steriliser", "steriliser"))?;
            let cycles = cycles_of(conn, clinic_id, id, *from, true, *to)?;
            let window = if from.is_some() || to.is_some() {
                Some((*from, *to))
            } else {
                None
            };
            ("steriliser", id.clone(), window, cycles)
        }
    };
    let cycle_ids: Vec<String> = cycles.iter().map(|c| c.0.clone()).collect();
    let pack_rows: Vec<(String, String, String)> = packs::table
        .filter(packs::clinic_id.eq(clinic_id))
        .filter(packs::cycle_id.eq_any(&cycle_ids))
        .select((packs::code, packs::cycle_id, packs::contents))
        .order((packs::cycle_id.asc(), packs::id.asc()))
        .load(conn)?;
    let reached_packs: Vec<PackReached> = pack_rows
        .into_iter()
        .map(|(code, cycle_id, contents)| PackReached {
            cycle_number: cycles.iter().find(|c| c.0 == cycle_id).map_or(0, |c| c.1),
            code,
            cycle_id,
            contents,
        })
        .collect();
    // Every session reached, with its client's contact, in one joined query.
    type Reached = (
        String,
        String,
        NaiveDateTime,
        String,
        Option<NaiveDateTime>,
        String,
        String,
        String,
    );
    let packs_reached = packs::table
        .filter(packs::clinic_id.eq(clinic_id))
        .filter(packs::cycle_id.eq_any(&cycle_ids))
        .select(packs::code);
    let mut rows: Vec<Reached> = session_packs::table
        .inner_join(sessions::table.on(sessions::id.eq(session_packs::session_id)))
        .left_join(session_starts::table.on(session_starts::session_id.eq(sessions::id)))
        .inner_join(clients::table.on(clients::id.eq(sessions::client_id)))
        .filter(session_packs::clinic_id.eq(clinic_id))
        .filter(session_packs::pack_code.eq_any(packs_reached))
        // A pack set aside before the start never reached the client.
        .filter(diesel::dsl::not(diesel::dsl::exists(
            session_pack_removals::table
                .filter(session_pack_removals::session_id.eq(session_packs::session_id))
                .filter(session_pack_removals::pack_code.eq(session_packs::pack_code)),
        )))
        .filter(current("clients"))
        .select((
            sessions::id,
            sessions::client_id,
            sessions::planned_at,
            sessions::technician_id,
            session_starts::started_at.nullable(),
            clients::name,
            clients::contact,
            session_packs::pack_code,
        ))
        .load(conn)?;
    if let Trigger::Lot(lot_id) = trigger {
        rows.extend(
            session_lots::table
                .inner_join(sessions::table.on(sessions::id.eq(session_lots::session_id)))
                .left_join(session_starts::table.on(session_starts::session_id.eq(sessions::id)))
                .inner_join(clients::table.on(clients::id.eq(sessions::client_id)))
                .filter(session_lots::clinic_id.eq(clinic_id))
                .filter(session_lots::lot_id.eq(lot_id))
                .filter(current("clients"))
                .select((
                    sessions::id,
                    sessions::client_id,
                    sessions::planned_at,
                    sessions::technician_id,
                    session_starts::started_at.nullable(),
                    clients::name,
                    clients::contact,
                    session_lots::lot_id,
                ))
                .load::<Reached>(conn)?,
        );
    }
    let mut reached_sessions: Vec<SessionReached> = rows
        .into_iter()
        .map(|r| SessionReached {
            session_id: r.0,
            client_id: r.1,
            planned_at: to_utc(r.2),
            technician_id: r.3,
            started_at: r.4.map(to_utc),
            client_name: Some(r.5),
            client_contact: Some(r.6),
            via: r.7,
        })
        .collect();
    reached_sessions.sort_by(|a, b| {
        a.planned_at
            .cmp(&b.planned_at)
            .then(a.session_id.cmp(&b.session_id))
    });
    let (from, to) = window.take().unwrap_or((None, None));
    Ok(Lookback {
        trigger: kind.to_owned(),
        trigger_id,
        from: from.map(to_utc),
        to: to.map(to_utc),
        cycle_ids,
        packs: reached_packs,
        sessions: reached_sessions,
    })
}

/// Writes what a failed test or a recall reaches into the audit chain, in the transaction that
/// records the failure or the recall, so the notification list of that moment is on record.
pub fn record(
    conn: &mut DbConn,
    ctx: &crate::audit::AuditContext,
    clinic_id: &str,
    trigger: &Trigger,
) -> AppResult<Lookback> {
    let l = compute(conn, clinic_id, trigger)?;
    crate::audit::append(
        conn,
        clinic_id,
        ctx,
        crate::audit::NewEvent {
            action: "lookback.recorded",
            entity_kind: "lookback",
            entity_id: format!("{}:{}", l.trigger, l.trigger_id),
            // Ids only: the clients' contact details stay in the clients table.
            payload: serde_json::json!({
                "trigger": l.trigger,
                "trigger_id": l.trigger_id,
                "cycle_ids": l.cycle_ids,
                "pack_codes": l.packs.iter().map(|p| p.code.clone()).collect::<Vec<_>>(),
                "session_ids": l.sessions.iter().map(|s| s.session_id.clone()).collect::<Vec<_>>(),
            }),
            reason: None,
        },
    )?;
    Ok(l)
}

/// One CSV cell: quoted where needed, and never read as a formula by a spreadsheet. A cell
/// whose first visible character is = + - or @ (full-width too, and behind blanks or invisible
/// characters), or that starts with a tab or carriage return, gets a leading `'`.
pub fn cell(value: &str) -> String {
    let visible =
        value.trim_start_matches(|c: char| c.is_whitespace() || crate::input::is_invisible(c));
    let risky = value.starts_with(['\t', '\r'])
        || visible.starts_with([
            '=', '+', '-', '@', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
        ]);
    let safe = if risky {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if safe.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe
    }
}

/// One row per session reached, for a notification list.
pub fn to_csv(l: &Lookback) -> String {
    let mut out = String::from(
        "session_id,planned_at,started_at,client_id,client_name,client_contact,technician_id,via\n",
    );
    for s in &l.sessions {
        let row = [
            s.session_id.clone(),
            s.planned_at.to_rfc3339(),
            s.started_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            s.client_id.clone(),
            s.client_name.clone().unwrap_or_default(),
            s.client_contact.clone().unwrap_or_default(),
            s.technician_id.clone(),
            s.via.clone(),
        ];
        out.push_str(&row.iter().map(|v| cell(v)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// The one trigger a request names.
pub fn trigger_from(
    spore_test: Option<String>,
    cycle: Option<String>,
    lot: Option<String>,
    steriliser: Option<String>,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> AppResult<Trigger> {
    let named = [
        spore_test.is_some(),
        cycle.is_some(),
        lot.is_some(),
        steriliser.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if named != 1 {
        return Err(AppError::invalid(
            "spore_test",
            "name exactly one of spore_test, cycle, lot or steriliser",
        ));
    }
    if (from.is_some() || to.is_some()) && steriliser.is_none() {
        return Err(AppError::invalid(
            "from",
            "from and to apply to a steriliser look-back only",
        ));
    }
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            return Err(AppError::invalid("to", "must be after from"));
        }
    }
    Ok(match (spore_test, cycle, lot, steriliser) {
        (Some(id), _, _, _) => Trigger::SporeTest(id),
        (_, Some(id), _, _) => Trigger::Cycle(id),
        (_, _, Some(id), _) => Trigger::Lot(id),
        (_, _, _, Some(id)) => Trigger::Steriliser { id, from, to },
        _ => return Err(AppError::invalid("spore_test", "name a trigger")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+44 7700 900123"), "'+44 7700 900123");
        assert_eq!(cell("Alex, Client"), "\"Alex, Client\"");
        assert_eq!(cell("\u{FF1D}1+1"), "'\u{FF1D}1+1");
        assert_eq!(cell("\u{200B}=1+1"), "'\u{200B}=1+1");
        assert_eq!(cell("  @SUM(1)"), "'  @SUM(1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(cell("Zoë"), "Zoë");
        assert_eq!(cell("plain"), "plain");
    }

    #[test]
    fn exactly_one_trigger() {
        assert!(trigger_from(None, None, None, None, None, None).is_err());
        assert!(trigger_from(Some("a".into()), Some("b".into()), None, None, None, None).is_err());
        assert_eq!(
            trigger_from(None, None, Some("l".into()), None, None, None).unwrap(),
            Trigger::Lot("l".into())
        );
    }
}
