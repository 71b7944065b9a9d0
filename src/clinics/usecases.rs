//! Clinic queries, and the use cases that create a clinic and manage its members.

use super::store::*;
use diesel::prelude::*;
use serde_json::json;

use super::model::{ClinicView, NewClinic};
use crate::audit::{self, AuditContext, NewEvent};
use crate::auth::store::{self as accounts, MembershipRow, UserRow};
use crate::auth::Role;
use crate::db::schema::clinics;
use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult};
use crate::jurisdiction::profiles::Profiles;

impl From<ClinicRow> for ClinicView {
    fn from(r: ClinicRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            timezone: r.timezone,
            jurisdiction: r.jurisdiction,
            address: r.address,
            registration_number: r.registration_number,
            created_at: db::to_utc(r.created_at),
            pack_shelf_life_days: r.pack_shelf_life_days,
        }
    }
}

/// Sterilised packs expire after 30 days unless the clinic chooses otherwise.
pub const DEFAULT_PACK_SHELF_LIFE_DAYS: i32 = 30;

/// Sets the clinic's pack shelf life (days), or an event-related policy (`None`). Packs keep the
/// policy they were made under.
/// The clinic's settings, with its jurisdiction's limit and source.
pub fn settings(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
) -> AppResult<crate::clinics::model::SettingsView> {
    let context = crate::clinics::context::load(conn, profiles, clinic_id)?;
    let limit = &context.profile.sterilisation.pack_shelf_life_days;
    Ok(crate::clinics::model::SettingsView {
        pack_shelf_life_days: context.clinic.pack_shelf_life_days,
        jurisdiction_pack_shelf_life_days: limit.value,
        jurisdiction_pack_shelf_life_source: limit.source.clone(),
        timezone: context.clinic.timezone.clone(),
        jurisdiction: context.clinic.jurisdiction.clone(),
        jurisdiction_name: context.profile.name.clone(),
    })
}

pub fn set_pack_shelf_life(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    days: Option<i32>,
) -> AppResult<ClinicRow> {
    if days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(AppError::invalid(
            "pack_shelf_life_days",
            "must be between 1 and 3650 days, or null for an event-related policy",
        ));
    }
    audit::audited(conn, clinic_id, |conn| {
        let previous = find(conn, clinic_id)?.ok_or(AppError::NoSuch("clinic"))?;
        // The jurisdiction's limit may only be shortened.
        let limit = &crate::clinics::context::profile(profiles, &previous)?
            .sterilisation
            .pack_shelf_life_days;
        if let Some(max) = limit.value {
            if days.is_none_or(|d| i64::from(d) > i64::from(max)) {
                return Err(AppError::invalid(
                    "pack_shelf_life_days",
                    format!(
                        "must be at most {max} days in this jurisdiction ({})",
                        limit.source
                    ),
                ));
            }
        }
        diesel::update(clinics::table.find(clinic_id))
            .set(clinics::pack_shelf_life_days.eq(days))
            .execute(conn)?;
        super::store::changed(clinic_id);
        let row = find(conn, clinic_id)?.ok_or(AppError::NoSuch("clinic"))?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            NewEvent {
                action: "clinic.settings_changed",
                entity_kind: "clinic",
                entity_id: clinic_id.to_owned(),
                payload: json!({
                    "pack_shelf_life_days": days,
                    "previous_pack_shelf_life_days": previous.pack_shelf_life_days,
                }),
                reason: None,
            },
        )?;
        Ok(row)
    })
}

/// How the owner account of a new clinic is found or made.
pub enum OwnerAccount {
    /// Create an account with this display name and password hash (unless the email has one).
    New {
        display_name: String,
        password_hash: String,
    },
    /// The email must already have an account.
    Existing,
}

/// Creates a clinic, starts its audit chain and makes `owner_email` its owner, in one transaction.
pub fn create_clinic(
    conn: &mut DbConn,
    ctx: &AuditContext,
    profiles: &Profiles,
    new: &NewClinic,
    owner_email: &str,
    owner: OwnerAccount,
) -> AppResult<(ClinicRow, UserRow)> {
    new.validate(profiles).map_err(AppError::Validation)?;
    db::write_transaction(conn, |conn| {
        let row = ClinicRow {
            id: db::new_id(),
            name: new.name.trim().to_owned(),
            timezone: new.timezone.clone(),
            jurisdiction: new.jurisdiction.clone(),
            address: new.address.clone(),
            registration_number: new.registration_number.clone(),
            created_at: db::now(),
            pack_shelf_life_days: Some(DEFAULT_PACK_SHELF_LIFE_DAYS),
        };
        diesel::insert_into(clinics::table)
            .values(&row)
            .execute(conn)?;
        audit::store::init_chain(conn, &row.id)?;
        audit::append(
            conn,
            &row.id,
            ctx,
            NewEvent {
                action: "clinic.created",
                entity_kind: "clinic",
                entity_id: row.id.clone(),
                payload: clinic_payload(&row),
                reason: None,
            },
        )?;
        let user = match (accounts::find_user_by_email(conn, owner_email)?, owner) {
            (Some(user), _) => user,
            (
                None,
                OwnerAccount::New {
                    display_name,
                    password_hash,
                },
            ) => accounts::insert_user(
                conn,
                &accounts::NewUser {
                    email: owner_email,
                    display_name: &display_name,
                    password_hash: &password_hash,
                },
            )?,
            (None, OwnerAccount::Existing) => {
                return Err(AppError::invalid("owner_email", "has no account"));
            }
        };
        let membership = accounts::insert_membership(
            conn,
            &row.id,
            &user.id,
            Role::Owner,
            new.owner_works_on_clients,
        )?;
        audit::append(
            conn,
            &row.id,
            ctx,
            member_event("member.added", &membership, &user, None),
        )?;
        // Every clinic starts with a sensible setup checklist for SMP and tattoo work.
        crate::checklists::usecases::create_default(conn, ctx, &row.id)?;
        Ok((row, user))
    })
}

