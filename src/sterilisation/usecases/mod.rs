//! The sterilisation use cases, one file per record kind: each runs in one write transaction that
//! writes the record and its audit event together, and returns the view a handler or a page shows.

mod air_removal;
mod cycles;
pub mod gate;
mod imports;
mod spore_tests;
mod sterilisers;

pub use air_removal::*;
pub use cycles::*;
pub use imports::*;
pub use spore_tests::*;
pub use sterilisers::*;
