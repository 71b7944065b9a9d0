//! The background worker: delivers due messages with back-off, queues scheduled audit summaries
//! and expiry reminders. Several workers (several instances) may run against one database: claims
//! and keys keep them from sending anything twice.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant, SystemTime};

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde_json::json;

use super::summary::{self, SummaryInput};
use super::transport::Transport;
use crate::audit::{self, AuditContext, NewEvent};
use crate::config::Settings;
use crate::db::schema::clinics;
use crate::db::{self, DbConn, Pool};
use crate::error::{AppError, AppResult};
use crate::exports::usecases::{self as exports, ExportInput, ExportState};
use crate::exports::ExportKey;
use crate::jurisdiction::profiles::Profiles;
use crate::outbox::model::{backoff, reminder_threshold};
use crate::outbox::settings;
use crate::outbox::{self, NewMail, OutboxRow};

/// The parts of a built export a summary carries.
pub struct ExportParts {
    pub report: Vec<u8>,
    pub manifest: Vec<u8>,
    pub checkpoint: String,
}

/// Everything the worker needs, shared with the handlers that send at once.
pub struct Mailer {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    pub profiles: Arc<Profiles>,
    pub export_key: Arc<ExportKey>,
    pub transport: Transport,
    pub from: Mailbox,
}

