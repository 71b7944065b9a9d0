//! Mail: an outbox written with the event that causes each message, a worker that delivers it
//! (to `.eml` files or SMTP) with back-off, scheduled audit summaries, event reports to the
//! authority and expiry reminders.

pub mod events;
pub mod summary;
pub mod transport;
pub mod usecases;
pub mod worker;

pub use worker::{Mailer, WorkerHandle};
