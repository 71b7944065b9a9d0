//! Aseptic: infection-control and hygiene compliance records for SMP, permanent-makeup and tattoo
//! clinics. This crate builds the whole service, so `main` and the tests start the same thing.

pub mod api;
pub mod audit;
pub mod auth;
pub mod checklists;
pub mod clients;
pub mod clinics;
pub mod clock;
pub mod compliance;
pub mod config;
pub mod credentials;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod exports;
pub mod files;
pub mod incidents;
pub mod input;
pub mod inspectors;
pub mod jurisdiction;
pub mod lots;
pub mod mail;
pub mod outbox;
pub mod reactions;
pub mod records;
pub mod sessions;
pub mod sterilisation;
pub mod telemetry;
pub mod web;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::HttpServer;

use crate::api::state::AppState;
use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] db::DbError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot start: {0}")]
    Other(String),
}

/// A configured, bound, not yet running service.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    /// The mail worker, stopped when the server stops.
    mail_worker: Option<mail::WorkerHandle>,
    /// The separate `/metrics` listener, stopped with the server.
    metrics_server: Option<Server>,
    metrics_addr: Option<SocketAddr>,
}

impl Application {
    /// Connects to the database (reporting a connect error at once), runs migrations, and binds
    /// the listener; `bind` overrides `server.bind` (port 0 picks a free port).
    pub fn build(settings: Settings, bind: Option<&str>) -> Result<Self, StartError> {
        let settings = Arc::new(settings);
        // Install the metrics recorder before the first request is counted.
        api::middleware::prometheus();
        let profiles =
            Arc::new(load_profiles(&settings).map_err(|e| StartError::Other(e.to_string()))?);
        // The database first: a start that fails on it leaves no key file behind.
        let pool = open_database(&settings)?;
        let backend = db::Backend::parse(settings.database.url.expose())?;
        let export_key = Arc::new(
            exports::ExportKey::load_or_create(&settings.exports.signing_key_path)
                .map_err(|e| StartError::Other(e.to_string()))?,
        );
        let state = actix_web::web::Data::new(
            AppState::new(pool, settings.clone(), backend, profiles, export_key)
                .map_err(StartError::Other)?,
        );
        {
            // Exports acknowledged before a stop are built now, off the start-up path.
            let state = state.clone();
            std::thread::spawn(move || {
                match exports::usecases::resume(
                    &state.pool,
                    &state.profiles,
                    &state.export_key,
                    &state.settings.exports.dir,
                ) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(exports = n, "finished exports interrupted by a stop"),
                    Err(e) => tracing::error!(error = %e, "could not finish interrupted exports"),
                }
            });
        }
        let mail_worker = if settings.mail.worker {
            let mailer = mail::Mailer::new(
                state.pool.clone(),
                settings.clone(),
                state.profiles.clone(),
                state.export_key.clone(),
            )
            .map_err(|e| StartError::Other(format!("mail: {e}")))?;
            Some(mail::worker::spawn(Arc::new(mailer)))
        } else {
            None
        };
        if matches!(state.backend, db::Backend::Sqlite(_)) {
            keep_statistics_current(Arc::downgrade(&state.clone().into_inner()));
        }
        let metrics_server = match settings.metrics.bind.trim() {
            "" => None,
            addr => {
                let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind {
                    addr: addr.to_owned(),
                    source,
                })?;
                let local = listener.local_addr().ok();
                let server = HttpServer::new(|| {
                    actix_web::App::new()
                        .route("/metrics", actix_web::web::get().to(api::ops::metrics_open))
                })
                .workers(1)
                .shutdown_timeout(1)
                .listen(listener)
                .map_err(|source| StartError::Bind {
                    addr: addr.to_owned(),
                    source,
                })?
                .run();
                Some((server, local))
            }
        };
        let addr = bind.unwrap_or(&settings.server.bind).to_owned();
        let listener = TcpListener::bind(&addr).map_err(|source| StartError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let local = listener.local_addr().map_err(|source| StartError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        // Pages and their assets go out gzipped to browsers that ask; an export's zip, already
        // compressed, says so and is sent as it is.
        let server = HttpServer::new(move || {
            api::build_app(state.clone())
                .configure(crate::web::routes)
                .default_service(actix_web::web::to(crate::web::unmatched))
                .wrap(actix_web::middleware::Compress::default())
        })
        .workers(workers)
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .listen(listener)
        .map_err(|source| StartError::Bind { addr, source })?
        .run();
        Ok(Self {
            server,
            addr: local,
            mail_worker,
            metrics_addr: metrics_server.as_ref().and_then(|(_, a)| *a),
            metrics_server: metrics_server.map(|(s, _)| s),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the separate `/metrics` listener is bound, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish.
    pub async fn run(self) -> std::io::Result<()> {
        let metrics = self.metrics_server.map(|server| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let outcome = self.server.await;
        if let Some(metrics) = metrics {
            metrics.stop(true).await;
        }
        if let Some(worker) = self.mail_worker {
            // Off the async runtime: the worker may be in the middle of an SMTP exchange.
            let _ = actix_web::web::block(move || worker.stop()).await;
        }
        outcome
    }
}

/// The jurisdiction profiles: the shipped ones and any in `<config dir>/jurisdictions`.
pub fn load_profiles(
    settings: &Settings,
) -> Result<jurisdiction::profiles::Profiles, jurisdiction::profiles::ProfileError> {
    jurisdiction::profiles::Profiles::load(Some(&settings.config_dir.join("jurisdictions")))
}

/// The pool over the configured database, checked and migrated to the current schema.
pub fn open_database(settings: &Settings) -> Result<db::Pool, db::DbError> {
    db::connect_checked(
        settings.database.url.expose(),
        settings.database.pool_size,
        Duration::from_secs(settings.database.acquire_timeout_secs),
        settings.database.sqlite_busy_timeout_ms,
        settings.database.timeouts(),
    )
}

/// SQLite's planner statistics, refreshed hourly while the service runs (`PRAGMA optimize`);
/// the thread ends once the service has stopped.
fn keep_statistics_current(state: std::sync::Weak<AppState>) {
    const EVERY: Duration = Duration::from_secs(3600);
    const NAP: Duration = Duration::from_secs(30);
    std::thread::spawn(move || {
        let mut slept = Duration::ZERO;
        loop {
            std::thread::sleep(NAP);
            slept += NAP;
            let Some(state) = state.upgrade() else {
                return;
            };
            if slept < EVERY {
                continue;
            }
            slept = Duration::ZERO;
            match state.pool.get() {
                Ok(mut conn) => db::gather_statistics(&mut conn, false),
                Err(e) => tracing::warn!(error = %e, "no connection to refresh statistics"),
            }
        }
    });
}
