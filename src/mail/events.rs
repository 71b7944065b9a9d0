//! Event mail: a failed spore test or a recall, reported to the authority at once where the
//! clinic's jurisdiction profile asks for it. Queued in the transaction that records the event.

use serde_json::json;

use crate::audit::{self, AuditContext, NewEvent};
use crate::compliance::lookback::Lookback;
use crate::db::DbConn;
use crate::error::AppResult;
use crate::jurisdiction::profiles::{AuthorityEvent, Profiles};
use crate::outbox::settings;
use crate::outbox::{self, NewMail};

/// Queues the report of `event` to the clinic's authority address, if the profile requires the
/// report and the clinic has given the address (the compliance view flags a missing address).
/// Returns the message id when one was queued.
pub fn notify_authority(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    event: AuthorityEvent,
    what: &str,
    lookback: &Lookback,
) -> AppResult<Option<String>> {
    let Some(clinic) = crate::clinics::store::find(conn, clinic_id)? else {
        return Ok(None);
    };
    let profile = crate::clinics::context::profile(profiles, &clinic)?;
    let required = profile
        .notify_authority_of
        .value
        .as_ref()
        .is_some_and(|v| v.contains(&event));
    if !required {
        return Ok(None);
    }
    let Some(address) = settings::find(conn, clinic_id)?.and_then(|s| s.authority_email) else {
        return Ok(None);
    };
    let title = match event {
        AuthorityEvent::PositiveSporeTest => "Positive spore test",
        AuthorityEvent::LotRecall => "Recalled lot",
    };
    let body = format!(
        "{title} at {name}{registration}{address}.\n\n{what}\n\n\
         Look-back: {loads}, {packs} and {sessions} are reached; the clinic \
         holds the list of clients to contact.\n\n\
         Reported under: {source}\n",
        name = clinic.name,
        registration = clinic
            .registration_number
            .as_deref()
            .map(|r| format!(" (registration {r})"))
            .unwrap_or_default(),
        address = clinic
            .address
            .as_deref()
            .map(|a| format!(", {a}"))
            .unwrap_or_default(),
        loads = super::summary::count_of(lookback.cycle_ids.len(), "load"),
        packs = super::summary::count_of(lookback.packs.len(), "pack"),
        sessions = super::summary::count_of(lookback.sessions.len(), "client session"),
        source = profile.notify_authority_of.source,
    );
    let row = outbox::enqueue(
        conn,
        NewMail {
            clinic_id: clinic_id.to_owned(),
            kind: "authority",
            recipient: address,
            subject: format!("{title}: {}", clinic.name),
            body_text: body,
            body_html: None,
            export_id: None,
        },
    )?;
    Ok(Some(row.id))
}

/// [`notify_authority`], and the fact that the report was queued in the audit chain.
#[allow(clippy::too_many_arguments)]
pub fn report(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    event: AuthorityEvent,
    (entity_kind, entity_id): (&'static str, &str),
    what: &str,
    lookback: &Lookback,
) -> AppResult<()> {
    if let Some(message) = notify_authority(conn, profiles, clinic_id, event, what, lookback)? {
        audit::append(
            conn,
            clinic_id,
            ctx,
            NewEvent {
                action: "authority.report_queued",
                entity_kind,
                entity_id: entity_id.to_owned(),
                payload: json!({"event": event, "message": message}),
                reason: None,
            },
        )?;
    }
    Ok(())
}
