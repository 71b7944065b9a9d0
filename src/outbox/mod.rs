//! The mail a clinic's records cause, kept until it is delivered: the queue of messages (written
//! in the transaction of whatever caused them), the clinic's mail settings and summary schedules.
//! Storage only; delivery, summaries and reminders live in `mail`, above the records.

pub mod model;
pub mod queue;
pub mod settings;

pub use queue::*;