fn clinic_payload(row: &ClinicRow) -> serde_json::Value {
    json!({
        "id": row.id,
        "name": row.name,
        "timezone": row.timezone,
        "jurisdiction": row.jurisdiction,
        "address": row.address,
        "registration_number": row.registration_number,
        "pack_shelf_life_days": row.pack_shelf_life_days,
        "created_at": audit::chain::format_time(row.created_at),
    })
}

pub fn member_event(
    action: &'static str,
    m: &MembershipRow,
    user: &UserRow,
    reason: Option<String>,
) -> NewEvent {
    NewEvent {
        action,
        entity_kind: "member",
        entity_id: m.id.clone(),
        payload: json!({
            "membership_id": m.id,
            "user_id": user.id,
            "email": user.email,
            "display_name": user.display_name,
            "role": m.role,
            "active": m.active,
            "works_on_clients": m.works_on_clients,
        }),
        reason,
    }
}

/// Refuses a second membership of one clinic.
pub fn ensure_not_member(conn: &mut DbConn, clinic_id: &str, user_id: &str) -> AppResult<()> {
    match accounts::find_member(conn, clinic_id, user_id)? {
        Some(_) => Err(AppError::Conflict(
            "this email is already a member of the clinic".to_owned(),
        )),
        None => Ok(()),
    }
}

/// A new member: an existing account (by email) joins, or a new account is created.
pub struct NewMember {
    pub email: String,
    pub display_name: Option<String>,
    pub role: Role,
    /// Hash of the initial password, for a new account only.
    pub password_hash: Option<String>,
    /// For an owner: whether they work on clients (technicians always do).
    pub works_on_clients: bool,
}

pub fn add_member(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    new: NewMember,
) -> AppResult<(MembershipRow, UserRow)> {
    audit::audited(conn, clinic_id, |conn| {
        let user = match accounts::find_user_by_email(conn, &new.email)? {
            Some(user) => {
                ensure_not_member(conn, clinic_id, &user.id)?;
                user
            }
            None => {
                let Some(hash) = new.password_hash.as_deref() else {
                    return Err(AppError::invalid(
                        "password",
                        "is required to create a new account",
                    ));
                };
                let Some(name) = new.display_name.as_deref() else {
                    return Err(AppError::invalid(
                        "display_name",
                        "is required to create a new account",
                    ));
                };
                accounts::insert_user(
                    conn,
                    &accounts::NewUser {
                        email: &new.email,
                        display_name: name,
                        password_hash: hash,
                    },
                )?
            }
        };
        let membership =
            accounts::insert_membership(conn, clinic_id, &user.id, new.role, new.works_on_clients)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            member_event("member.added", &membership, &user, None),
        )?;
        Ok((membership, user))
    })
}

/// What an owner changes about a member.
pub enum MemberChange {
    Role(Role),
    Deactivate {
        reason: String,
    },
    Reactivate {
        reason: String,
    },
    /// An owner starts or stops working on clients.
    WorksOnClients {
        works: bool,
        reason: String,
    },
}

pub fn change_member(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    user_id: &str,
    change: MemberChange,
) -> AppResult<(MembershipRow, UserRow)> {
    audit::audited(conn, clinic_id, |conn| {
        let (current, user) =
            accounts::find_member(conn, clinic_id, user_id)?.ok_or(AppError::NoSuch("member"))?;
        let current_role = current.role();
        let mut works = current.works_on_clients;
        let (role, active, action, reason) = match change {
            MemberChange::Role(role) => {
                if role == current_role {
                    return Err(AppError::Conflict(format!(
                        "the member already has the role {}",
                        role.as_db()
                    )));
                }
                // A technician made owner goes on working on clients until they say otherwise.
                works = current_role.works_on_clients(works);
                (role, current.active, "member.role_changed", None)
            }
            MemberChange::WorksOnClients { works: w, reason } => {
                if current_role != Role::Owner {
                    return Err(AppError::Conflict(format!(
                        "only an owner chooses this: a {} {}",
                        current_role.as_db(),
                        if current_role == Role::Technician {
                            "always works on clients"
                        } else {
                            "never works on clients"
                        }
                    )));
                }
                if w == current.works_on_clients {
                    return Err(AppError::Conflict(format!(
                        "the member already {} on clients",
                        if w { "works" } else { "does not work" }
                    )));
                }
                works = w;
                (
                    current_role,
                    current.active,
                    "member.practice_changed",
                    Some(reason),
                )
            }
            MemberChange::Deactivate { reason } => {
                if !current.active {
                    return Err(AppError::Conflict(
                        "the member is already deactivated".into(),
                    ));
                }
                (current_role, false, "member.deactivated", Some(reason))
            }
            MemberChange::Reactivate { reason } => {
                if current.active {
                    return Err(AppError::Conflict("the member is already active".into()));
                }
                (current_role, true, "member.reactivated", Some(reason))
            }
        };
        let loses_owner =
            current.active && current_role == Role::Owner && (role != Role::Owner || !active);
        if loses_owner && accounts::active_owner_count(conn, clinic_id)? <= 1 {
            return Err(AppError::Conflict(
                "a clinic must keep at least one active owner; add another owner first".into(),
            ));
        }
        let updated = accounts::update_membership(conn, &current.id, role, active, works)?;
        let mut event = member_event(action, &updated, &user, reason);
        if action == "member.role_changed" {
            event.payload["previous_role"] = current.role.clone().into();
        }
        audit::append(conn, clinic_id, ctx, event)?;
        Ok((updated, user))
    })
}
