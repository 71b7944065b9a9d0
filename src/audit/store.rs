//! Appending to and reading a clinic's chain.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

use super::chain::{self, EventFields, Verifier, GENESIS_HASH};
use super::AuditContext;
use crate::db::schema::{audit_events, chain_heads};
use crate::db::{self, DbConn};

/// A change to record: what happened to which record, with the record's content.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub action: &'static str,
    pub entity_kind: &'static str,
    pub entity_id: String,
    pub payload: Value,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditEventRow {
    pub clinic_id: String,
    pub seq: i64,
    pub recorded_at: NaiveDateTime,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub entity_kind: String,
    pub entity_id: String,
    pub payload: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEventRow {
    pub fn payload_json(&self) -> Value {
        serde_json::from_str(&self.payload).unwrap_or(Value::Null)
    }
}

/// Starts a clinic's chain. Called in the transaction that creates the clinic.
pub fn init_chain(conn: &mut DbConn, clinic_id: &str) -> QueryResult<()> {
    diesel::insert_into(chain_heads::table)
        .values((
            chain_heads::clinic_id.eq(clinic_id),
            chain_heads::seq.eq(0i64),
            chain_heads::head_hash.eq(GENESIS_HASH),
        ))
        .execute(conn)?;
    Ok(())
}

/// Reads the head and holds it until the transaction ends, so two appends cannot both build on
/// the same event. PostgreSQL locks the row; on SQLite the caller's IMMEDIATE transaction already
/// holds the single write lock.
fn lock_head(conn: &mut DbConn, clinic_id: &str) -> QueryResult<(i64, String)> {
    let head = chain_heads::table
        .find(clinic_id)
        .select((chain_heads::seq, chain_heads::head_hash));
    match conn {
        DbConn::Postgres(pg) => head.for_update().first(pg),
        DbConn::Sqlite(_) => head.first(conn),
    }
}

thread_local! {
    /// The head of the chain a write transaction on this thread holds locked (see [`Locked`]):
    /// the clinic, the head's sequence number and hash, and how many events the write appended.
    static LOCKED: std::cell::RefCell<Option<LockedState>> = const { std::cell::RefCell::new(None) };
}

#[derive(Clone)]
struct LockedState {
    clinic_id: String,
    seq: i64,
    hash: String,
    appended: u64,
}

/// A clinic's chain head, locked by a write transaction and known from then on: appends in the
/// transaction build on it without reading it again, and the write can tell whether it appended
/// anything without asking the database.
pub struct Locked {
    /// What an enclosing write knew, put back if this one rolls back.
    outer: Option<LockedState>,
}

impl Locked {
    /// Locks the clinic's head; every change reads after this, so none can race.
    pub fn take(conn: &mut DbConn, clinic_id: &str) -> QueryResult<Self> {
        let (seq, hash) = lock_head(conn, clinic_id)?;
        let outer = LOCKED.with(|l| {
            l.borrow_mut().replace(LockedState {
                clinic_id: clinic_id.to_owned(),
                seq,
                hash,
                appended: 0,
            })
        });
        Ok(Self { outer })
    }

    /// How many events the write has appended so far.
    pub fn appended(&self) -> u64 {
        LOCKED.with(|l| l.borrow().as_ref().map_or(0, |s| s.appended))
    }

    /// The write committed (or its savepoint was released): an enclosing write of the same
    /// clinic builds on the new head.
    pub fn kept(mut self) {
        let outer = self.outer.take();
        LOCKED.with(|l| {
            let mut l = l.borrow_mut();
            let inner = l.take();
            *l = match (outer, inner) {
                (Some(mut outer), Some(inner)) if outer.clinic_id == inner.clinic_id => {
                    outer.seq = inner.seq;
                    outer.hash = inner.hash;
                    outer.appended += inner.appended;
                    Some(outer)
                }
                (outer, _) => outer,
            };
        });
    }
}

impl Drop for Locked {
    /// Rolled back, or never finished: what the enclosing write knew still holds.
    fn drop(&mut self) {
        let outer = self.outer.take();
        LOCKED.with(|l| *l.borrow_mut() = outer);
    }
}

/// The head as the enclosing write transaction holds it, when it holds this clinic's.
fn known_head(clinic_id: &str) -> Option<(i64, String)> {
    LOCKED.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|s| s.clinic_id == clinic_id)
            .map(|s| (s.seq, s.hash.clone()))
    })
}

fn appended_to(clinic_id: &str, seq: i64, hash: &str) {
    LOCKED.with(|l| {
        if let Some(s) = l.borrow_mut().as_mut().filter(|s| s.clinic_id == clinic_id) {
            s.seq = seq;
            s.hash = hash.to_owned();
            s.appended += 1;
        }
    });
}

