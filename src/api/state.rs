//! What every handler shares: the pool, the settings, the token keys and the login limiter.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::auth::{password, ratelimit::LoginLimiter, token::TokenKeys};
use crate::config::Settings;
use crate::db::{Backend, Pool};
use crate::exports::ExportKey;
use crate::jurisdiction::profiles::Profiles;

pub struct AppState {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    pub backend: Backend,
    pub tokens: TokenKeys,
    pub login_limiter: LoginLimiter,
    /// Verified against when an email is unknown, so that answer costs what a wrong password does.
    pub dummy_password_hash: String,
    /// Jurisdiction profiles, loaded (and checked) at start-up.
    pub profiles: Arc<Profiles>,
    /// Signs audit exports; loaded or created at start-up.
    pub export_key: Arc<ExportKey>,
    /// Idempotency keys whose first request is running in this process.
    pub idempotency_in_flight: InFlight,
}

impl AppState {
    pub fn new(
        pool: Pool,
        settings: Arc<Settings>,
        backend: Backend,
        profiles: Arc<Profiles>,
        export_key: Arc<ExportKey>,
    ) -> Result<Self, String> {
        let dummy_password_hash =
            password::hash("dummy password for unknown accounts").map_err(|e| e.to_string())?;
        Ok(Self {
            pool,
            tokens: TokenKeys::new(&settings.auth),
            login_limiter: LoginLimiter::new(&settings.auth),
            settings,
            backend,
            dummy_password_hash,
            profiles,
            export_key,
            idempotency_in_flight: Default::default(),
        })
    }
}

/// Keys whose first request is running in this process. Across instances on PostgreSQL an
/// advisory lock held by the request's transaction says the same.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<String>>);

pub struct Running<'a> {
    set: &'a InFlight,
    id: String,
}

impl InFlight {
    pub fn enter(&self, id: &str) -> Option<Running<'_>> {
        let mut set = self.0.lock().ok()?;
        set.insert(id.to_owned()).then(|| Running {
            set: self,
            id: id.to_owned(),
        })
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.0.lock() {
            set.remove(&self.id);
        }
    }
}
