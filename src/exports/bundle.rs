//! The export bundle: one zip with a CSV per record kind, the period's segment of the audit chain
//! as JSON lines, and `manifest.json` naming every file's SHA-256, the clinic, the period and the
//! chain, signed with the installation's Ed25519 key. `docs/export-format.md` is the reference.
//!
//! Rows are read in pages and written straight into the zip, so memory stays flat however long
//! the period.

use std::io::{Read, Seek, Write};

use base64::Engine;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::ExportKey;
use crate::audit::canonical::to_canonical_string;
use crate::audit::chain::{format_time, EventFields, Verifier, GENESIS_HASH};
use crate::audit::store::AuditEventRow;
use crate::compliance::lookback::cell;
use crate::db::schema::{
    air_removal_tests, audit_events, credential_verifications, credentials, cycles,
    incident_closures, incidents, lot_recalls, lots, packs, session_completions, session_lots,
    session_pack_removals, session_packs, session_starts, sessions, spore_test_results,
    spore_tests, sterilisers,
};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::jurisdiction::profiles::Profiles;
use crate::records::{current, current_by};

pub const FORMAT: &str = "aseptic-export/1";
use super::pages::{for_each_page, PAGE};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChainSegment {
    /// The first and last event of the period; none when the period holds no event.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The hash of the event just before the segment (all zeros at the chain's start).
    pub prev_hash: String,
    /// The hash of the segment's last event (equal to `prev_hash` for an empty segment).
    pub head_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub clinic: Value,
    pub period: Value,
    pub created_at: String,
    pub files: Vec<FileEntry>,
    pub chain: ChainSegment,
    pub key_fingerprint: String,
    /// Ed25519 over the canonical (RFC 8785) bytes of this manifest without `signature`, base64.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
}

impl Manifest {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature = String::new();
        let value = serde_json::to_value(&unsigned).unwrap_or(Value::Null);
        to_canonical_string(&value).into_bytes()
    }
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io(e: impl std::fmt::Display) -> AppError {
    AppError::internal(format!("export: {e}"))
}

fn t(v: NaiveDateTime) -> String {
    format_time(v)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Writes one CSV file into the zip: a header, then pages of rows until a short page.
fn csv_file<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    name: &str,
    header: &[&str],
    page: impl FnMut(Option<&str>) -> AppResult<Vec<(String, Vec<String>)>>,
) -> AppResult<()> {
    zip.start_file(name, options()).map_err(io)?;
    let mut w = Hashing {
        inner: &mut *zip,
        hasher: Sha256::new(),
        bytes: 0,
    };
    writeln!(w, "{}", header.join(",")).map_err(io)?;
    for_each_page(
        page,
        |r| r.0.clone(),
        |(_, cells)| {
            let line: Vec<String> = cells.iter().map(|c| cell(c)).collect();
            writeln!(w, "{}", line.join(",")).map_err(io)
        },
    )?;
    files.push(FileEntry {
        name: name.to_owned(),
        sha256: hex::encode(w.hasher.finalize()),
        bytes: w.bytes,
    });
    Ok(())
}

fn options() -> zip::write::SimpleFileOptions {
    // A fixed timestamp: the same records give the same bytes.
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
}

