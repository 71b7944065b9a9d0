//! Setup checklist templates, versioned: a session keeps the version it was run with.

pub mod model;
pub mod store;
pub mod usecases;