/// The domain of the From address: the right-hand side of every Message-ID.
pub fn domain(settings: &Settings) -> String {
    crate::outbox::model::parse_mailbox(&settings.mail.from)
        .map(|m| m.email.domain().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

fn system() -> AuditContext {
    AuditContext {
        actor: audit::Actor::System,
        request_id: None,
    }
}

/// How long a claimed message is reserved for its worker: longer than any delivery can take
/// (time-outs are at most 10 s per command), short enough that a crashed worker's messages are
/// picked up again soon after.
const LEASE_MINUTES: i64 = 5;

impl Mailer {
    pub fn new(
        pool: Pool,
        settings: Arc<Settings>,
        profiles: Arc<Profiles>,
        export_key: Arc<ExportKey>,
    ) -> Result<Self, String> {
        let transport = Transport::from_settings(&settings.mail)?;
        let from = crate::outbox::model::parse_mailbox(&settings.mail.from)?;
        Ok(Self {
            pool,
            settings,
            profiles,
            export_key,
            transport,
            from,
        })
    }

    fn conn(&self) -> AppResult<crate::db::PooledConn> {
        self.pool.get().map_err(AppError::internal)
    }

    /// Delivers what is due, a batch at a time; returns how many messages it dealt with.
    pub fn deliver_due(&self) -> AppResult<usize> {
        let mut conn = self.conn()?;
        let claimed = outbox::claim_due(&mut conn, Duration::minutes(LEASE_MINUTES), 20)?;
        let mut rows = claimed.iter();
        while let Some(row) = rows.next() {
            let outcome = match self.deliver(&mut conn, row) {
                Ok(outcome) => outcome,
                // Something of ours failed (the export's file is gone, the database hiccuped):
                // this message is retried like any other, and the rest of the batch goes on
                // rather than waiting out the lease behind it.
                Err(e) => {
                    tracing::error!(mail = row.id, error = %e, "mail could not be prepared");
                    self.failed_attempt(&mut conn, row, &e.to_string(), false)?;
                    None
                }
            };
            if let Some(next) = outcome {
                // The server is unreachable or refusing for now: the rest of the batch waits
                // with this message instead of each spending a time-out on it (a black-holed
                // server would otherwise hold the worker 10 s per message). Messages past their
                // retry period are given up on here too.
                for rest in rows.by_ref() {
                    if db::now() >= self.give_up(rest) {
                        metrics::counter!("aseptic_mail_failed_total").increment(1);
                        outbox::mark_failed(
                            &mut conn,
                            rest,
                            "the mail server was unreachable for the whole retry period",
                        )?;
                    } else {
                        outbox::defer(&mut conn, &rest.id, next)?;
                    }
                }
            }
        }
        Ok(claimed.len())
    }

    /// Tries one message. Returns when to try again if the failure was the server's for now.
    fn deliver(
        &self,
        conn: &mut DbConn,
        row: &OutboxRow,
    ) -> AppResult<Option<chrono::NaiveDateTime>> {
        let attachment = match &row.export_id {
            None => None,
            Some(export_id) => {
                let export = exports::get(conn, &row.clinic_id, export_id)?;
                match export.state {
                    ExportState::Building if db::now() < self.give_up(row) => {
                        // Not an attempt: the message waits for its report.
                        outbox::defer(conn, &row.id, db::now() + Duration::seconds(2))?;
                        return Ok(None);
                    }
                    ExportState::Building => {
                        metrics::counter!("aseptic_mail_failed_total").increment(1);
                        outbox::mark_failed(
                            conn,
                            row,
                            "the export whose report this message carries was never built",
                        )?;
                        return Ok(None);
                    }
                    ExportState::Failed => {
                        metrics::counter!("aseptic_mail_failed_total").increment(1);
                        outbox::mark_failed(
                            conn,
                            row,
                            "the export whose report this message carries could not be built",
                        )?;
                        return Ok(None);
                    }
                    ExportState::Ready => Some(self.export_parts(&row.clinic_id, export_id)?),
                }
            }
        };
        let message = match self.message(row, attachment) {
            Ok(m) => m,
            Err(e) => {
                metrics::counter!("aseptic_mail_failed_total").increment(1);
                outbox::mark_failed(conn, row, &e)?;
                return Ok(None);
            }
        };
        match self.transport.send(&row.id, &message) {
            Ok(()) => {
                outbox::mark_sent(conn, &row.id)?;
                metrics::counter!("aseptic_mail_sent_total").increment(1);
                tracing::info!(mail = row.id, kind = row.kind, "mail delivered");
            }
            Err(e) => return self.failed_attempt(conn, row, &e.message, e.permanent),
        }
        Ok(None)
    }

    /// Records a failed attempt: given up on when it is permanent or the retry period is over,
    /// otherwise retried after the back-off (returned).
    fn failed_attempt(
        &self,
        conn: &mut DbConn,
        row: &OutboxRow,
        error: &str,
        permanent: bool,
    ) -> AppResult<Option<chrono::NaiveDateTime>> {
        let attempt = u32::try_from(row.attempts).unwrap_or(0) + 1;
        let base = Duration::milliseconds(
            i64::try_from(self.settings.mail.retry_base_ms).unwrap_or(30_000),
        );
        let next = db::now() + backoff(attempt, rand::random::<f64>(), base);
        if permanent || next > self.give_up(row) {
            metrics::counter!("aseptic_mail_failed_total").increment(1);
            tracing::error!(mail = row.id, error, "mail given up");
            outbox::mark_failed(conn, row, error)?;
            Ok(None)
        } else {
            metrics::counter!("aseptic_mail_retried_total").increment(1);
            tracing::warn!(
                mail = row.id,
                attempt,
                error,
                "mail delivery failed; will retry"
            );
            outbox::mark_retry(conn, &row.id, error, next)?;
            Ok(Some(next))
        }
    }

    /// When retrying this message stops.
    fn give_up(&self, row: &OutboxRow) -> chrono::NaiveDateTime {
        row.created_at
            + Duration::hours(i64::try_from(self.settings.mail.give_up_after_hours).unwrap_or(96))
    }

    /// What a summary carries from its export: report.pdf, the signed manifest.json, and the
    /// checkpoint the manifest signs, in words. The export never changes once built, so every
    /// attempt sends the same bytes.
    fn export_parts(&self, clinic_id: &str, export_id: &str) -> AppResult<ExportParts> {
        let path = exports::file_path(&self.settings.exports.dir, clinic_id, export_id);
        let file = std::fs::File::open(&path).map_err(AppError::internal)?;
        let mut zip =
            zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(AppError::internal)?;
        let mut read = |name: &str| -> AppResult<Vec<u8>> {
            let mut entry = zip.by_name(name).map_err(AppError::internal)?;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(AppError::internal)?;
            Ok(bytes)
        };
        let report = read("report.pdf")?;
        let manifest = read("manifest.json")?;
        let m: serde_json::Value = serde_json::from_slice(&manifest).map_err(AppError::internal)?;
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "none".to_owned(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let checkpoint = format!(
            "Checkpoint, signed in the attached manifest.json: audit events {} to {} of the clinic's chain, chain head {}, export key fingerprint {}, signature {}.",
            text(&m["chain"]["first_seq"]),
            text(&m["chain"]["last_seq"]),
            text(&m["chain"]["head_hash"]),
            text(&m["key_fingerprint"]),
            text(&m["signature"]),
        );
        Ok(ExportParts {
            report,
            manifest,
            checkpoint,
        })
    }

    /// The message as it goes out on every attempt: the same Message-ID and Date each time, so a
    /// retry after a crash is recognisable as the same message.
    pub fn message(&self, row: &OutboxRow, export: Option<ExportParts>) -> Result<Message, String> {
        let to: Mailbox = row
            .recipient
            .parse()
            .map_err(|e| format!("recipient {}: {e}", row.recipient))?;
        let builder = Message::builder()
            .message_id(Some(outbox::message_id(&row.id, self.from.email.domain())))
            .date(SystemTime::from(row.created_at.and_utc()))
            .from(self.from.clone())
            .to(to)
            .subject(row.subject.clone());
        let mut text = row.body_text.clone();
        let mut html = row.body_html.clone();
        if let Some(parts) = &export {
            text.push_str(&format!("\n{}\n", parts.checkpoint));
            html = html.map(|h| {
                h.replace(
                    "</body>",
                    &format!(
                        "<p><small>{}</small></p></body>",
                        super::summary::escape(&parts.checkpoint)
                    ),
                )
            });
        }
        let body = match html {
            Some(html) => MultiPart::alternative_plain_html(text, html),
            None => MultiPart::mixed().singlepart(SinglePart::plain(text)),
        };
        let body = match export {
            None => body,
            Some(parts) => MultiPart::mixed()
                .multipart(body)
                .singlepart(Attachment::new("report.pdf".into()).body(
                    parts.report,
                    ContentType::parse("application/pdf").map_err(|e| e.to_string())?,
                ))
                .singlepart(Attachment::new("manifest.json".into()).body(
                    parts.manifest,
                    ContentType::parse("application/json").map_err(|e| e.to_string())?,
                )),
        };
        builder.multipart(body).map_err(|e| e.to_string())
    }

    /// Queues the audit summary of every clinic whose scheduled moment has come and whose
    /// summary for that period is not queued yet. Returns the number of summaries queued here.
    pub fn run_schedules(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let mut conn = self.conn()?;
        let mut queued = 0;
        for s in settings::scheduled(&mut conn)? {
            let Some(schedule) = s.schedule() else {
                continue;
            };
            let Some(clinic) = crate::clinics::store::find(&mut conn, &s.clinic_id)? else {
                continue;
            };
            let tz = match crate::clinics::context::time_zone(&clinic) {
                Ok(tz) => tz,
                Err(e) => {
                    tracing::error!(clinic = %clinic.id, error = %e, "no summary schedule for this clinic");
                    continue;
                }
            };
            let due = schedule.latest_due(now, tz);
            // Only moments after the schedule was set: setting one does not send a summary of a
            // period that ended before it.
            if due.at <= db::to_utc(s.updated_at) {
                continue;
            }
            match self.queue_summary(&mut conn, &s.clinic_id, &due.key, due.from, due.to)? {
                Some(export_id) => {
                    queued += 1;
                    exports::build(
                        &mut conn,
                        &self.profiles,
                        &self.export_key,
                        &self.settings.exports.dir,
                        &s.clinic_id,
                        &export_id,
                    )?;
                }
                None => continue,
            }
        }
        Ok(queued)
    }

    /// In one transaction: takes the period's key (or gives up when another worker has it),
    /// requests the period's export and queues one message per recipient. Returns the export.
    fn queue_summary(
        &self,
        conn: &mut DbConn,
        clinic_id: &str,
        period: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> AppResult<Option<String>> {
        db::write_transaction(conn, |conn| {
            if !outbox::take_key(conn, clinic_id, "summary", period)? {
                return Ok(None);
            }
            let export = exports::request(
                conn,
                &self.profiles,
                &system(),
                clinic_id,
                &ExportInput {
                    from: Some(from),
                    to: Some(to),
                    ..ExportInput::default()
                },
            )?;
            let mut recipients =
                crate::inspectors::usecases::active_inspector_emails(conn, clinic_id)?;
            if let Some(s) = settings::find(conn, clinic_id)? {
                for r in s.recipients() {
                    if !recipients.contains(&r) {
                        recipients.push(r);
                    }
                }
            }
            let composed = summary::compose(
                conn,
                &self.profiles,
                &SummaryInput {
                    clinic_id,
                    from: from.naive_utc(),
                    to: to.naive_utc(),
                    export_id: &export.id,
                    public_url: &self.settings.mail.public_url,
                },
            )?;
            let mut ids = Vec::new();
            for r in &recipients {
                let row = outbox::enqueue(
                    conn,
                    NewMail {
                        clinic_id: clinic_id.to_owned(),
                        kind: "summary",
                        recipient: r.clone(),
                        subject: composed.subject.clone(),
                        body_text: composed.text.clone(),
                        body_html: Some(composed.html.clone()),
                        export_id: Some(export.id.clone()),
                    },
                )?;
                ids.push(row.id);
            }
            audit::append(
                conn,
                clinic_id,
                &system(),
                NewEvent {
                    action: "mail.summary_queued",
                    entity_kind: "export",
                    entity_id: export.id.clone(),
                    payload: json!({"period": period, "recipients": recipients, "messages": ids}),
                    reason: None,
                },
            )?;
            Ok(Some(export.id))
        })
    }

    /// Reminds each clinic's owners 30, 7 and 1 days before a credential or a lot expires, and
    /// when a spore test falls due. Each reminder is keyed, so it goes out once.
    pub fn run_reminders(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let mut conn = self.conn()?;
        let list: Vec<(String, String, String, String)> = clinics::table
            .select((
                clinics::id,
                clinics::name,
                clinics::timezone,
                clinics::jurisdiction,
            ))
            .load(&mut **conn)?;
        let mut queued = 0;
        for (clinic_id, name, timezone, jurisdiction) in list {
            let owners = owner_emails(&mut conn, &clinic_id)?;
            if owners.is_empty() {
                continue;
            }
            let (Some(profile), Ok(tz)) = (
                self.profiles.get(&jurisdiction),
                timezone.parse::<chrono_tz::Tz>(),
            ) else {
                tracing::error!(clinic = %clinic_id, jurisdiction = %jurisdiction, timezone = %timezone,
                    "no reminders for this clinic: its profile is not installed or its time zone is unknown");
                continue;
            };
            let facts = crate::compliance::facts::gather(
                &mut conn,
                profile,
                &clinic_id,
                tz,
                now.naive_utc(),
            )?;
            let mut due: Vec<(String, String)> = Vec::new();
            for l in &facts.lots {
                if l.status != crate::lots::model::LotStatus::Usable {
                    continue;
                }
                let left = (l.expiry_date - facts.today).num_days();
                if let Some(t) = reminder_threshold(left) {
                    due.push((
                        format!("lot:{}:{t}", l.id),
                        format!("{} expires on {} (in {left} days)", l.label, l.expiry_date),
                    ));
                }
            }
            for c in &facts.credential_expiries {
                let left = (c.expires_on - facts.today).num_days();
                if let Some(t) = reminder_threshold(left) {
                    due.push((
                        format!("credential:{}:{t}", c.credential_id),
                        format!(
                            "{}'s {} expires on {} (in {left} days)",
                            c.member,
                            c.kind.label(),
                            c.expires_on
                        ),
                    ));
                }
            }
            for f in crate::compliance::rules::spore_tests(profile, &facts) {
                if f.rule != crate::compliance::rules::Rule::SporeTestInterval {
                    continue;
                }
                let day = f
                    .due
                    .map(|d| d.with_timezone(&tz).date_naive().to_string())
                    .unwrap_or_else(|| "none".into());
                due.push((format!("spore:{}:{day}", f.subject), f.message.clone()));
            }
            for (key, what) in due {
                let sent = db::write_transaction(&mut conn, |conn| {
                    if !outbox::take_key(conn, &clinic_id, "reminder", &key)? {
                        return Ok::<_, AppError>(false);
                    }
                    for owner in &owners {
                        outbox::enqueue(
                            conn,
                            NewMail {
                                clinic_id: clinic_id.clone(),
                                kind: "reminder",
                                recipient: owner.clone(),
                                subject: format!("Reminder for {name}: {what}"),
                                body_text: format!(
                                    "{what}.\n\nThis reminder is sent once; the clinic's compliance view lists everything that needs attention.\n"
                                ),
                                body_html: None,
                                export_id: None,
                            },
                        )?;
                    }
                    Ok(true)
                })?;
                queued += usize::from(sent);
            }
        }
        Ok(queued)
    }
}

/// Addresses of the clinic's active owners, for reminders.
fn owner_emails(conn: &mut DbConn, clinic_id: &str) -> QueryResult<Vec<String>> {
    let mut emails: Vec<String> = crate::auth::store::members_of(conn, clinic_id)?
        .into_iter()
        .filter(|(m, u)| m.active && u.active && m.role() == crate::auth::Role::Owner)
        .map(|(_, u)| u.email)
        .collect();
    emails.sort();
    Ok(emails)
}

/// A running worker thread; stopped when the service stops.
pub struct WorkerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerHandle {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts the worker: deliveries whenever something is due, schedules every ten polls (at most
/// a minute apart), reminders every hundred polls (at most ten minutes apart).
pub fn spawn(mailer: Arc<Mailer>) -> WorkerHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("aseptic-mail".into())
        .spawn(move || {
            let poll = StdDuration::from_millis(mailer.settings.mail.poll_interval_ms.max(10));
            let scan_every = (poll * 10).min(StdDuration::from_secs(60));
            // Reminders judge every clinic's records: a few minutes late is fine, and an
            // installation with many clinics should not do that every minute.
            let remind_every = (poll * 100).min(StdDuration::from_secs(600));
            let (mut last_scan, mut last_reminders): (Option<Instant>, Option<Instant>) =
                (None, None);
            while !flag.load(Ordering::SeqCst) {
                if last_scan.is_none_or(|t| t.elapsed() >= scan_every) {
                    last_scan = Some(Instant::now());
                    if let Err(e) = mailer.run_schedules(crate::clock::now()) {
                        tracing::error!(error = %e, "audit summaries could not be queued");
                    }
                }
                if last_reminders.is_none_or(|t| t.elapsed() >= remind_every) {
                    last_reminders = Some(Instant::now());
                    if let Err(e) = mailer.run_reminders(crate::clock::now()) {
                        tracing::error!(error = %e, "reminders could not be queued");
                    }
                }
                let handled = match mailer.deliver_due() {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::error!(error = %e, "mail delivery round failed");
                        0
                    }
                };
                if handled == 0 {
                    // Sleep in short steps so a stop is noticed quickly.
                    let until = Instant::now() + poll;
                    while Instant::now() < until && !flag.load(Ordering::SeqCst) {
                        std::thread::sleep(StdDuration::from_millis(20).min(poll));
                    }
                }
            }
        })
        .ok();
    WorkerHandle { stop, thread }
}
