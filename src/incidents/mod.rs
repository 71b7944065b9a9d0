//! Incidents: sharps injuries, exposures, reactions, infections, equipment failures and spills,
//! with the follow-ups each requires and when.

pub mod model;
pub mod store;
pub mod usecases;
