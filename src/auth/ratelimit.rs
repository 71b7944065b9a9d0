//! Login throttling per client address and per account.
//!
//! The account's limit counts attempts per account *and* address: an attacker who knows an email
//! can exhaust it only for their own address, never lock the account's owner out (a per-account
//! lock-out alone would hand anyone a denial of service). Guessing from many addresses is still
//! bounded by each address's own limit.
//!
//! Counters live in this process: behind several instances each enforces its own limit, which
//! still bounds guessing to (instances × limit).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::AuthSettings;

pub struct LoginLimiter {
    by_address: DefaultKeyedRateLimiter<String>,
    by_account: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

fn quota(burst: u32, per_minute: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl LoginLimiter {
    pub fn new(settings: &AuthSettings) -> Self {
        Self {
            by_address: RateLimiter::keyed(quota(
                settings.login_per_address_burst,
                settings.login_per_address_per_minute,
            )),
            by_account: RateLimiter::keyed(quota(
                settings.login_per_account_burst,
                settings.login_per_account_per_minute,
            )),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one attempt; `Err(seconds)` says how long to wait before the next one is allowed.
    pub fn attempt(&self, address: &str, account: &str) -> Result<(), u64> {
        // Forget idle keys now and then, so scanning many emails cannot grow memory without bound.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.by_address.retain_recent();
            self.by_account.retain_recent();
        }
        let clock = DefaultClock::default();
        let wait = |not_until: governor::NotUntil<_>| {
            not_until
                .wait_time_from(clock.now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64
        };
        self.by_address
            .check_key(&address.to_owned())
            .map_err(wait)?;
        self.by_account
            .check_key(&format!("{account}\n{address}"))
            .map_err(wait)?;
        Ok(())
    }

    /// Counts one anonymous attempt from `address` that names no account (accepting an
    /// invitation): the address limit alone.
    pub fn attempt_from(&self, address: &str) -> Result<(), u64> {
        let clock = DefaultClock::default();
        self.by_address
            .check_key(&address.to_owned())
            .map_err(|n| n.wait_time_from(clock.now()).as_secs_f64().ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn limits_each_address_and_each_account() {
        let limiter = LoginLimiter::new(&AuthSettings {
            jwt_secret: Secret::new("x"),
            issuer: String::new(),
            audience: String::new(),
            access_token_ttl_secs: 1,
            refresh_token_ttl_days: 1,
            leeway_secs: 0,
            login_per_address_burst: 3,
            login_per_address_per_minute: 1,
            login_per_account_burst: 2,
            login_per_account_per_minute: 1,
            browser_idle_minutes: 30,
            browser_absolute_hours: 12,
        });
        assert!(limiter.attempt("10.0.0.1", "a@x").is_ok());
        assert!(limiter.attempt("10.0.0.1", "a@x").is_ok());
        let wait = limiter.attempt("10.0.0.1", "a@x").unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        // The account's owner, from another address, is not locked out by the guesser.
        assert!(limiter.attempt("10.0.0.2", "a@x").is_ok());
        assert!(
            limiter.attempt("10.0.0.1", "c@x").is_err(),
            "address burst of 3 is spent"
        );
        assert!(limiter.attempt("10.0.0.3", "d@x").is_ok());
    }
}
