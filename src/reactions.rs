//! What follows from a domain event, in the transaction of the use case that caused it: a
//! positive spore test or a recall records its look-back and, where the clinic's profile asks,
//! queues the report to the authority.

use crate::audit::AuditContext;
use crate::compliance::lookback::{self, Trigger};
use crate::db::{self, DbConn};
use crate::error::AppResult;
use crate::events::{DomainEvent, WithEvents};
use crate::jurisdiction::profiles::{AuthorityEvent, Profiles};

/// Runs a use case and its reactions in one write transaction: both commit or neither does.
pub fn run<T>(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    use_case: impl FnOnce(&mut DbConn) -> AppResult<WithEvents<T>>,
) -> AppResult<T> {
    db::write_transaction(conn, |conn| {
        let done = use_case(conn)?;
        for event in &done.events {
            react(conn, profiles, ctx, event)?;
        }
        Ok(done.view)
    })
}

fn react(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    event: &DomainEvent,
) -> AppResult<()> {
    let (clinic_id, trigger, authority_event, subject, summary) = match event {
        DomainEvent::SporeTestPositive {
            clinic_id,
            spore_test_id,
            summary,
        } => (
            clinic_id,
            Trigger::SporeTest(spore_test_id.clone()),
            AuthorityEvent::PositiveSporeTest,
            ("spore_test", spore_test_id.as_str()),
            summary,
        ),
        DomainEvent::LotRecalled {
            clinic_id,
            lot_id,
            summary,
        } => (
            clinic_id,
            Trigger::Lot(lot_id.clone()),
            AuthorityEvent::LotRecall,
            ("lot", lot_id.as_str()),
            summary,
        ),
    };
    let reached = lookback::record(conn, ctx, clinic_id, &trigger)?;
    crate::mail::events::report(
        conn,
        profiles,
        ctx,
        clinic_id,
        authority_event,
        subject,
        summary,
        &reached,
    )
}