/// Builds the export of `clinic_id` for [from, to) into `out`.
#[allow(clippy::too_many_arguments)]
pub fn build<W: Write + Seek>(
    conn: &mut DbConn,
    profiles: &Profiles,
    key: &ExportKey,
    clinic_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
    created_at: NaiveDateTime,
    out: W,
) -> AppResult<Manifest> {
    let clinic = crate::clinics::store::find(conn, clinic_id)?.ok_or(AppError::NoSuch("clinic"))?;
    let mut zip = zip::ZipWriter::new(out);
    let mut files = Vec::new();
    let c = clinic_id.to_owned();
    // Loads and packs are judged by the one pack gate, as the records stood at the moment the
    // findings are judged at.
    let judged_at = judgement_moment(to, created_at, clinic.created_at);
    let judge = Judge::new(conn, profiles, clinic_id, judged_at, from)?;

    cycles_csv(&mut zip, &mut files, conn, &judge, &c, from, to)?;

    packs_csv(&mut zip, &mut files, conn, &judge, &c, from, to)?;

    spore_tests_csv(&mut zip, &mut files, conn, &c, from, to)?;

    air_removal_tests_csv(&mut zip, &mut files, conn, &c, from, to)?;

    lots_csv(&mut zip, &mut files, conn, &c, to)?;

    credentials_csv(&mut zip, &mut files, conn, &c, to)?;

    sessions_csv(&mut zip, &mut files, conn, &c, from, to)?;

    session_packs_csv(&mut zip, &mut files, conn, &c, from, to)?;

    session_lots_csv(&mut zip, &mut files, conn, &c, from, to)?;

    incidents_csv(&mut zip, &mut files, conn, &c, from, to)?;

    imported_cycles_csv(&mut zip, &mut files, conn, &c, from, to)?;

    device_files(&mut zip, &mut files, conn, &c, from, to)?;

    // Findings as the clinic stood at the end of the period (or now, for a running period); a
    // period that ends before the clinic was registered is judged as it was registered.
    let (view, facts) = crate::compliance::view::view_with_facts(
        conn,
        profiles,
        clinic_id,
        Some(judged_at.and_utc()),
    )?;
    findings_csv(&mut zip, &mut files, &view, judged_at)?;

    let chain = chain_segment(&mut zip, &mut files, conn, clinic_id, from, to)?;

    // The report, typeset from the same records; it names the chain head and the key.
    let pdf = super::report::build(
        conn,
        profiles,
        &super::report::ReportInput {
            clinic_id,
            from,
            to,
            judged_at,
            created_at,
            first_seq: chain.first_seq,
            last_seq: chain.last_seq,
            head_hash: &chain.head_hash,
            key_fingerprint: &key.fingerprint(),
            view: &view,
            facts: &facts,
        },
    )?;
    zip.start_file("report.pdf", options()).map_err(io)?;
    zip.write_all(&pdf).map_err(io)?;
    files.push(FileEntry {
        name: "report.pdf".into(),
        sha256: hex::encode(Sha256::digest(&pdf)),
        bytes: pdf.len() as u64,
    });

    // A plain-language guide, and the hashes in the form `sha256sum -c` reads, so that an
    // inspector can check the export with standard tools.
    let guide = super::verify_text::guide(&clinic.name, &key.fingerprint(), from, to);
    add_file(&mut zip, &mut files, "VERIFY.txt", guide.as_bytes())?;
    let sums: String = files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.name))
        .collect();
    add_file(&mut zip, &mut files, "SHA256SUMS", sums.as_bytes())?;

    let mut manifest = Manifest {
        format: FORMAT.into(),
        clinic: json!({
            "id": clinic.id, "name": clinic.name, "registration_number": clinic.registration_number,
            "timezone": clinic.timezone, "jurisdiction": clinic.jurisdiction,
        }),
        period: json!({"from": t(from), "to": t(to)}),
        created_at: t(created_at),
        files,
        chain,
        key_fingerprint: key.fingerprint(),
        signature: String::new(),
    };
    manifest.signature =
        base64::engine::general_purpose::STANDARD.encode(key.sign(&manifest.signed_bytes()));
    zip.start_file("manifest.json", options()).map_err(io)?;
    let pretty = serde_json::to_vec_pretty(&manifest).map_err(io)?;
    zip.write_all(&pretty).map_err(io)?;
    // The exact bytes signed and the raw signature, for `openssl pkeyutl -verify`.
    zip.start_file(SIGNED_BYTES, options()).map_err(io)?;
    zip.write_all(&manifest.signed_bytes()).map_err(io)?;
    zip.start_file(SIGNATURE, options()).map_err(io)?;
    zip.write_all(&key.sign(&manifest.signed_bytes()))
        .map_err(io)?;
    zip.finish().map_err(io)?;
    Ok(manifest)
}

/// The pack gate for an export: the profile's load rules and the sterilisers as they stood at
/// the judgement moment, read once and applied a page of loads at a time.
struct Judge {
    rules: crate::sterilisation::model::LoadRules,
    sterilisers:
        std::collections::BTreeMap<String, crate::sterilisation::usecases::gate::SteriliserAt>,
    at: NaiveDateTime,
}

impl Judge {
    fn new(
        conn: &mut DbConn,
        profiles: &Profiles,
        clinic_id: &str,
        at: NaiveDateTime,
        period_from: NaiveDateTime,
    ) -> AppResult<Self> {
        use crate::sterilisation::usecases::gate;
        let context = crate::clinics::context::load(conn, profiles, clinic_id)?;
        Ok(Self {
            rules: gate::load_rules(context.profile, context.tz),
            sterilisers: gate::sterilisers_at(conn, clinic_id, context.profile, at, period_from)?,
            at,
        })
    }

    /// Each of `loads` judged, with the facts of each of its packs.
    fn loads(
        &self,
        conn: &mut DbConn,
        clinic_id: &str,
        loads: &[crate::sterilisation::store::CycleRow],
    ) -> AppResult<
        std::collections::HashMap<String, crate::sterilisation::usecases::gate::JudgedLoad>,
    > {
        let ids: Vec<String> = loads.iter().map(|l| l.id.clone()).collect();
        let packs = crate::sterilisation::store::packs_of_cycles(conn, clinic_id, &ids)?;
        let codes: Vec<String> = packs.iter().map(|p| p.code.clone()).collect();
        let used: std::collections::HashSet<String> =
            crate::sterilisation::store::used_pack_codes(conn, clinic_id, &codes, self.at)?
                .into_iter()
                .collect();
        crate::sterilisation::usecases::gate::judge_loads(
            conn,
            clinic_id,
            &self.rules,
            &self.sterilisers,
            loads,
            &packs,
            &used,
            self.at,
        )
    }
}

/// The bytes the manifest's signature covers, as a file of their own.
pub const SIGNED_BYTES: &str = "manifest.signed";
/// The manifest's signature, 64 raw bytes.
pub const SIGNATURE: &str = "manifest.sig";

fn add_file<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    name: &str,
    bytes: &[u8],
) -> AppResult<()> {
    zip.start_file(name, options()).map_err(io)?;
    zip.write_all(bytes).map_err(io)?;
    files.push(FileEntry {
        name: name.into(),
        sha256: hex::encode(Sha256::digest(bytes)),
        bytes: bytes.len() as u64,
    });
    Ok(())
}

/// The moment an export's readiness is judged at: the period's end, or the export's request for
/// a running period, and never before the clinic was registered. The summary mailed with an
/// export names and uses the same moment, so the two never disagree.
pub fn judgement_moment(
    period_to: NaiveDateTime,
    requested_at: NaiveDateTime,
    registered_at: NaiveDateTime,
) -> NaiveDateTime {
    period_to.min(requested_at).max(registered_at)
}

