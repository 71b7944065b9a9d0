//! The compliance engine: jurisdiction profiles and look-back; rules and the compliance view
//! build on them.

pub mod lookback;
pub mod profiles;
pub mod routes;
