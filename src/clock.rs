//! The service's notion of "now".
//!
//! Always the system clock, except inside [`backdated`], which the demo generator uses to write
//! months of history as if each record had been entered on its day: records, their audit events
//! and the rules' checks ("not in the future") then agree on the time. It holds only for the
//! calling thread, so requests served meanwhile keep the real time.

use std::cell::Cell;

use chrono::{DateTime, NaiveDateTime, Utc};

thread_local! {
    static FIXED: Cell<Option<NaiveDateTime>> = const { Cell::new(None) };
}

pub fn now() -> DateTime<Utc> {
    FIXED.with(Cell::get).map_or_else(Utc::now, |t| t.and_utc())
}

/// Runs `f` with this thread's clock reading `at`.
pub fn backdated<R>(at: NaiveDateTime, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<NaiveDateTime>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FIXED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FIXED.with(|c| c.replace(Some(at))));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backdating_is_scoped_and_restored() {
        let at = DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc();
        backdated(at, || assert_eq!(now().naive_utc(), at));
        assert!(now().naive_utc() > at);
    }
}
