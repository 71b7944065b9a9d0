//! The per-clinic, append-only, hash-chained audit trail. Every change to a clinic's records calls
//! [`store::append`] inside the transaction that makes the change.

pub mod canonical;
pub mod chain;
pub mod store;

pub use store::{append, NewEvent};

use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult};

/// The one way to change a clinic's records: opens the write transaction, takes the clinic's
/// chain lock before anything is read, runs `write`, and refuses to commit unless `write`
/// appended at least one event to the clinic's chain. A change without its audit event cannot
/// be written by accident; it rolls back and is reported.
pub fn audited<T>(
    conn: &mut DbConn,
    clinic_id: &str,
    write: impl FnOnce(&mut DbConn) -> AppResult<T>,
) -> AppResult<T> {
    let mut locked = None;
    let outcome = db::write_transaction(conn, |conn| {
        let head = locked.insert(store::Locked::take(conn, clinic_id)?);
        let value = write(conn)?;
        if head.appended() == 0 {
            return Err(AppError::internal(format!(
                "a change to the records of clinic {clinic_id} made no audit event; it was rolled back"
            )));
        }
        Ok(value)
    });
    if let (Ok(_), Some(head)) = (&outcome, locked) {
        head.kept();
    }
    outcome
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user, by id.
    User(String),
    /// The platform operator at the command line.
    Operator,
    /// The service itself (scheduled work).
    System,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Operator => "operator",
            Self::System => "system",
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Self::User(id) => Some(id),
            Self::Operator | Self::System => None,
        }
    }
}

/// The who and the request behind a change, carried into every audit event it causes.
#[derive(Debug, Clone)]
pub struct AuditContext {
    pub actor: Actor,
    pub request_id: Option<String>,
}

impl AuditContext {
    pub fn operator() -> Self {
        Self {
            actor: Actor::Operator,
            request_id: None,
        }
    }
}
