//! The database: SQLite or PostgreSQL, picked at run time by the URL scheme.

pub mod schema;
pub mod stored;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{AppError, AppResult};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type PooledConn = r2d2::PooledConnection<ConnectionManager>;

/// How recently a pooled PostgreSQL connection must have answered a statement to be handed out
/// without asking it `SELECT 1` first. A connection cut by a restart or a failover in that
/// moment fails the one request that gets it and is then asked, and dropped, like any other; a
/// busy pool saves a round trip on nearly every checkout.
pub const ANSWERED_RECENTLY: Duration = Duration::from_secs(1);

/// A connection in the pool, with when its server last answered a statement.
pub struct Kept {
    conn: DbConn,
    answered: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::ops::Deref for Kept {
    type Target = DbConn;

    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl std::ops::DerefMut for Kept {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

/// Milliseconds on this process's monotonic clock, for [`Kept::answered`].
fn monotonic_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The connection pool, with how long a request may wait on its database work before it answers
/// 503 (`database.statement_timeout_secs`). The limit belongs to the pool, not to the process:
/// two services in one process (the tests run many) each keep their own.
#[derive(Clone)]
pub struct Pool {
    connections: r2d2::Pool<ConnectionManager>,
    request_limit: Duration,
}

impl Pool {
    pub fn request_limit(&self) -> Duration {
        self.request_limit
    }
}

impl std::ops::Deref for Pool {
    type Target = r2d2::Pool<ConnectionManager>;

    fn deref(&self) -> &Self::Target {
        &self.connections
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "unsupported database URL scheme {0:?}: use sqlite://path/to/file.db or postgres://user@host/db"
    )]
    UnknownScheme(String),
    #[error("cannot create the directory for the SQLite database {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("cannot build the connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("refusing to start: PostgreSQL setting {setting} is {value:?}, which can lose acknowledged commits")]
    UnsafeSetting { setting: String, value: String },
    #[error("refusing to start: the SQLite database is damaged ({0}); restore it from a backup")]
    Damaged(String),
    #[error("refusing to start: the database cannot be written ({0}); check the file's and its folder's permissions, the disk, or that the server is not a read-only standby")]
    NotWritable(String),
}

/// Where a database URL points, after its scheme has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Backend {
    /// An unknown scheme is an error: silently treating `mysql://x` as a SQLite file name would
    /// scatter records over files nobody backs up.
    pub fn parse(url: &str) -> Result<Self, DbError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(DbError::UnknownScheme(url.to_owned()));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let scheme = url.split("://").next().unwrap_or(url);
        Err(DbError::UnknownScheme(scheme.to_owned()))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Opens connections of the configured backend and reports the real connect error at once (the
/// derived `establish` tries each backend in turn and r2d2 would hide the error behind its time-out).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    backend: Backend,
    busy_timeout_ms: u64,
    timeouts: Timeouts,
}

pub use crate::config::Timeouts;

impl ConnectionManager {
    pub fn new(url: &str, busy_timeout_ms: u64) -> Result<Self, DbError> {
        Self::with_timeouts(url, busy_timeout_ms, Timeouts::default())
    }

    pub fn with_timeouts(
        url: &str,
        busy_timeout_ms: u64,
        timeouts: Timeouts,
    ) -> Result<Self, DbError> {
        let backend = Backend::parse(url)?;
        if let Backend::Sqlite(path) = &backend {
            prepare_sqlite_file(path)?;
        }
        Ok(Self {
            backend,
            busy_timeout_ms,
            timeouts,
        })
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn connect(&self) -> Result<DbConn, DbError> {
        match &self.backend {
            Backend::Postgres(url) => {
                let mut conn =
                    PgConnection::establish(&with_connect_timeout(url, self.timeouts.connect))?;
                conn.batch_execute(&format!(
                    "SET TIME ZONE 'UTC'; SET statement_timeout = {}",
                    self.timeouts.statement.as_millis()
                ))?;
                conn.set_instrumentation(count_statements);
                Ok(DbConn::Postgres(conn))
            }
            Backend::Sqlite(path) => {
                let url = path.to_string_lossy();
                let mut conn = SqliteConnection::establish(&url)?;
                // WAL lets readers run beside the writer; FULL survives an OS crash (NORMAL can
                // lose the last commits); foreign keys are off by default in SQLite.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = FULL;
                     PRAGMA foreign_keys = ON;",
                    self.busy_timeout_ms
                ))?;
                conn.set_instrumentation(count_statements);
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

/// libpq's own bound on opening a connection, unless the URL sets one.
fn with_connect_timeout(url: &str, limit: Duration) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout={}", limit.as_secs().max(1))
}

/// The database's folder (owner only) and the file itself (0600) before SQLite makes it with
/// the umask's permissions; an older installation's files are restricted too.
fn prepare_sqlite_file(path: &Path) -> Result<(), DbError> {
    let dir_error = |source| DbError::CreateDir {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        crate::files::private_dir(dir).map_err(dir_error)?;
    }
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(dir_error(e)),
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.is_file() {
            // A file we cannot restrict (owned by someone else) is reported by the checks
            // that follow if it matters; a read-only one is refused by the write probe.
            let _ = crate::files::restrict(&file);
        }
    }
    Ok(())
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = Kept;
    type Error = DbError;

    fn connect(&self) -> Result<Kept, DbError> {
        let mut conn = ConnectionManager::connect(self)?;
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(monotonic_ms()));
        let heard = answered.clone();
        conn.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| {
            if let diesel::connection::InstrumentationEvent::FinishQuery { error: None, .. } = event
            {
                heard.store(monotonic_ms(), std::sync::atomic::Ordering::Relaxed);
            }
            count_statements(event);
        });
        Ok(Kept { conn, answered })
    }

    /// Asked on every checkout. A PostgreSQL connection can be cut under the pool (a server
    /// restart, a failover, an idle time-out on the way), so one that has not answered within
    /// [`ANSWERED_RECENTLY`] is asked to answer first; a SQLite connection is a file handle in
    /// this process and has nothing to lose.
    fn is_valid(&self, kept: &mut Kept) -> Result<(), DbError> {
        let answered = kept.answered.load(std::sync::atomic::Ordering::Relaxed);
        let recently = u64::try_from(ANSWERED_RECENTLY.as_millis()).unwrap_or(u64::MAX);
        match &mut kept.conn {
            DbConn::Postgres(_) if monotonic_ms().saturating_sub(answered) < recently => Ok(()),
            DbConn::Postgres(c) => c.batch_execute("SELECT 1").map_err(DbError::from),
            DbConn::Sqlite(_) => Ok(()),
        }
    }

    fn has_broken(&self, kept: &mut Kept) -> bool {
        <DbConn as Connection>::TransactionManager::is_broken_transaction_manager(&mut kept.conn)
    }
}

/// Connects once (so a wrong URL or a down server is reported now, with its real cause), checks
/// that the database is intact and writable, runs the migrations, checks durability settings and
/// builds the pool.
pub fn connect_and_migrate(
    url: &str,
    pool_size: u32,
    acquire_timeout: Duration,
    busy_timeout_ms: u64,
) -> Result<Pool, DbError> {
    connect_checked(
        url,
        pool_size,
        acquire_timeout,
        busy_timeout_ms,
        Timeouts::default(),
    )
}

/// [`connect_and_migrate`] with the configured time-outs.
pub fn connect_checked(
    url: &str,
    pool_size: u32,
    acquire_timeout: Duration,
    busy_timeout_ms: u64,
    timeouts: Timeouts,
) -> Result<Pool, DbError> {
    let manager = ConnectionManager::with_timeouts(url, busy_timeout_ms, timeouts)?;
    tracing::info!(
        database = manager.backend().name(),
        connect_timeout_secs = timeouts.connect.as_secs(),
        "connecting to the database"
    );
    let mut first = manager.connect().map_err(|e| match e {
        // Switching a read-only SQLite file to WAL is its first write.
        DbError::Query(q) if q.to_string().contains("readonly") => {
            DbError::NotWritable(q.to_string())
        }
        other => other,
    })?;
    check_intact(&mut first)?;
    probe_writable(&mut first).map_err(|e| DbError::NotWritable(e.to_string()))?;
    run_migrations(&mut first)?;
    check_durability(&mut first)?;
    gather_statistics(&mut first, true);
    drop(first);
    let connections = r2d2::Pool::builder()
        .max_size(pool_size)
        .min_idle(Some(1))
        .connection_timeout(acquire_timeout)
        .build_unchecked(manager);
    Ok(Pool {
        connections,
        request_limit: timeouts.statement.max(Duration::from_millis(1)),
    })
}

#[derive(QueryableByName)]
struct CheckLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    quick_check: String,
}

