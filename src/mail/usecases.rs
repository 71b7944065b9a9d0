//! What owners do with mail: send an export's summary now.

use diesel::prelude::*;
use serde_json::json;

use super::summary::{self, SummaryInput};
use crate::audit::{self, NewEvent};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::exports::usecases::{self as exports, ExportState};
use crate::outbox::{self, settings, NewMail};

/// Queues the summary of export `id` for `to`, who must be a running inspector of the clinic or
/// an address the owner added.
pub fn send_now(
    conn: &mut DbConn,
    profiles: &crate::jurisdiction::profiles::Profiles,
    ctx: &audit::AuditContext,
    clinic_id: &str,
    export_id: &str,
    to: &str,
    public_url: &str,
) -> AppResult<outbox::OutboxRow> {
    let to = crate::outbox::model::check_address(to).map_err(|r| AppError::invalid("to", r))?;
    let export = exports::get(conn, clinic_id, export_id)?;
    if export.state == ExportState::Failed {
        return Err(AppError::Conflict(
            "the export failed: request it again, then send it".into(),
        ));
    }
    let allowed = crate::inspectors::usecases::active_inspector_emails(conn, clinic_id)?
        .contains(&to)
        || settings::find(conn, clinic_id)?.is_some_and(|s| s.recipients().contains(&to));
    if !allowed {
        return Err(AppError::invalid(
            "to",
            "is neither an inspector of this clinic with a running grant nor an address the owner added to the mail settings' recipients",
        ));
    }
    let from = crate::db::schema::exports::table
        .find(export_id)
        .select((
            crate::db::schema::exports::period_from,
            crate::db::schema::exports::period_to,
        ))
        .first::<(chrono::NaiveDateTime, chrono::NaiveDateTime)>(conn)?;
    audit::audited(conn, clinic_id, |conn| {
        let composed = summary::compose(
            conn,
            profiles,
            &SummaryInput {
                clinic_id,
                from: from.0,
                to: from.1,
                export_id,
                public_url,
            },
        )?;
        let row = outbox::enqueue(
            conn,
            NewMail {
                clinic_id: clinic_id.to_owned(),
                kind: "summary",
                recipient: to.clone(),
                subject: composed.subject,
                body_text: composed.text,
                body_html: Some(composed.html),
                export_id: Some(export_id.to_owned()),
            },
        )?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            NewEvent {
                action: "export.sent",
                entity_kind: "export",
                entity_id: export_id.to_owned(),
                payload: json!({"to": to, "message": row.id}),
                reason: None,
            },
        )?;
        Ok(row)
    })
}
