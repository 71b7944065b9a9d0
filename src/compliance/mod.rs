//! The compliance engine: jurisdiction profiles, pure rules over a clinic's facts, the compliance
//! view, and look-back.

pub mod facts;
pub mod lookback;
pub mod readiness;
pub mod rules;
pub mod view;