/// What `verify` found wrong, the first thing first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Checks an export: the manifest's signature against `key`, every file's hash and size, no
/// file unlisted, and every link of the chain segment from the manifest's `prev_hash` to its
/// `head_hash`. Reads each file as a stream.
pub fn verify<R: Read + Seek>(
    mut zip: R,
    key: &ed25519_dalek::VerifyingKey,
) -> Result<Manifest, Invalid> {
    let bad = |s: String| Invalid(s);
    let listed = super::entries::listed_names(&mut zip).map_err(bad)?;
    if listed.iter().filter(|n| *n == "manifest.json").count() > 1 {
        return Err(bad("manifest.json is in the zip more than once".into()));
    }
    let mut archive =
        zip::ZipArchive::new(zip).map_err(|e| bad(format!("not a readable zip: {e}")))?;
    let manifest: Manifest = {
        let mut f = archive
            .by_name("manifest.json")
            .map_err(|_| bad("manifest.json is missing".into()))?;
        let mut text = String::new();
        f.read_to_string(&mut text)
            .map_err(|e| bad(format!("manifest.json cannot be read: {e}")))?;
        serde_json::from_str(&text).map_err(|e| bad(format!("manifest.json is malformed: {e}")))?
    };
    if manifest.format != FORMAT {
        return Err(bad(format!("unknown format {:?}", manifest.format)));
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&manifest.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or_else(|| bad("the manifest's signature is not 64 bytes of base64".into()))?;
    key.verify_strict(
        &manifest.signed_bytes(),
        &ed25519_dalek::Signature::from_bytes(&signature),
    )
    .map_err(|_| {
        bad("the manifest's signature does not verify with this key: the manifest was changed or signed by another key".into())
    })?;
    let files: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    super::entries::check_listing(&listed, &files).map_err(bad)?;
    // audit.jsonl is hashed in the same pass that checks its links, below.
    for entry in manifest.files.iter().filter(|f| f.name != "audit.jsonl") {
        let mut f = archive.by_name(&entry.name).map_err(|_| {
            bad(format!(
                "{} is listed in the manifest but missing",
                entry.name
            ))
        })?;
        let mut hasher = Sha256::new();
        let bytes = std::io::copy(&mut f, &mut hasher)
            .map_err(|e| bad(format!("{} cannot be read: {e}", entry.name)))?;
        let sha = hex::encode(hasher.finalize());
        if sha != entry.sha256 || bytes != entry.bytes {
            return Err(bad(format!(
                "{}: its SHA-256 is {sha} ({bytes} bytes) but the manifest says {} ({} bytes): the file was changed",
                entry.name, entry.sha256, entry.bytes
            )));
        }
    }
    // Every link of the chain, hashing the file on the way; a changed file is reported as such
    // before whatever link it breaks.
    let entry = manifest
        .files
        .iter()
        .find(|f| f.name == "audit.jsonl")
        .ok_or_else(|| bad("the manifest lists no audit.jsonl".into()))?;
    let f = archive
        .by_name("audit.jsonl")
        .map_err(|_| bad("audit.jsonl is listed in the manifest but missing".into()))?;
    let mut reader = std::io::BufReader::new(HashingReader {
        inner: f,
        hasher: Sha256::new(),
        bytes: 0,
    });
    let chain = &manifest.chain;
    let mut verifier = Verifier::starting_at(chain.first_seq.unwrap_or(1), &chain.prev_hash);
    let mut first_problem: Option<String> = None;
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let read = std::io::BufRead::read_line(&mut reader, &mut line)
            .map_err(|e| bad(format!("audit.jsonl cannot be read: {e}")))?;
        if read == 0 {
            break;
        }
        if first_problem.is_some() {
            continue;
        }
        if let Err(problem) = check_line(&mut verifier, n, line.trim_end_matches('\n')) {
            first_problem = Some(problem);
        }
        n += 1;
    }
    let HashingReader {
        inner,
        hasher,
        bytes: hashed_bytes,
    } = reader.into_inner();
    // The archive is read again below.
    drop(inner);
    let sha = hex::encode(hasher.finalize());
    if sha != entry.sha256 || hashed_bytes != entry.bytes {
        return Err(bad(format!(
            "audit.jsonl: its SHA-256 is {sha} ({} bytes) but the manifest says {} ({} bytes): the file was changed",
            hashed_bytes, entry.sha256, entry.bytes
        )));
    }
    if let Some(problem) = first_problem {
        return Err(bad(problem));
    }
    let (seq, hash) = verifier.head();
    let expected_last = chain.last_seq.unwrap_or(chain.first_seq.unwrap_or(1) - 1);
    if seq != expected_last || hash != chain.head_hash {
        return Err(bad(format!(
            "audit.jsonl ends at event {seq} but the manifest's chain ends at event {expected_last}: events are missing from the end"
        )));
    }
    // The signed bytes and the raw signature, where the export carries them, must be exactly
    // the manifest's.
    for (name, expected) in [
        (SIGNED_BYTES, manifest.signed_bytes()),
        (SIGNATURE, signature.to_vec()),
    ] {
        if let Ok(mut f) = archive.by_name(name) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes)
                .map_err(|e| bad(format!("{name} cannot be read: {e}")))?;
            if bytes != expected {
                return Err(bad(format!(
                    "{name} does not match manifest.json: it was changed"
                )));
            }
        }
    }
    Ok(manifest)
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Checks line `n` (from 0) of audit.jsonl as the next link of the chain.
fn check_line(verifier: &mut Verifier, n: usize, line: &str) -> Result<(), String> {
    let mut e: Value =
        serde_json::from_str(line).map_err(|_| format!("audit.jsonl line {}: not JSON", n + 1))?;
    // Taken out of the line, not copied: the payload is most of each line.
    let payload = e.get_mut("payload").map_or(Value::Null, Value::take);
    let s = |k: &str| e.get(k).and_then(Value::as_str);
    let recorded_at = s("recorded_at")
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
        .map(|v| v.with_timezone(&Utc).naive_utc())
        .ok_or_else(|| format!("audit.jsonl line {}: no recorded_at", n + 1))?;
    let fields = EventFields {
        clinic_id: s("clinic_id").unwrap_or_default(),
        seq: e.get("seq").and_then(Value::as_i64).unwrap_or(-1),
        recorded_at,
        actor_kind: s("actor_kind").unwrap_or_default(),
        actor_id: s("actor_id"),
        action: s("action").unwrap_or_default(),
        entity_kind: s("entity_kind").unwrap_or_default(),
        entity_id: s("entity_id").unwrap_or_default(),
        payload: &payload,
        reason: s("reason"),
        request_id: s("request_id"),
    };
    if verifier.push(
        &fields,
        s("prev_hash").unwrap_or_default(),
        s("hash").unwrap_or_default(),
    ) {
        return Ok(());
    }
    let b = verifier
        .first_break
        .clone()
        .unwrap_or(crate::audit::chain::ChainBreak {
            seq: fields.seq,
            reason: "broken".into(),
        });
    Err(format!(
        "audit.jsonl line {} (event {}): {}",
        n + 1,
        b.seq,
        b.reason
    ))
}