/// SQLite's quick integrity check: a file damaged past its first pages opens and answers simple
/// queries, then fails reads and writes at random. Better to refuse to start and say so.
fn check_intact(conn: &mut DbConn) -> Result<(), DbError> {
    if let DbConn::Sqlite(c) = conn {
        let lines: Vec<CheckLine> = diesel::sql_query("PRAGMA quick_check")
            .load(c)
            .map_err(|e| DbError::Damaged(e.to_string()))?;
        let problems: Vec<String> = lines
            .into_iter()
            .map(|l| l.quick_check)
            .filter(|l| l != "ok")
            .take(5)
            .collect();
        if !problems.is_empty() {
            return Err(DbError::Damaged(problems.join("; ")));
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct ReadOnly {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    read_only: bool,
}

/// Whether this connection can write: SQLite takes the write lock and changes the schema inside
/// a transaction it then rolls back (a read-only file or folder fails here); PostgreSQL must not
/// be a standby or in read-only mode.
pub fn probe_writable(conn: &mut DbConn) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(&mut *c, "BEGIN IMMEDIATE")?;
            let outcome = c.batch_execute("CREATE TABLE aseptic_write_probe (x INTEGER)");
            AnsiTransactionManager::rollback_transaction(&mut *c)?;
            outcome
        }
        DbConn::Postgres(c) => {
            let row: ReadOnly = diesel::sql_query(
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on' AS read_only",
            )
            .get_result(c)?;
            if row.read_only {
                return Err(diesel::result::Error::QueryBuilderError(
                    "the server is read-only (a standby, or default_transaction_read_only)".into(),
                ));
            }
            Ok(())
        }
    }
}

