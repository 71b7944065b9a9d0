//! Clinics (the tenants) and their members. A platform operator creates clinics from the command
//! line; owners manage their staff through the API.

pub mod context;
pub mod invitations;
pub mod model;
pub mod store;
pub mod usecases;
