//! Client queries and use cases.

use super::store::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ClientInput;
use crate::audit::{self, AuditContext};
use crate::db::schema::clients;
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::records::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub id: String,
    pub version: i32,
    #[serde(flatten)]
    pub fields: ClientInput,
    pub recorded_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<VersionView>,
}

/// A client as someone without access to clients' details sees them (an inspector, unless their
/// grant says otherwise): the pseudonymous id and which version is current, nothing that names
/// or reaches the person.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PseudonymousClient {
    pub id: String,
    pub version: i32,
    pub recorded_at: DateTime<Utc>,
    /// Why the name, contact and date of birth are not shown.
    pub details: String,
}

/// A client in full, or pseudonymous.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ClientAnswer {
    Full(ClientView),
    Pseudonymous(PseudonymousClient),
}

impl ClientView {
    /// Full for a caller who may see clients' details, else pseudonymous.
    pub fn for_caller(self, client_details: bool) -> ClientAnswer {
        if client_details {
            return ClientAnswer::Full(self);
        }
        ClientAnswer::Pseudonymous(PseudonymousClient {
            id: self.id,
            version: self.version,
            recorded_at: self.recorded_at,
            details: "withheld: inspectors see clients by pseudonymous id unless their grant \
                      includes clients' contact details"
                .to_owned(),
        })
    }
}

fn fields(r: &ClientRow) -> ClientInput {
    ClientInput {
        name: r.name.clone(),
        contact: r.contact.clone(),
        date_of_birth: r.date_of_birth,
    }
}

fn view(r: &ClientRow) -> ClientView {
    ClientView {
        id: r.id.clone(),
        version: r.version,
        fields: fields(r),
        recorded_at: to_utc(r.recorded_at),
        history: Vec::new(),
    }
}

pub fn create(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    mut input: ClientInput,
) -> AppResult<ClientView> {
    input.normalise();
    validated(input.validate(crate::clinics::context::today(conn, clinic_id)?))?;
    audit::audited(conn, clinic_id, |conn| {
        let row = insert(conn, db::new_id(), 1, clinic_id, &input, ctx, None)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "client.registered",
                "client",
                &row.id,
                audit_payload(&row),
                None,
            ),
        )?;
        Ok(view(&row))
    })
}

pub fn amend(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    req: &AmendmentRequest,
) -> AppResult<ClientView> {
    let reason = req.reason()?;
    audit::audited(conn, clinic_id, |conn| {
        let current = find(conn, clinic_id, id)?.ok_or(AppError::NoSuch("client"))?;
        let mut f: ClientInput = apply_changes(&fields(&current), &req.changes, &[])?;
        f.normalise();
        validated(f.validate(crate::clinics::context::today(conn, clinic_id)?))?;
        let row = insert(
            conn,
            id.to_owned(),
            current.version + 1,
            clinic_id,
            &f,
            ctx,
            Some(reason.clone()),
        )?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "client.amended",
                "client",
                id,
                audit_payload(&row),
                Some(reason),
            ),
        )?;
        Ok(view(&row))
    })
}

pub fn get(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<ClientView> {
    let row = find(conn, clinic_id, id)?.ok_or(AppError::NoSuch("client"))?;
    let versions: Vec<ClientRow> = clients::table
        .filter(clients::clinic_id.eq(clinic_id))
        .filter(clients::id.eq(id))
        .select(ClientRow::as_select())
        .order(clients::version.asc())
        .load(conn)?;
    let mut v = view(&row);
    v.history = history_of(&versions, |r| Ok(fields(r)))?;
    Ok(v)
}

pub fn list(
    conn: &mut DbConn,
    clinic_id: &str,
    after_id: Option<String>,
    limit: i64,
) -> AppResult<(Vec<ClientView>, Option<String>)> {
    let mut query = clients::table
        .filter(clients::clinic_id.eq(clinic_id))
        .filter(current("clients"))
        .select(ClientRow::as_select())
        .order(clients::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(after) = after_id {
        query = query.filter(clients::id.lt(after));
    }
    let mut rows = query.load(conn)?;
    let next = cut_page(&mut rows, limit, |r| r.id.clone());
    Ok((rows.iter().map(view).collect(), next))
}
