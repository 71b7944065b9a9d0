//! Packs: their state, derived from their load, its spore tests and their use, and their codes.

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PackState {
    /// Its load carried a spore test that has not been read yet.
    Pending,
    /// Fit to use.
    Released,
    /// Must not be used: the load failed, or a failed spore test reaches back to it.
    Quarantined,
    /// Past its shelf life.
    Expired,
    /// Opened for a client.
    Used,
}

/// Everything a pack's state depends on.
#[derive(Debug, Clone)]
pub struct PackFacts {
    pub used: bool,
    pub cycle_outcome: Outcome,
    pub cycle_started_at: NaiveDateTime,
    pub biological: Biological,
    pub lookback: Vec<Window>,
    pub expires_at: Option<NaiveDateTime>,
    /// Its load ran after the steriliser's spore test fell overdue, and no later test of that
    /// steriliser has read negative yet (DOMAIN.md rule 1).
    pub run_while_overdue: bool,
}

/// The pack's state and why. Used beats everything (it is history); then quarantine (a failed
/// load or look-back); then expiry; then a spore test still incubating.
pub fn pack_state(f: &PackFacts, now: NaiveDateTime) -> (PackState, String) {
    if f.used {
        return (PackState::Used, "opened for a client session".into());
    }
    if f.cycle_outcome == Outcome::Fail {
        return (
            PackState::Quarantined,
            "its load failed an indicator".into(),
        );
    }
    if f.lookback.iter().any(|w| in_window(f.cycle_started_at, w)) {
        return (
            PackState::Quarantined,
            "a positive spore test reaches back to its load: reprocess it".into(),
        );
    }
    if f.run_while_overdue {
        return (
            PackState::Pending,
            "its load ran while the steriliser's spore test was overdue: hold it until a spore test of that steriliser reads negative".into(),
        );
    }
    if let Some(expiry) = f.expires_at {
        if expiry <= now {
            return (
                PackState::Expired,
                "past its shelf life: reprocess it".into(),
            );
        }
    }
    match f.biological {
        Biological::Pending => (
            PackState::Pending,
            "its load's spore test has not been read".into(),
        ),
        Biological::Invalid => (
            PackState::Pending,
            "its load's spore test was invalid (control did not grow); repeat it".into(),
        ),
        _ => (PackState::Released, "all indicators passed".into()),
    }
}

/// DOMAIN.md rule 1: a load started after its steriliser's spore test fell due (the end of the
/// clinic-local day `interval_days` after the last negative test's load) is not releasable until
/// a spore test in a load started at or after it reads negative. A steriliser with no negative
/// test yet is left to rule 2 (a test after installation), not judged here.
pub fn run_while_overdue(
    load_started: NaiveDateTime,
    negatives: &[NaiveDateTime],
    interval_days: Option<u32>,
    tz: chrono_tz::Tz,
) -> bool {
    let Some(days) = interval_days else {
        return false;
    };
    let Some(last) = negatives.iter().filter(|t| **t < load_started).max() else {
        return false;
    };
    let due_day = last.and_utc().with_timezone(&tz).date_naive() + Duration::days(i64::from(days));
    if load_started <= crate::incidents::model::end_of_day(due_day, tz) {
        return false;
    }
    !negatives.iter().any(|t| *t >= load_started)
}

/// Crockford base 32 without the letters people misread (I, L, O, U).
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A short code to print on the pack and type back: `XXX-XXX` (30 bits).
pub fn new_pack_code() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(7);
    for i in 0..6 {
        if i == 3 {
            code.push('-');
        }
        code.push(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char);
    }
    code
}

/// Accepts a typed code with any case, spaces or dashes, and the usual misreadings.
pub fn normalise_pack_code(typed: &str) -> Option<String> {
    let chars: Vec<char> = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if chars.len() != 6 || !chars.iter().all(|c| CODE_ALPHABET.contains(&(*c as u8))) {
        return None;
    }
    Some(format!(
        "{}-{}",
        chars[..3].iter().collect::<String>(),
        chars[3..].iter().collect::<String>()
    ))
}

/// Initials for the pack label, e.g. "Sam Q. Tech" → "SQT".
pub fn initials(name: &str) -> String {
    name.split(|c: char| c.is_whitespace() || c == '.' || c == '-' || c == '@')
        .filter_map(|w| w.chars().next())
        .filter(|c| c.is_alphabetic())
        .take(4)
        .flat_map(char::to_uppercase)
        .collect()
}