/// Appends one event to the clinic's chain. Must run inside the write transaction of the change
/// it records (see [`crate::db::write_transaction`]).
pub fn append(
    conn: &mut DbConn,
    clinic_id: &str,
    ctx: &AuditContext,
    event: NewEvent,
) -> QueryResult<AuditEventRow> {
    let (head_seq, head_hash) = match known_head(clinic_id) {
        Some(head) => head,
        None => lock_head(conn, clinic_id)?,
    };
    let recorded_at = db::now();
    let seq = head_seq + 1;
    let fields = EventFields {
        clinic_id,
        seq,
        recorded_at,
        actor_kind: ctx.actor.kind(),
        actor_id: ctx.actor.id(),
        action: event.action,
        entity_kind: event.entity_kind,
        entity_id: &event.entity_id,
        payload: &event.payload,
        reason: event.reason.as_deref(),
        request_id: ctx.request_id.as_deref(),
    };
    let hash = chain::event_hash(&head_hash, &fields)
        .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))?;
    let row = AuditEventRow {
        clinic_id: clinic_id.to_owned(),
        seq,
        recorded_at,
        actor_kind: ctx.actor.kind().to_owned(),
        actor_id: ctx.actor.id().map(str::to_owned),
        action: event.action.to_owned(),
        entity_kind: event.entity_kind.to_owned(),
        entity_id: event.entity_id.clone(),
        payload: canonical_payload(&event.payload),
        reason: event.reason.clone(),
        request_id: ctx.request_id.clone(),
        prev_hash: head_hash,
        hash,
    };
    diesel::insert_into(audit_events::table)
        .values(&row)
        .execute(conn)?;
    let updated = diesel::update(chain_heads::table.find(clinic_id))
        .set((
            chain_heads::seq.eq(seq),
            chain_heads::head_hash.eq(&row.hash),
        ))
        .execute(conn)?;
    if updated != 1 {
        return Err(diesel::result::Error::NotFound);
    }
    appended_to(clinic_id, seq, &row.hash);
    Ok(row)
}

fn canonical_payload(payload: &Value) -> String {
    super::canonical::to_canonical_string(payload)
}

/// Filters for listing events.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub after_seq: Option<i64>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    pub entity_kind: Option<String>,
    pub entity_id: Option<String>,
    /// Newest first (the cursor then pages backwards through the chain).
    pub newest_first: bool,
}

pub fn list(
    conn: &mut DbConn,
    clinic_id: &str,
    filter: &EventFilter,
    limit: i64,
) -> QueryResult<Vec<AuditEventRow>> {
    let mut query = audit_events::table
        .filter(audit_events::clinic_id.eq(clinic_id))
        .select(AuditEventRow::as_select())
        .limit(limit)
        .into_boxed();
    query = if filter.newest_first {
        query.order(audit_events::seq.desc())
    } else {
        query.order(audit_events::seq.asc())
    };
    match (filter.after_seq, filter.newest_first) {
        (Some(after), false) => query = query.filter(audit_events::seq.gt(after)),
        (Some(before), true) => query = query.filter(audit_events::seq.lt(before)),
        (None, _) => {}
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_events::recorded_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_events::recorded_at.lt(to));
    }
    if let Some(kind) = &filter.entity_kind {
        query = query.filter(audit_events::entity_kind.eq(kind.clone()));
    }
    if let Some(id) = &filter.entity_id {
        query = query.filter(audit_events::entity_id.eq(id.clone()));
    }
    query.load(conn)
}

/// The outcome of verifying a clinic's whole chain.
#[derive(Debug, Clone)]
pub struct Verification {
    pub events_checked: u64,
    pub head_seq: i64,
    pub head_hash: String,
    pub first_break: Option<chain::ChainBreak>,
}

/// Recomputes every hash from the stored fields, in pages, and compares the end with the stored
/// head (so a deleted tail is caught too).
pub fn verify(conn: &mut DbConn, clinic_id: &str) -> QueryResult<Verification> {
    const PAGE: i64 = 1000;
    let mut verifier = Verifier::new();
    let mut after = 0i64;
    'pages: loop {
        let filter = EventFilter {
            after_seq: Some(after),
            ..EventFilter::default()
        };
        let rows = list(conn, clinic_id, &filter, PAGE)?;
        for row in &rows {
            let payload: Value = match serde_json::from_str(&row.payload) {
                Ok(p) => p,
                Err(_) => {
                    verifier.first_break = Some(chain::ChainBreak {
                        seq: row.seq,
                        reason: "payload is not valid JSON".to_owned(),
                    });
                    break 'pages;
                }
            };
            let fields = EventFields {
                clinic_id: &row.clinic_id,
                seq: row.seq,
                recorded_at: row.recorded_at,
                actor_kind: &row.actor_kind,
                actor_id: row.actor_id.as_deref(),
                action: &row.action,
                entity_kind: &row.entity_kind,
                entity_id: &row.entity_id,
                payload: &payload,
                reason: row.reason.as_deref(),
                request_id: row.request_id.as_deref(),
            };
            if !verifier.push(&fields, &row.prev_hash, &row.hash) {
                break 'pages;
            }
            after = row.seq;
        }
        if rows.len() < PAGE as usize {
            break;
        }
    }
    let (stored_seq, stored_hash): (i64, String) = chain_heads::table
        .find(clinic_id)
        .select((chain_heads::seq, chain_heads::head_hash))
        .first(conn)?;
    let (seq, hash) = verifier.head();
    if verifier.first_break.is_none() && (seq != stored_seq || hash != stored_hash) {
        verifier.first_break = Some(chain::ChainBreak {
            seq: seq + 1,
            reason: format!(
                "the chain ends at event {seq} but its recorded head is event {stored_seq}: events are missing"
            ),
        });
    }
    Ok(Verification {
        events_checked: verifier.checked,
        head_seq: stored_seq,
        head_hash: stored_hash,
        first_break: verifier.first_break,
    })
}