fn cycles_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    judge: &Judge,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<()> {
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "cycles.csv",
        &[
            "id",
            "version",
            "steriliser_id",
            "steriliser_serial",
            "cycle_number",
            "program",
            "program_temperature_c",
            "program_hold_minutes",
            "started_at",
            "finished_at",
            "peak_temperature_c",
            "peak_pressure_kpa",
            "hold_minutes",
            "operator_id",
            "load_indicator_type",
            "load_indicator_passed",
            "recorded_at",
            "amendment_reason",
            "outcome",
        ],
        |after| {
            let mut q = cycles::table
                .inner_join(sterilisers::table.on(sterilisers::id.eq(cycles::steriliser_id)))
                .filter(cycles::clinic_id.eq(&c))
                .filter(current("cycles"))
                .filter(current("sterilisers"))
                .filter(cycles::started_at.ge(from))
                .filter(cycles::started_at.lt(to))
                .select((
                    crate::sterilisation::store::CycleRow::as_select(),
                    sterilisers::serial_number,
                ))
                .order(cycles::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(cycles::id.gt(a.to_owned()));
            }
            let rows = q.load::<(crate::sterilisation::store::CycleRow, String)>(conn)?;
            let loads: Vec<crate::sterilisation::store::CycleRow> =
                rows.iter().map(|(r, _)| r.clone()).collect();
            let judged = judge.loads(conn, &c, &loads)?;
            Ok(rows
                .into_iter()
                .map(|(r, serial)| {
                    let outcome = judged
                        .get(&r.id)
                        .map(|j| serde_json::to_value(j.outcome).ok())
                        .and_then(|v| v.and_then(|v| v.as_str().map(str::to_owned)))
                        .unwrap_or_default();
                    (
                        r.id.clone(),
                        vec![
                            r.id,
                            r.version.to_string(),
                            r.steriliser_id,
                            serial,
                            r.cycle_number.to_string(),
                            r.program_name,
                            r.program_temperature_c.to_string(),
                            r.program_hold_minutes.to_string(),
                            t(r.started_at),
                            t(r.finished_at),
                            r.peak_temperature_c.to_string(),
                            r.peak_pressure_kpa.to_string(),
                            r.hold_minutes.to_string(),
                            r.operator_id,
                            r.load_indicator_type.to_string(),
                            r.load_indicator_passed.to_string(),
                            t(r.recorded_at),
                            opt(r.amendment_reason),
                            outcome,
                        ],
                    )
                })
                .collect())
        },
    )
}

fn spore_tests_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<()> {
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "spore_tests.csv",
        &[
            "id",
            "version",
            "steriliser_id",
            "cycle_id",
            "bi_product",
            "bi_lot",
            "placed_at",
            "incubation",
            "lab_name",
            "result",
            "control_result",
            "read_at",
            "lab_reference",
            "recorded_at",
            "result_version",
            "result_correction_reason",
            "result_recorded_at",
            "result_recorded_by",
        ],
        |after| {
            let mut q = spore_tests::table
                .left_join(
                    spore_test_results::table.on(spore_test_results::spore_test_id
                        .eq(spore_tests::id)
                        .and(current_by("spore_test_results", "spore_test_id"))),
                )
                .filter(spore_tests::clinic_id.eq(&c))
                .filter(current("spore_tests"))
                .filter(spore_tests::placed_at.ge(from))
                .filter(spore_tests::placed_at.lt(to))
                .select((
                    crate::sterilisation::store::SporeTestRow::as_select(),
                    Option::<crate::sterilisation::store::SporeResultRow>::as_select(),
                ))
                .order(spore_tests::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(spore_tests::id.gt(a.to_owned()));
            }
            Ok(q.load::<(
                crate::sterilisation::store::SporeTestRow,
                Option<crate::sterilisation::store::SporeResultRow>,
            )>(conn)?
                .into_iter()
                .map(|(s, r)| {
                    (
                        s.id.clone(),
                        vec![
                            s.id,
                            s.version.to_string(),
                            s.steriliser_id,
                            s.cycle_id,
                            s.bi_product,
                            s.bi_lot,
                            t(s.placed_at),
                            s.incubation,
                            opt(s.lab_name),
                            opt(r.as_ref().map(|r| r.result.clone())),
                            opt(r.as_ref().map(|r| r.control_result.clone())),
                            opt(r.as_ref().map(|r| t(r.read_at))),
                            opt(r.as_ref().and_then(|r| r.lab_reference.clone())),
                            t(s.recorded_at),
                            opt(r.as_ref().map(|r| r.version.to_string())),
                            opt(r.as_ref().and_then(|r| r.correction_reason.clone())),
                            opt(r.as_ref().map(|r| t(r.recorded_at))),
                            opt(r.as_ref().and_then(|r| r.recorded_by.clone())),
                        ],
                    )
                })
                .collect())
        },
    )
}

