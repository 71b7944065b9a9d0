//! Technicians' credentials (training, hepatitis B status, licences) and whether a person may work
//! on a client at a given moment.

pub mod model;
pub mod store;
pub mod usecases;
