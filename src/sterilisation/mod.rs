//! Sterilisation records: sterilisers, cycles and their packs, spore tests, air-removal tests.
//! An inspector's first question is "show me your autoclave log and your spore tests".

pub mod device_records;
pub mod import;
pub mod label;
pub mod model;
pub mod store;
pub mod usecases;