fn air_removal_tests_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<()> {
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "air_removal_tests.csv",
        &[
            "id",
            "version",
            "steriliser_id",
            "performed_at",
            "test_type",
            "passed",
            "notes",
            "recorded_at",
        ],
        |after| {
            let mut q = air_removal_tests::table
                .filter(air_removal_tests::clinic_id.eq(&c))
                .filter(current("air_removal_tests"))
                .filter(air_removal_tests::performed_at.ge(from))
                .filter(air_removal_tests::performed_at.lt(to))
                .select(crate::sterilisation::store::AirRemovalRow::as_select())
                .order(air_removal_tests::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(air_removal_tests::id.gt(a.to_owned()));
            }
            Ok(q.load::<crate::sterilisation::store::AirRemovalRow>(conn)?
                .into_iter()
                .map(|r| {
                    (
                        r.id.clone(),
                        vec![
                            r.id,
                            r.version.to_string(),
                            r.steriliser_id,
                            t(r.performed_at),
                            r.test_type,
                            r.passed.to_string(),
                            opt(r.notes),
                            t(r.recorded_at),
                        ],
                    )
                })
                .collect())
        },
    )
}

fn lots_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    c: &str,
    to: NaiveDateTime,
) -> AppResult<()> {
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "lots.csv",
        &[
            "id",
            "version",
            "kind",
            "manufacturer",
            "product_name",
            "gtin",
            "lot_number",
            "expiry_date",
            "sterilisation_method",
            "received_on",
            "recalled_at",
            "recall_reason",
            "recall_reference",
        ],
        |after| {
            let mut q = lots::table
                .left_join(lot_recalls::table.on(lot_recalls::lot_id.eq(lots::id)))
                .filter(lots::clinic_id.eq(&c))
                .filter(current("lots"))
                .filter(lots::recorded_at.lt(to))
                .select((
                    crate::lots::store::LotRow::as_select(),
                    Option::<crate::lots::store::RecallRow>::as_select(),
                ))
                .order(lots::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(lots::id.gt(a.to_owned()));
            }
            Ok(q.load::<(
                crate::lots::store::LotRow,
                Option<crate::lots::store::RecallRow>,
            )>(conn)?
                .into_iter()
                .map(|(l, r)| {
                    (
                        l.id.clone(),
                        vec![
                            l.id,
                            l.version.to_string(),
                            l.kind,
                            l.manufacturer,
                            l.product_name,
                            opt(l.gtin),
                            l.lot_number,
                            l.expiry_date.to_string(),
                            l.sterilisation_method,
                            l.received_on.to_string(),
                            opt(r.as_ref().map(|r| t(r.recalled_at))),
                            opt(r.as_ref().map(|r| r.reason.clone())),
                            opt(r.as_ref().map(|r| r.reference.clone())),
                        ],
                    )
                })
                .collect())
        },
    )
}

/// Status only: no numbers, no medical detail (hepatitis B status stays in the clinic).
fn credentials_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    c: &str,
    to: NaiveDateTime,
) -> AppResult<()> {
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "credentials.csv",
        &[
            "id",
            "version",
            "user_id",
            "kind",
            "issued_on",
            "expires_on",
            "verified",
            "recorded_at",
        ],
        |after| {
            let mut q = credentials::table
                .filter(credentials::clinic_id.eq(&c))
                .filter(current("credentials"))
                .filter(credentials::recorded_at.lt(to))
                .select(crate::credentials::store::CredentialRow::as_select())
                .order(credentials::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(credentials::id.gt(a.to_owned()));
            }
            let rows = q.load::<crate::credentials::store::CredentialRow>(conn)?;
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            let verified: Vec<(String, i32)> = credential_verifications::table
                .filter(credential_verifications::credential_id.eq_any(&ids))
                .select((
                    credential_verifications::credential_id,
                    credential_verifications::credential_version,
                ))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    let v = verified
                        .iter()
                        .any(|(id, ver)| *id == r.id && *ver == r.version);
                    (
                        r.id.clone(),
                        vec![
                            r.id,
                            r.version.to_string(),
                            r.user_id,
                            r.kind,
                            opt(r.issued_on.or(r.declined_on)),
                            opt(r.expires_on),
                            v.to_string(),
                            t(r.recorded_at),
                        ],
                    )
                })
                .collect())
        },
    )
}

