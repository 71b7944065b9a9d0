//! A clinic's mail settings: when its audit summary goes out, the addresses its owner added,
//! and the authority's address for event mail. Changes land in the audit chain.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::model::{check_address, Frequency, Schedule, ScheduleInput};
use crate::audit::{self, AuditContext, NewEvent};
use crate::db::schema::mail_settings;
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult, FieldError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = mail_settings, treat_none_as_null = true)]
pub struct SettingsRow {
    pub clinic_id: String,
    pub frequency: Option<String>,
    pub day: Option<i32>,
    pub local_time: Option<String>,
    /// JSON array of addresses.
    pub recipients: String,
    pub authority_email: Option<String>,
    pub updated_by: Option<String>,
    pub updated_at: NaiveDateTime,
}

impl SettingsRow {
    pub fn schedule(&self) -> Option<Schedule> {
        let input = ScheduleInput {
            frequency: Frequency::from_db(self.frequency.as_deref()?).ok()?,
            day: u32::try_from(self.day?).ok()?,
            time: self.local_time.clone()?,
        };
        input.validate("summary").ok()
    }

    pub fn recipients(&self) -> Vec<String> {
        serde_json::from_str(&self.recipients).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailSettingsInput {
    /// When the audit summary goes out; `null` for none.
    pub summary: Option<ScheduleInput>,
    /// Addresses that receive the summary besides the clinic's inspectors (at most 20).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The authority's address, for the events the jurisdiction profile says to report at once.
    pub authority_email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MailSettingsView {
    pub summary: Option<ScheduleInput>,
    pub recipients: Vec<String>,
    pub authority_email: Option<String>,
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

fn view(row: Option<SettingsRow>) -> MailSettingsView {
    match row {
        None => MailSettingsView {
            summary: None,
            recipients: Vec::new(),
            authority_email: None,
            updated_by: None,
            updated_at: None,
        },
        Some(r) => MailSettingsView {
            summary: r.schedule().map(|s| ScheduleInput {
                frequency: s.frequency,
                day: s.day,
                time: s.time_text(),
            }),
            recipients: r.recipients(),
            authority_email: r.authority_email.clone(),
            updated_by: r.updated_by.clone(),
            updated_at: Some(to_utc(r.updated_at)),
        },
    }
}

pub fn find(conn: &mut DbConn, clinic_id: &str) -> QueryResult<Option<SettingsRow>> {
    mail_settings::table
        .find(clinic_id)
        .select(SettingsRow::as_select())
        .first(conn)
        .optional()
}

pub fn get(conn: &mut DbConn, clinic_id: &str) -> AppResult<MailSettingsView> {
    Ok(view(find(conn, clinic_id)?))
}

/// Every clinic with a summary schedule.
pub fn scheduled(conn: &mut DbConn) -> QueryResult<Vec<SettingsRow>> {
    mail_settings::table
        .filter(mail_settings::frequency.is_not_null())
        .select(SettingsRow::as_select())
        .load(conn)
}

/// Replaces the clinic's mail settings after checking every field.
pub fn put(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    input: &MailSettingsInput,
) -> AppResult<MailSettingsView> {
    let mut errors = Vec::new();
    let schedule = match &input.summary {
        None => None,
        Some(s) => match s.validate("summary") {
            Ok(s) => Some(s),
            Err(e) => {
                errors.extend(e);
                None
            }
        },
    };
    if input.recipients.len() > 20 {
        errors.push(FieldError::new("recipients", "at most 20 addresses"));
    }
    let mut recipients: Vec<String> = Vec::new();
    for (i, r) in input.recipients.iter().enumerate() {
        match check_address(r) {
            Ok(a) if !recipients.contains(&a) => recipients.push(a),
            Ok(_) => {}
            Err(reason) => errors.push(FieldError::new(format!("recipients[{i}]"), reason)),
        }
    }
    let authority = match input.authority_email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => match check_address(a) {
            Ok(a) => Some(a),
            Err(reason) => {
                errors.push(FieldError::new("authority_email", reason));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let row = SettingsRow {
        clinic_id: clinic_id.to_owned(),
        frequency: schedule.map(|s| s.frequency.as_db().to_owned()),
        day: schedule.and_then(|s| i32::try_from(s.day).ok()),
        local_time: schedule.map(|s| s.time_text()),
        recipients: serde_json::to_string(&recipients).map_err(AppError::internal)?,
        authority_email: authority,
        updated_by: ctx.actor.id().map(str::to_owned),
        updated_at: db::now(),
    };
    audit::audited(conn, clinic_id, |conn| {
        if find(conn, clinic_id)?.is_some() {
            diesel::update(mail_settings::table.find(clinic_id))
                .set(&row)
                .execute(conn)?;
        } else {
            diesel::insert_into(mail_settings::table)
                .values(&row)
                .execute(conn)?;
        }
        let v = view(Some(row.clone()));
        audit::append(
            conn,
            clinic_id,
            ctx,
            NewEvent {
                action: "mail.settings_changed",
                entity_kind: "mail_settings",
                entity_id: clinic_id.to_owned(),
                payload: json!({"summary": v.summary, "recipients": v.recipients, "authority_email": v.authority_email}),
                reason: None,
            },
        )?;
        Ok(v)
    })
}