/// What `/readyz` checks: the database answers and can be written. On SQLite the file must open
/// for writing (taking the write lock would make readiness wait behind every long write).
pub fn check_ready(conn: &mut DbConn, backend: &Backend) -> QueryResult<()> {
    conn.batch_execute("SELECT 1")?;
    match backend {
        Backend::Sqlite(path) => std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map(|_| ())
            .map_err(|e| {
                diesel::result::Error::QueryBuilderError(
                    format!("the database file cannot be written: {e}").into(),
                )
            }),
        Backend::Postgres(_) => probe_writable(conn),
    }
}

/// Keeps SQLite's planner statistics current: at start-up every table is analysed in full, and
/// `PRAGMA optimize` runs from time to time (it re-analyses the tables that changed a lot).
/// Statistics sampled with an `analysis_limit` were measured to cost the compliance view half its
/// speed (docs/performance.md); a full pass over a busy studio's year takes about a tenth of a
/// second. PostgreSQL's autovacuum does this itself.
pub fn gather_statistics(conn: &mut DbConn, at_start: bool) {
    if let DbConn::Sqlite(c) = conn {
        let sql = if at_start {
            "PRAGMA analysis_limit = 0; ANALYZE;"
        } else {
            "PRAGMA analysis_limit = 0; PRAGMA optimize;"
        };
        if let Err(e) = c.batch_execute(sql) {
            tracing::warn!(error = %e, "could not gather SQLite planner statistics");
        }
    }
}

