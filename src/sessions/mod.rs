//! Client sessions: the record that joins the technician and their credentials that day, the
//! setup checklist, the sterilised packs and the lots used.

pub mod model;
pub mod store;
pub mod usecases;
