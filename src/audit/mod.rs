//! The per-clinic, append-only, hash-chained audit trail. Every change to a clinic's records calls
//! [`store::append`] inside the transaction that makes the change.

pub mod canonical;
pub mod chain;
pub mod store;

pub use store::{append, NewEvent};

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
