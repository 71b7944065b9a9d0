//! Consumable lots: needle cartridges, pigments and other single-use supplies, with their lot
//! numbers, expiry, sterilisation method and recalls, and the GS1 barcodes printed on their boxes.

pub mod gs1;
pub mod model;
pub mod store;
pub mod usecases;
