//! Inspectors: read-only access to a clinic for a period, enforced on every request and
//! recorded read by read in the clinic's audit chain.

pub mod store;
pub mod usecases;