/// Clients appear by their pseudonymous id only.
fn sessions_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<()> {
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "sessions.csv",
        &[
            "id",
            "client_id",
            "technician_id",
            "station",
            "procedure",
            "planned_at",
            "started_at",
            "override_reason",
            "completed_at",
        ],
        |after| {
            let mut q = sessions::table
                .left_join(session_starts::table.on(session_starts::session_id.eq(sessions::id)))
                .left_join(
                    session_completions::table.on(session_completions::session_id.eq(sessions::id)),
                )
                .filter(sessions::clinic_id.eq(&c))
                .filter(sessions::planned_at.ge(from))
                .filter(sessions::planned_at.lt(to))
                .select((
                    sessions::id,
                    sessions::client_id,
                    sessions::technician_id,
                    sessions::station,
                    sessions::procedure_name,
                    sessions::planned_at,
                    session_starts::started_at.nullable(),
                    session_completions::completed_at.nullable(),
                ))
                .order(sessions::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(sessions::id.gt(a.to_owned()));
            }
            type Row = (
                String,
                String,
                String,
                String,
                String,
                NaiveDateTime,
                Option<NaiveDateTime>,
                Option<NaiveDateTime>,
            );
            let rows = q.load::<Row>(conn)?;
            let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            let overrides: std::collections::HashMap<String, String> = session_starts::table
                .filter(session_starts::session_id.eq_any(&ids))
                .filter(session_starts::override_reason.is_not_null())
                .select((session_starts::session_id, session_starts::override_reason))
                .load::<(String, Option<String>)>(conn)?
                .into_iter()
                .filter_map(|(id, r)| r.map(|r| (id, r)))
                .collect();
            Ok(rows
                .into_iter()
                .map(|r| {
                    let reason = overrides.get(&r.0).cloned().unwrap_or_default();
                    (
                        r.0.clone(),
                        vec![
                            r.0,
                            r.1,
                            r.2,
                            r.3,
                            r.4,
                            t(r.5),
                            opt(r.6.map(t)),
                            reason,
                            opt(r.7.map(t)),
                        ],
                    )
                })
                .collect())
        },
    )
}

fn incidents_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<()> {
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "incidents.csv",
        &[
            "id",
            "version",
            "kind",
            "occurred_at",
            "location",
            "session_id",
            "description",
            "immediate_actions",
            "closed_at",
        ],
        |after| {
            let mut q = incidents::table
                .left_join(
                    incident_closures::table.on(incident_closures::incident_id.eq(incidents::id)),
                )
                .filter(incidents::clinic_id.eq(&c))
                .filter(current("incidents"))
                .filter(incidents::occurred_at.ge(from))
                .filter(incidents::occurred_at.lt(to))
                .select((
                    crate::incidents::store::IncidentRow::as_select(),
                    incident_closures::closed_at.nullable(),
                ))
                .order(incidents::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(incidents::id.gt(a.to_owned()));
            }
            Ok(
                q.load::<(crate::incidents::store::IncidentRow, Option<NaiveDateTime>)>(conn)?
                    .into_iter()
                    .map(|(i, closed)| {
                        (
                            i.id.clone(),
                            vec![
                                i.id,
                                i.version.to_string(),
                                i.kind,
                                t(i.occurred_at),
                                i.location,
                                opt(i.session_id),
                                i.description,
                                i.immediate_actions,
                                opt(closed.map(t)),
                            ],
                        )
                    })
                    .collect(),
            )
        },
    )
}

/// The cycles read from the sterilisers' own files in the period, with what their checks on the
/// record found (the checks against the device's sequence are on the compliance view and in
/// findings.csv).
fn imported_cycles_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<()> {
    use crate::db::schema::{device_files, imported_cycles};
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "imported_cycles.csv",
        &[
            "id",
            "steriliser_id",
            "cycle_number",
            "kind",
            "program",
            "started_at",
            "finished_at",
            "peak_temperature_c",
            "peak_pressure_kpa",
            "hold_seconds",
            "device_result",
            "outcome",
            "serial",
            "format",
            "file_sha256",
            "warnings",
        ],
        |after| {
            let mut q = imported_cycles::table
                .inner_join(device_files::table.on(device_files::id.eq(imported_cycles::file_id)))
                .filter(imported_cycles::clinic_id.eq(&c))
                .filter(imported_cycles::started_at.ge(from))
                .filter(imported_cycles::started_at.lt(to))
                .filter(imported_cycles::recorded_at.lt(to))
                .select((
                    crate::sterilisation::device_records::ImportedCycleRow::as_select(),
                    device_files::sha256,
                ))
                .order(imported_cycles::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(imported_cycles::id.gt(a.to_owned()));
            }
            Ok(q.load::<(
                crate::sterilisation::device_records::ImportedCycleRow,
                String,
            )>(conn)?
                .into_iter()
                .map(|(r, sha)| {
                    let warnings: Vec<crate::sterilisation::import::checks::Warning> =
                        serde_json::from_str(&r.warnings).unwrap_or_default();
                    let warnings: Vec<String> = warnings
                        .into_iter()
                        .map(|w| format!("{}: {} ({})", w.check, w.message, w.evidence))
                        .collect();
                    (
                        r.id.clone(),
                        vec![
                            r.id,
                            r.steriliser_id,
                            r.cycle_number.to_string(),
                            r.kind,
                            r.program_name,
                            t(r.started_at),
                            opt(r.finished_at.map(t)),
                            opt(r.peak_temperature_c),
                            opt(r.peak_pressure_kpa),
                            opt(r.hold_seconds),
                            r.device_result,
                            r.outcome,
                            opt(r.serial),
                            r.format,
                            sha,
                            warnings.join("; "),
                        ],
                    )
                })
                .collect())
        },
    )
}

