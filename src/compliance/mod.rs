//! The compliance engine: jurisdiction profiles now; rules, the compliance view and look-back
//! build on them.

pub mod profiles;
