//! Audit exports: what an inspector can keep, read and verify without trusting the clinic or us.
//! This part: the installation's signing key and where its public half is published.

pub mod bundle;
pub mod entries;
pub mod key;
pub mod pages;
pub mod pdf;
pub mod report;
pub mod store;
pub mod usecases;
pub mod verify_text;

pub use key::ExportKey;