/// The sterilisers' own files behind the period's imported cycles, byte for byte, each under
/// `device-files/<sha256>` (so a renamed or altered file cannot pass), with `device_files.csv`
/// naming them as they were uploaded. One file is held in memory at a time.
fn device_files<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<()> {
    let entries = crate::sterilisation::device_records::files_of_period(conn, c, from, to)?;
    let mut listing = String::from("sha256,name,steriliser_id,format,bytes,uploaded_at\n");
    for e in &entries {
        let content = crate::sterilisation::device_records::file_content(conn, c, &e.id)?;
        add_file(zip, files, &format!("device-files/{}", e.sha256), &content)?;
        let cells = [
            e.sha256.clone(),
            e.name.clone(),
            e.steriliser_id.clone(),
            e.format.clone().unwrap_or_default(),
            e.size_bytes.to_string(),
            t(e.uploaded_at),
        ];
        let line: Vec<String> = cells.iter().map(|x| cell(x)).collect();
        listing.push_str(&line.join(","));
        listing.push('\n');
    }
    add_file(zip, files, "device_files.csv", listing.as_bytes())
}

/// The packs opened in the period's sessions: with packs.csv and cycles.csv, which clients a
/// load reached.
/// A pack's use in a session, and its setting aside before the start if it was.
type SessionPackLine = (
    String,
    String,
    Option<String>,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<String>,
    Option<String>,
);

fn session_packs_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<()> {
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "session_packs.csv",
        &[
            "session_id",
            "pack_code",
            "added_by",
            "added_at",
            "set_aside_at",
            "set_aside_by",
            "set_aside_reason",
        ],
        |after| {
            let in_period = sessions::table
                .filter(sessions::clinic_id.eq(&c))
                .filter(sessions::planned_at.ge(from))
                .filter(sessions::planned_at.lt(to))
                .select(sessions::id);
            let mut q = session_packs::table
                .left_join(
                    session_pack_removals::table.on(session_pack_removals::session_id
                        .eq(session_packs::session_id)
                        .and(session_pack_removals::pack_code.eq(session_packs::pack_code))),
                )
                .filter(session_packs::clinic_id.eq(&c))
                .filter(session_packs::session_id.eq_any(in_period))
                .select((
                    session_packs::session_id,
                    session_packs::pack_code,
                    session_packs::added_by,
                    session_packs::added_at,
                    session_pack_removals::removed_at.nullable(),
                    session_pack_removals::removed_by.nullable(),
                    session_pack_removals::reason.nullable(),
                ))
                .order((
                    session_packs::session_id.asc(),
                    session_packs::pack_code.asc(),
                ))
                .limit(PAGE)
                .into_boxed();
            if let Some((session, code)) = after.and_then(|a| a.split_once('\t')) {
                q = q.filter(
                    session_packs::session_id
                        .gt(session.to_owned())
                        .or(session_packs::session_id
                            .eq(session.to_owned())
                            .and(session_packs::pack_code.gt(code.to_owned()))),
                );
            }
            Ok(q.load::<SessionPackLine>(conn)?
                .into_iter()
                .map(|(session, code, by, at, aside_at, aside_by, why)| {
                    (
                        format!("{session}\t{code}"),
                        vec![
                            session,
                            code,
                            opt(by),
                            t(at),
                            aside_at.map(t).unwrap_or_default(),
                            opt(aside_by),
                            opt(why),
                        ],
                    )
                })
                .collect())
        },
    )
}

/// The lots recorded for the period's sessions, with the lot number as recorded then: with
/// lots.csv, which clients a recalled lot reached.
fn session_lots_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<()> {
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "session_lots.csv",
        &[
            "session_id",
            "lot_id",
            "lot_version",
            "lot_number",
            "added_by",
            "added_at",
        ],
        |after| {
            let in_period = sessions::table
                .filter(sessions::clinic_id.eq(&c))
                .filter(sessions::planned_at.ge(from))
                .filter(sessions::planned_at.lt(to))
                .select(sessions::id);
            let mut q = session_lots::table
                .filter(session_lots::clinic_id.eq(&c))
                .filter(session_lots::session_id.eq_any(in_period))
                .select((
                    session_lots::session_id,
                    session_lots::lot_id,
                    session_lots::lot_version,
                    session_lots::snapshot,
                    session_lots::added_by,
                    session_lots::added_at,
                ))
                .order((session_lots::session_id.asc(), session_lots::lot_id.asc()))
                .limit(PAGE)
                .into_boxed();
            if let Some((session, lot)) = after.and_then(|a| a.split_once('\t')) {
                q = q.filter(
                    session_lots::session_id
                        .gt(session.to_owned())
                        .or(session_lots::session_id
                            .eq(session.to_owned())
                            .and(session_lots::lot_id.gt(lot.to_owned()))),
                );
            }
            type Row = (String, String, i32, String, Option<String>, NaiveDateTime);
            Ok(q.load::<Row>(conn)?
                .into_iter()
                .map(|(session, lot, version, snapshot, by, at)| {
                    let number = serde_json::from_str::<serde_json::Value>(&snapshot)
                        .ok()
                        .and_then(|v| v["lot_number"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    (
                        format!("{session}\t{lot}"),
                        vec![session, lot, version.to_string(), number, opt(by), t(at)],
                    )
                })
                .collect())
        },
    )
}

/// Packs made by the period's loads.
fn packs_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    judge: &Judge,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<()> {
    let c = c.to_owned();
    csv_file(
        zip,
        files,
        "packs.csv",
        &[
            "code",
            "cycle_id",
            "contents",
            "indicator_type",
            "indicator_passed",
            "shelf_life_days",
            "created_at",
            "state",
            "state_reason",
            "expires_at",
        ],
        |after| {
            let in_period = cycles::table
                .filter(cycles::clinic_id.eq(&c))
                .filter(cycles::started_at.ge(from))
                .filter(cycles::started_at.lt(to))
                .select(cycles::id);
            let mut q = packs::table
                .filter(packs::clinic_id.eq(&c))
                .filter(packs::cycle_id.eq_any(in_period))
                .select(crate::sterilisation::store::PackRow::as_select())
                .order(packs::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(packs::id.gt(a.to_owned()));
            }
            let rows = q.load::<crate::sterilisation::store::PackRow>(conn)?;
            let cycle_ids: Vec<&str> = rows.iter().map(|p| p.cycle_id.as_str()).collect();
            let loads: Vec<crate::sterilisation::store::CycleRow> = cycles::table
                .filter(cycles::clinic_id.eq(&c))
                .filter(cycles::id.eq_any(&cycle_ids))
                .filter(current("cycles"))
                .select(crate::sterilisation::store::CycleRow::as_select())
                .load(conn)?;
            let judged = judge.loads(conn, &c, &loads)?;
            Ok(rows
                .into_iter()
                .map(|p| {
                    let facts = judged.get(&p.cycle_id).and_then(|j| j.packs.get(&p.code));
                    let (state, reason) = match facts {
                        Some(f) => {
                            let (state, reason, _) =
                                crate::sterilisation::model::pack_judgement(f, judge.at);
                            (
                                serde_json::to_value(state)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_owned))
                                    .unwrap_or_default(),
                                reason,
                            )
                        }
                        None => (String::new(), String::new()),
                    };
                    let expires = facts.and_then(|f| f.expires_at).map(t);
                    (
                        p.id.clone(),
                        vec![
                            p.code,
                            p.cycle_id,
                            p.contents,
                            opt(p.indicator_type),
                            opt(p.indicator_passed),
                            opt(p.shelf_life_days),
                            t(p.created_at),
                            state,
                            reason,
                            opt(expires),
                        ],
                    )
                })
                .collect())
        },
    )
}

