//! Jurisdiction profiles (what each regulator requires, with its sources) and the closed sets
//! they are written in.

pub mod holidays;
pub mod kinds;
pub mod profiles;

pub use profiles::{Profile, Profiles};