/// Planner statistics after many rows arrived at once (a demo's months, an import): both
/// databases plan from statistics, and neither would otherwise look before its next routine
/// pass (SQLite's `PRAGMA optimize` at the next start or hour, PostgreSQL's autovacuum once its
/// threshold is crossed and its naptime has passed).
pub fn after_bulk_load(conn: &mut DbConn) {
    let sql = match conn {
        DbConn::Sqlite(_) => "PRAGMA analysis_limit = 0; ANALYZE;",
        DbConn::Postgres(_) => "ANALYZE;",
    };
    if let Err(e) = conn.batch_execute(sql) {
        tracing::warn!(error = %e, "could not gather planner statistics after a bulk load");
    }
}

pub fn run_migrations(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    let applied = match conn {
        DbConn::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(applied.iter().map(|v| v.to_string()).collect())
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    setting: String,
}

/// Commits we acknowledge must survive a power cut; refuse a server configured to lose them.
fn check_durability(conn: &mut DbConn) -> Result<(), DbError> {
    if let DbConn::Postgres(pg) = conn {
        for name in ["fsync", "synchronous_commit", "full_page_writes"] {
            let row: Setting = diesel::sql_query(format!(
                "SELECT setting FROM pg_settings WHERE name = '{name}'"
            ))
            .get_result(pg)?;
            if row.setting == "off" {
                return Err(DbError::UnsafeSetting {
                    setting: name.to_owned(),
                    value: row.setting,
                });
            }
        }
    }
    Ok(())
}

/// Runs `f` in a transaction that takes the write lock up front. On SQLite a deferred transaction
/// that reads and then writes fails with SQLITE_BUSY instead of waiting, so every write
/// transaction begins IMMEDIATE; PostgreSQL uses a plain transaction and row locks.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let _turn = SqliteWriters::queue(conn);
    begin_write(conn)?;
    let outcome = f(conn);
    finish(conn, outcome)
}

/// This process's SQLite writers, one at a time. SQLite lets one connection write; the others
/// get SQLITE_BUSY and its busy handler sleeps them for 1, 2, 5, 10 … 100 ms before each retry,
/// however soon the lock is free. Eight stations writing at once then wait out those sleeps
/// (tail latencies of a second and more) while the file sits idle. Queued here, each writer
/// starts as soon as the one before commits. The busy handler still covers writers outside this
/// queue: another process on the same file, and a retried request's transaction (see
/// `api::idempotency`), which holds the lock across the request. A write inside an open
/// transaction (a savepoint) already holds the lock and does not queue.
struct SqliteWriters;

static SQLITE_WRITER: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
static SQLITE_WRITER_FREE: std::sync::Condvar = std::sync::Condvar::new();

/// A writer's turn; the next one's starts when it is dropped.
struct Turn;

impl SqliteWriters {
    fn queue(conn: &mut DbConn) -> Option<Turn> {
        let DbConn::Sqlite(c) = conn else {
            return None;
        };
        let nested = AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .ok()
            .flatten()
            .is_some();
        if nested {
            return None;
        }
        let mut busy = SQLITE_WRITER.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = SQLITE_WRITER_FREE
                .wait(busy)
                .unwrap_or_else(|p| p.into_inner());
        }
        *busy = true;
        Some(Turn)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        *SQLITE_WRITER.lock().unwrap_or_else(|p| p.into_inner()) = false;
        SQLITE_WRITER_FREE.notify_one();
    }
}