/// The findings the report's readiness counts, as they stood at `judged_at`.
fn findings_csv<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    view: &crate::compliance::view::ComplianceView,
    judged_at: NaiveDateTime,
) -> AppResult<()> {
    let mut findings = Some(view.findings.clone());
    csv_file(
        zip,
        files,
        "findings.csv",
        &[
            "judged_at",
            "rule",
            "severity",
            "subject",
            "message",
            "reference",
            "due",
        ],
        |_| {
            Ok(findings
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|f| {
                    (
                        String::new(),
                        vec![
                            t(judged_at),
                            f.rule.as_str().to_owned(),
                            serde_json::to_value(f.severity)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            f.subject,
                            f.message,
                            f.reference,
                            opt(f.due.map(|d| t(d.naive_utc()))),
                        ],
                    )
                })
                .collect())
        },
    )
}

/// The chain segment: every event recorded in the period, in order, as `audit.jsonl`; and where
/// it starts and ends in the clinic's chain.
fn chain_segment<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    files: &mut Vec<FileEntry>,
    conn: &mut DbConn,
    clinic_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<ChainSegment> {
    zip.start_file("audit.jsonl", options()).map_err(io)?;
    let mut w = Hashing {
        inner: &mut *zip,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let first_seq: Option<i64> = audit_events::table
        .filter(audit_events::clinic_id.eq(clinic_id))
        .filter(audit_events::recorded_at.ge(from))
        .filter(audit_events::recorded_at.lt(to))
        .select(diesel::dsl::min(audit_events::seq))
        .first(conn)?;
    let prev_hash = match first_seq {
        Some(seq) if seq > 1 => audit_events::table
            .filter(audit_events::clinic_id.eq(clinic_id))
            .filter(audit_events::seq.eq(seq - 1))
            .select(audit_events::hash)
            .first::<String>(conn)?,
        _ => GENESIS_HASH.to_owned(),
    };
    let (mut last_seq, mut head_hash) = (None, prev_hash.clone());
    if let Some(first) = first_seq {
        let mut after = first - 1;
        loop {
            let rows: Vec<AuditEventRow> = audit_events::table
                .filter(audit_events::clinic_id.eq(clinic_id))
                .filter(audit_events::seq.gt(after))
                .filter(audit_events::recorded_at.lt(to))
                .select(AuditEventRow::as_select())
                .order(audit_events::seq.asc())
                .limit(PAGE)
                .load(conn)?;
            for r in &rows {
                let line = json!({
                    "clinic_id": r.clinic_id, "seq": r.seq, "recorded_at": t(r.recorded_at),
                    "actor_kind": r.actor_kind, "actor_id": r.actor_id, "action": r.action,
                    "entity_kind": r.entity_kind, "entity_id": r.entity_id,
                    "payload": r.payload_json(), "reason": r.reason, "request_id": r.request_id,
                    "prev_hash": r.prev_hash, "hash": r.hash,
                });
                writeln!(w, "{}", to_canonical_string(&line)).map_err(io)?;
                last_seq = Some(r.seq);
                head_hash = r.hash.clone();
                after = r.seq;
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
    }
    files.push(FileEntry {
        name: "audit.jsonl".into(),
        sha256: hex::encode(w.hasher.finalize()),
        bytes: w.bytes,
    });
    Ok(ChainSegment {
        first_seq,
        last_seq,
        prev_hash,
        head_hash,
    })
}