/// Opens a write transaction; inside an outer transaction (a batch, like the demo generator's
/// day) it is a savepoint, as the outer one already holds the write lock.
pub fn begin_write(conn: &mut DbConn) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            let outer = AnsiTransactionManager::transaction_manager_status_mut(c)
                .transaction_depth()
                .ok()
                .flatten()
                .is_some();
            if outer {
                AnsiTransactionManager::begin_transaction(c)
            } else {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
            }
        }
        DbConn::Postgres(c) => AnsiTransactionManager::begin_transaction(c),
    }
}

/// Commits the transaction [`begin_write`] opened when `outcome` is a success, else rolls back.
pub fn finish<T, E>(conn: &mut DbConn, outcome: Result<T, E>) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let outcome = match outcome {
        Ok(_) if abandoned() => Err(gave_up().into()),
        other => other,
    };
    match outcome {
        Ok(value) => match <DbConn as Connection>::TransactionManager::commit_transaction(conn) {
            Ok(()) => Ok(value),
            Err(commit_err) => {
                let _ = <DbConn as Connection>::TransactionManager::rollback_transaction(conn);
                Err(commit_err.into())
            }
        },
        Err(err) => {
            <DbConn as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(err)
        }
    }
}

/// One request's connection, that every [`run`] of the request uses instead of the pool: the
/// caller's check and the request's work share one checkout. A lazy one (every request has one)
/// is checked out on its first use and returned when the request has been answered; one opened
/// with a transaction stores a retried request's answer with the records it made (see
/// `api::idempotency`).
#[derive(Clone)]
pub struct RequestConn {
    conn: std::sync::Arc<std::sync::Mutex<Option<PooledConn>>>,
    /// Where a lazy connection comes from on its first use.
    pool: Option<Pool>,
    after_commit: std::sync::Arc<std::sync::Mutex<Vec<AfterCommit>>>,
    memo: Memo,
    statements: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// How long each piece of the request's database work may take (see [`Pool`]).
    limit: Duration,
}

type AfterCommit = Box<dyn FnOnce() + Send>;
type Memo = std::sync::Arc<
    std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Arc<dyn std::any::Any + Send + Sync>>,
    >,
>;

tokio::task_local! {
    static REQUEST_CONN: RequestConn;
}

thread_local! {
    /// The memo of the request whose work runs on this thread now.
    static REQUEST_MEMO: std::cell::RefCell<Option<Memo>> = const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// The statement count of the request whose work runs on this thread now.
    static REQUEST_STATEMENTS: std::cell::RefCell<Option<std::sync::Arc<std::sync::atomic::AtomicU64>>> =
        const { std::cell::RefCell::new(None) };
}

/// Counts each statement a request sends, for its log line and the statements-per-request
/// histogram: a query per listed row shows up there long before it shows in response times.
fn count_statements(event: diesel::connection::InstrumentationEvent<'_>) {
    if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
        tracing::trace!(target: "aseptic::sql", %query, "statement");
        REQUEST_STATEMENTS.with(|s| {
            if let Some(count) = s.borrow().as_ref() {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
}

/// Puts a request's memo in reach of the work running on this thread, and takes it away again
/// however that work ends.
struct MemoInScope;

impl MemoInScope {
    fn enter(memo: Memo, statements: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        REQUEST_MEMO.with(|m| *m.borrow_mut() = Some(memo));
        REQUEST_STATEMENTS.with(|s| *s.borrow_mut() = Some(statements));
        Self
    }
}

impl Drop for MemoInScope {
    fn drop(&mut self) {
        REQUEST_MEMO.with(|m| *m.borrow_mut() = None);
        REQUEST_STATEMENTS.with(|s| *s.borrow_mut() = None);
    }
}

/// What this request has already read and may read again without asking the database: the
/// request's own rows, gone when it has been answered, so nothing read here outlives a request
/// (another instance's change is seen by the next request). None off a request.
pub fn recall<T: Clone + Send + Sync + 'static>(key: &str) -> Option<T> {
    REQUEST_MEMO.with(|m| {
        let memo = m.borrow();
        let map = memo.as_ref()?.lock().ok()?;
        map.get(key)?.downcast_ref::<T>().cloned()
    })
}

/// Keeps `value` for the rest of the request (see [`recall`]).
pub fn remember<T: Clone + Send + Sync + 'static>(key: String, value: T) {
    REQUEST_MEMO.with(|m| {
        if let Some(Ok(mut map)) = m.borrow().as_ref().map(|memo| memo.lock()) {
            map.insert(key, std::sync::Arc::new(value));
        }
    });
}

/// Drops what [`remember`] kept under `key`, once the request has changed it.
pub fn forget(key: &str) {
    REQUEST_MEMO.with(|m| {
        if let Some(Ok(mut map)) = m.borrow().as_ref().map(|memo| memo.lock()) {
            map.remove(key);
        }
    });
}

impl RequestConn {
    /// A connection with a transaction open on it, held until the request ends. It keeps the
    /// memo and the statement count of the request's lazy connection, if it has one.
    pub fn new(conn: PooledConn, limit: Duration) -> Self {
        let outer = Self::current();
        Self {
            conn: std::sync::Arc::new(std::sync::Mutex::new(Some(conn))),
            pool: None,
            after_commit: std::sync::Arc::default(),
            memo: outer.as_ref().map(|o| o.memo.clone()).unwrap_or_default(),
            statements: outer.map(|o| o.statements).unwrap_or_default(),
            limit,
        }
    }

    /// How many statements the request has sent so far.
    pub fn statements(&self) -> u64 {
        self.statements.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A connection taken from `pool` on the request's first database work, if it has any.
    pub fn lazy(pool: Pool) -> Self {
        Self {
            conn: std::sync::Arc::new(std::sync::Mutex::new(None)),
            limit: pool.request_limit(),
            pool: Some(pool),
            after_commit: std::sync::Arc::default(),
            memo: Memo::default(),
            statements: std::sync::Arc::default(),
        }
    }

    /// The request's connection where one is in scope.
    pub fn current() -> Option<Self> {
        REQUEST_CONN.try_with(Self::clone).ok()
    }

    /// Whether the request holds a transaction, so work after its commit must wait for it.
    fn transactional(&self) -> bool {
        self.pool.is_none()
    }

    /// Runs `fut` (the rest of the request) with this connection in place of the pool.
    pub async fn scope<F: std::future::Future>(&self, fut: F) -> F::Output {
        REQUEST_CONN.scope(self.clone(), fut).await
    }

    /// Returns the connection to the pool (the request has been answered). Work the request
    /// stopped waiting for still holds it; it goes back when that work ends.
    pub fn release(&self) {
        if let Ok(mut conn) = self.conn.try_lock() {
            conn.take();
        }
    }

    /// Runs `f` on the connection, off the event loop.
    pub async fn with<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (shared, pool, memo) = (self.conn.clone(), self.pool.clone(), self.memo.clone());
        let statements = self.statements.clone();
        bounded_by(self.limit, move || {
            let mut guard = shared
                .lock()
                .map_err(|_| AppError::internal("request connection poisoned"))?;
            let _memo = MemoInScope::enter(memo, statements);
            if guard.is_none() {
                if let Some(pool) = pool {
                    *guard = Some(pool.get()?);
                }
            }
            let conn = guard
                .as_mut()
                .ok_or_else(|| AppError::internal("request connection already released"))?;
            f(conn)
        })
        .await
    }

    /// Commits the request's transaction, unless the request stopped waiting meanwhile.
    pub fn commit(conn: &mut DbConn) -> QueryResult<()> {
        if abandoned() {
            let _ = <DbConn as Connection>::TransactionManager::rollback_transaction(conn);
            return Err(gave_up());
        }
        <DbConn as Connection>::TransactionManager::commit_transaction(conn)
    }

    /// What was deferred with [`after_commit`], to run once the transaction has committed.
    pub fn take_after_commit(&self) -> Vec<AfterCommit> {
        self.after_commit
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// Runs `f` now, or, inside a request whose transaction is still open, once it has committed
/// (work that other connections must see the request's records for, such as building an export).
pub fn after_commit(f: impl FnOnce() + Send + 'static) {
    let mut pending: Option<AfterCommit> = Some(Box::new(f));
    let _ = REQUEST_CONN.try_with(|rc| {
        if !rc.transactional() {
            return;
        }
        if let (Ok(mut deferred), Some(f)) = (rc.after_commit.lock(), pending.take()) {
            deferred.push(f);
        }
    });
    if let Some(f) = pending {
        f();
    }
}

/// Runs blocking database work on the thread pool with a pooled connection, or with the
/// request's own connection when the request holds one.
pub async fn run<T, F>(pool: &Pool, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    if let Ok(request) = REQUEST_CONN.try_with(RequestConn::clone) {
        return request.with(f).await;
    }
    let pool = pool.clone();
    bounded_by(pool.request_limit(), move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await
}

/// [`run`] for work off any request (an export being built) that may take as long as it needs.
pub async fn run_unbounded<T, F>(pool: &Pool, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await
    .map_err(AppError::from)?
}

thread_local! {
    /// Set while blocking work runs for a request that may stop waiting for it.
    static ABANDONED: std::cell::RefCell<Option<std::sync::Arc<std::sync::atomic::AtomicBool>>> =
        const { std::cell::RefCell::new(None) };
}

fn abandoned() -> bool {
    ABANDONED.with(|a| {
        a.borrow()
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
    })
}

/// The error a transaction ends with when its request stopped waiting: rolled back, not
/// committed, so a 503 never hides a write that lands later.
fn gave_up() -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::ClosedConnection,
        Box::new("the request stopped waiting for the database".to_owned()),
    )
}

/// Runs blocking work within `limit`. A stalled database cannot hold the request: it answers
/// 503 at the limit, and the work, when it ends, rolls back.
pub async fn bounded_by<T, F>(limit: Duration, f: F) -> AppResult<T>
where
    F: FnOnce() -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mine = flag.clone();
    let work = tokio::task::spawn_blocking(move || {
        ABANDONED.with(|a| *a.borrow_mut() = Some(mine));
        let outcome = f();
        ABANDONED.with(|a| *a.borrow_mut() = None);
        outcome
    });
    match tokio::time::timeout(limit, work).await {
        Ok(done) => done.map_err(AppError::from)?,
        Err(_) => {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Err(AppError::Unavailable(format!(
                "the database did not answer within {} s",
                limit.as_secs_f64()
            )))
        }
    }
}

/// Now, truncated to microseconds: PostgreSQL keeps no more, and a value must read back equal on
/// both backends (the audit chain hashes it).
pub fn now() -> NaiveDateTime {
    truncate(crate::clock::now().naive_utc())
}

/// A time as the database keeps it (microseconds), so what is hashed or compared is what reads back.
pub fn truncate(t: NaiveDateTime) -> NaiveDateTime {
    t.trunc_subsecs(6)
}

pub fn to_utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend_and_unknown_schemes_are_refused() {
        assert_eq!(
            Backend::parse("sqlite://data/a.db").unwrap(),
            Backend::Sqlite(PathBuf::from("data/a.db"))
        );
        assert_eq!(
            Backend::parse("sqlite:///var/lib/a.db").unwrap(),
            Backend::Sqlite(PathBuf::from("/var/lib/a.db"))
        );
        assert!(matches!(
            Backend::parse("postgres://u@h/db").unwrap(),
            Backend::Postgres(_)
        ));
        assert!(matches!(
            Backend::parse("postgresql://u@h/db").unwrap(),
            Backend::Postgres(_)
        ));
        for bad in ["mysql://x/y", "data/a.db", "sqlite://", "file:a.db"] {
            assert!(
                matches!(Backend::parse(bad), Err(DbError::UnknownScheme(_))),
                "{bad}"
            );
        }
    }
}
