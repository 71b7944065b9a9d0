//! The `aseptic` command: serve the API (the default), migrate, create a clinic.

use std::process::ExitCode;

use aseptic::audit::AuditContext;
use aseptic::auth::{check_email, normalise_email, password, store as accounts};
use aseptic::clinics::model::NewClinic;
use aseptic::clinics::usecases::{self as clinics, OwnerAccount};
use aseptic::config::Settings;
use aseptic::error::AppError;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "aseptic",
    version,
    about = "Infection-control compliance records for SMP, PMU and tattoo clinics"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default when no command is given).
    Serve {
        /// Address and port to listen on, e.g. 0.0.0.0:8080 (default: server.bind).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Ask a running service whether it is ready (GET /readyz); exits 0 when it is. For a
    /// container's health check, where no HTTP client is installed.
    CheckReady {
        /// The service's address (default: server.bind, with 0.0.0.0 read as 127.0.0.1).
        #[arg(long)]
        address: Option<String>,
    },
    /// Create a clinic and its owner account; prints the new clinic's id as the last line.
    /// The owner's password is read from ASEPTIC_OWNER_PASSWORD, or asked for.
    CreateClinic {
        #[arg(long)]
        name: String,
        /// IANA time zone, e.g. Europe/London.
        #[arg(long)]
        timezone: String,
        /// Jurisdiction profile, e.g. baseline, us-ca, gb-eng.
        #[arg(long)]
        jurisdiction: String,
        #[arg(long)]
        owner_email: String,
        /// The owner's name as shown to staff, on labels and to inspectors (default: derived from
        /// the email, "sam.taylor@…" reads "Sam Taylor").
        #[arg(long)]
        owner_name: Option<String>,
        #[arg(long)]
        address: Option<String>,
        /// The clinic's licence or registration number.
        #[arg(long)]
        registration_number: Option<String>,
        /// The owner works on clients too, so practitioner credentials are required of them.
        #[arg(long)]
        owner_works_on_clients: bool,
    },
    /// Build an audit export of a clinic for a period, as an owner's request would, and copy
    /// the zip to --out.
    Export {
        #[arg(long)]
        clinic: String,
        /// Start of the period, RFC 3339 (or a date, taken as midnight UTC).
        #[arg(long)]
        from: String,
        /// End of the period (exclusive).
        #[arg(long)]
        to: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Check an audit export: its signature, every file's SHA-256 and every link of its chain.
    /// Exits 0 when it is intact, 1 naming the first thing wrong.
    VerifyExport {
        /// The export's zip.
        file: std::path::PathBuf,
        /// The public key (PEM) to check the signature with; default: this installation's.
        #[arg(long)]
        key: Option<std::path::PathBuf>,
    },
    /// Import cycle records from a steriliser's own files: each PATH is a file, a folder (walked)
    /// or a zip of a whole card or stick. Files imported before are recognised and skipped.
    ImportCycles {
        #[arg(long)]
        clinic: String,
        #[arg(long)]
        steriliser: String,
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
    },
    /// Create a demo clinic with an owner, two technicians and an inspector, and N months of a
    /// busy studio's records up to yesterday (a failed spore test with its look-back, a
    /// recalled lot, an open incident). Prints how to sign in.
    Demo {
        /// Months of history.
        #[arg(long, default_value_t = 3)]
        months: u32,
        /// Client sessions a day.
        #[arg(long, default_value_t = 40)]
        sessions_per_day: u32,
        /// Sterilisation loads a day (weekly spore-test loads come on top).
        #[arg(long, default_value_t = 5)]
        cycles_per_day: u32,
        /// Jurisdiction profile of the demo clinic.
        #[arg(long, default_value = "baseline")]
        jurisdiction: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aseptic: {e}");
            return ExitCode::from(2);
        }
    };
    aseptic::telemetry::init(&settings.log);
    let result = match cli.command.unwrap_or(Command::Serve { bind: None }) {
        Command::Serve { bind } => serve(settings, bind),
        Command::Migrate => migrate(&settings),
        Command::CheckReady { address } => check_ready(&settings, address),
        Command::CreateClinic {
            name,
            timezone,
            jurisdiction,
            owner_email,
            owner_name,
            address,
            registration_number,
            owner_works_on_clients,
        } => create_clinic(
            &settings,
            NewClinic {
                name,
                timezone,
                jurisdiction,
                address,
                registration_number,
                owner_works_on_clients,
            },
            &owner_email,
            owner_name,
        ),
        Command::Export {
            clinic,
            from,
            to,
            out,
        } => export(&settings, &clinic, &from, &to, &out),
        Command::VerifyExport { file, key } => verify_export(&settings, &file, key.as_deref()),
        Command::ImportCycles {
            clinic,
            steriliser,
            paths,
        } => import_cycles(&settings, &clinic, &steriliser, &paths),
        Command::Demo {
            months,
            sessions_per_day,
            cycles_per_day,
            jurisdiction,
        } => demo(
            &settings,
            aseptic::demo::DemoOptions {
                months,
                sessions_per_day,
                cycles_per_day,
                jurisdiction,
                ..Default::default()
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aseptic: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings, bind: Option<String>) -> Result<(), String> {
    let backend = aseptic::db::Backend::parse(settings.database.url.expose())
        .map_err(|e| e.to_string())?
        .name();
    actix_web::rt::System::new().block_on(async move {
        let pool = aseptic::open_database(&settings).map_err(|e| e.to_string())?;
        let clinics = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
            aseptic::clinics::store::count(&mut conn).map_err(|e| e.to_string())
        })?;
        drop(pool);
        let app =
            aseptic::Application::build(settings, bind.as_deref()).map_err(|e| e.to_string())?;
        tracing::info!(address = %app.addr(), database = backend, "aseptic is listening");
        // Where a person goes next, on the terminal that started the service.
        let mut shown = app.addr();
        if shown.ip().is_unspecified() {
            shown.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        println!("Aseptic is running ({backend}).");
        println!("  Sign in:  http://{shown}/sign-in");
        println!("  The API:  http://{shown}/api/v1 (described at http://{shown}/api/docs)");
        if clinics == 0 {
            println!();
            println!("There is no clinic yet. In another terminal, create the demo clinic (its");
            println!("accounts and passwords are printed) with");
            println!("  cargo run --release -- demo");
            println!("or your own with `aseptic create-clinic` (see README.md).");
        }
        app.run().await.map_err(|e| e.to_string())
    })
}

fn check_ready(settings: &Settings, address: Option<String>) -> Result<(), String> {
    use std::io::{Read, Write};
    let address = address
        .unwrap_or_else(|| settings.server.bind.clone())
        .replace("0.0.0.0", "127.0.0.1");
    let addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&address)
        .map_err(|e| format!("{address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address}: no address"))?;
    let limit = std::time::Duration::from_secs(5);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, limit)
        .map_err(|e| format!("not ready: cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("not ready: {e}"))?;
    let mut answer = String::new();
    stream
        .take(64 * 1024)
        .read_to_string(&mut answer)
        .map_err(|e| format!("not ready: {e}"))?;
    let status = answer.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) == Some("200") {
        println!("ready");
        Ok(())
    } else {
        Err(format!("not ready: {status}"))
    }
}

fn migrate(settings: &Settings) -> Result<(), String> {
    let manager = aseptic::db::ConnectionManager::new(
        settings.database.url.expose(),
        settings.database.sqlite_busy_timeout_ms,
    )
    .map_err(|e| e.to_string())?;
    let mut conn = manager.connect().map_err(|e| e.to_string())?;
    let applied = aseptic::db::run_migrations(&mut conn).map_err(|e| e.to_string())?;
    if applied.is_empty() {
        println!("the database is up to date ({})", manager.backend().name());
    }
    for version in applied {
        println!("applied {version}");
    }
    Ok(())
}

fn read_owner_password(email: &str) -> Result<String, String> {
    let password = match std::env::var("ASEPTIC_OWNER_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let first = rpassword::prompt_password(format!("Password for {email}: "))
                .map_err(|e| format!("cannot read the password: {e}"))?;
            let again = rpassword::prompt_password("Repeat the password: ")
                .map_err(|e| format!("cannot read the password: {e}"))?;
            if first != again {
                return Err("the passwords do not match".to_owned());
            }
            first
        }
    };
    password::check_policy(&password, email).map_err(|e| format!("owner password {}", e.reason))?;
    Ok(password)
}

fn create_clinic(
    settings: &Settings,
    clinic: NewClinic,
    owner_email: &str,
    owner_name: Option<String>,
) -> Result<(), String> {
    let email = normalise_email(owner_email);
    check_email(&email).map_err(|reason| format!("--owner-email {reason}"))?;
    let profiles = aseptic::load_profiles(settings).map_err(|e| e.to_string())?;
    clinic.validate(&profiles).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("--{} {}", e.field.replace('_', "-"), e.reason))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let pool = aseptic::open_database(settings).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let existing = accounts::find_user_by_email(&mut conn, &email).map_err(|e| e.to_string())?;
    let owner = match existing {
        Some(_) => {
            println!("{email} already has an account; it becomes an owner of the new clinic");
            OwnerAccount::Existing
        }
        None => {
            let password = read_owner_password(&email)?;
            let password_hash = password::hash(&password).map_err(|e| e.to_string())?;
            OwnerAccount::New {
                display_name: owner_name
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| {
                        let derived = aseptic::auth::name_from_email(&email);
                        println!(
                            "no --owner-name given: the owner is shown as \"{derived}\" (give --owner-name to choose another)"
                        );
                        derived
                    }),
                password_hash,
            }
        }
    };
    let (row, _) = clinics::create_clinic(
        &mut conn,
        &AuditContext::operator(),
        &profiles,
        &clinic,
        &email,
        owner,
    )
    .map_err(|e| match e {
        AppError::Validation(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    })?;
    println!(
        "created clinic {:?} ({}, {}) with owner {email}",
        row.name, row.timezone, row.jurisdiction
    );
    println!("{}", row.id);
    Ok(())
}

fn demo(settings: &Settings, options: aseptic::demo::DemoOptions) -> Result<(), String> {
    let profiles = aseptic::load_profiles(settings).map_err(|e| e.to_string())?;
    let pool = aseptic::open_database(settings).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let demo = aseptic::demo::generate(&mut conn, &profiles, &options).map_err(|e| match e {
        AppError::Refused(errors) => errors
            .iter()
            .map(|e| format!("refused: {}: {}", e.field, e.reason))
            .collect::<Vec<_>>()
            .join("\n"),
        AppError::Validation(errors) => errors
            .iter()
            .map(|e| format!("--{} {}", e.field.replace('_', "-"), e.reason))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    })?;
    let c = &demo.counts;
    println!(
        "created {:?} with {} days of records in {:.1} s: {} sessions, {} clients, {} cycles, {} packs, {} spore tests, {} lots, {} incidents",
        demo.name,
        c.days,
        started.elapsed().as_secs_f64(),
        c.sessions,
        c.clients,
        c.cycles,
        c.packs,
        c.spore_tests,
        c.lots,
        c.incidents
    );
    println!();
    println!(
        "sign in at {}/sign-in (or POST /api/v1/auth/login) as:",
        settings.mail.public_url.trim_end_matches('/')
    );
    for a in &demo.accounts {
        println!(
            "  {:<11} {:<20} {}  password: {}",
            format!("{:?}", a.role).to_lowercase(),
            a.name,
            a.email,
            a.password
        );
    }
    println!();
    println!("failed spore test:  {}", demo.failed_spore_test_id);
    println!("recalled lot:       {}", demo.recalled_lot_id);
    println!("open incident:      {}", demo.open_incident_id);
    println!("clinic:");
    println!("{}", demo.clinic_id);
    Ok(())
}

fn verify_export(
    settings: &Settings,
    file: &std::path::Path,
    key: Option<&std::path::Path>,
) -> Result<(), String> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let public = match key {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("--key {}: {e}", path.display()))?;
            ed25519_dalek::VerifyingKey::from_public_key_pem(&pem).map_err(|e| {
                format!(
                    "--key {}: not an Ed25519 public key PEM ({e})",
                    path.display()
                )
            })?
        }
        None => {
            let configured = settings.exports.signing_key_path.trim();
            let path = if configured.is_empty() {
                aseptic::exports::key::DEFAULT_PATH
            } else {
                configured
            };
            if !std::path::Path::new(path).is_file() {
                return Err(format!(
                    "no export key at {path}: give the signer's public key with --key"
                ));
            }
            aseptic::exports::ExportKey::load_or_create(path)
                .map_err(|e| e.to_string())?
                .verifying_key()
        }
    };
    let zip = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    match aseptic::exports::bundle::verify(std::io::BufReader::new(zip), &public) {
        Ok(m) => {
            println!(
                "valid: {} files, audit events {}..{} ending in {}, signed by key {}",
                m.files.len(),
                m.chain.first_seq.map_or("-".into(), |s| s.to_string()),
                m.chain.last_seq.map_or("-".into(), |s| s.to_string()),
                m.chain.head_hash,
                m.key_fingerprint
            );
            Ok(())
        }
        Err(e) => Err(format!("INVALID: {e}")),
    }
}

fn moment(text: &str, flag: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| format!("--{flag} must be an RFC 3339 time or a date (YYYY-MM-DD)"))
}

/// The files under `path` (itself when it is a file), named by their path below it.
fn gather(
    path: &std::path::Path,
    out: &mut Vec<aseptic::sterilisation::import::RawFile>,
) -> Result<(), String> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut Vec<aseptic::sterilisation::import::RawFile>,
    ) -> Result<(), String> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out)?;
            } else if p.is_file() {
                let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                let name = p
                    .strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(aseptic::sterilisation::import::RawFile { name, bytes });
            }
        }
        Ok(())
    }
    if path.is_dir() {
        walk(path, path, out)
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        out.push(aseptic::sterilisation::import::RawFile { name, bytes });
        Ok(())
    }
}

fn import_cycles(
    settings: &Settings,
    clinic: &str,
    steriliser: &str,
    paths: &[std::path::PathBuf],
) -> Result<(), String> {
    use aseptic::sterilisation::import::archive::{self, Limits, Refusal};
    let mut files = Vec::new();
    for p in paths {
        gather(p, &mut files)?;
    }
    let i = &settings.imports;
    let limits = Limits {
        file_bytes: i.file_limit_bytes,
        total_bytes: i.unpacked_limit_bytes,
        files: i.files_limit,
    };
    let files = archive::expand(files, &limits).map_err(|r| match r {
        Refusal::TooLarge(m) | Refusal::Unacceptable(m) => format!("refused: {m}"),
    })?;
    let profiles = aseptic::load_profiles(settings).map_err(|e| e.to_string())?;
    let pool = aseptic::open_database(settings).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let report = aseptic::sterilisation::usecases::import_files(
        &mut conn,
        &profiles,
        &AuditContext::operator(),
        clinic,
        steriliser,
        files,
    )
    .map_err(|e| match e {
        AppError::Validation(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect::<Vec<_>>()
            .join("\n"),
        AppError::NotFound | AppError::NoSuch(_) => format!("no clinic {clinic}"),
        AppError::NotFoundField(e) => format!("--steriliser: {}", e.reason),
        other => other.to_string(),
    })?;
    for f in &report.files {
        let what = match f.status.as_str() {
            "recorded" => format!(
                "{} cycle(s) read as {}",
                f.cycle_ids.len(),
                f.format.as_deref().unwrap_or("?")
            ),
            "already_imported" => "imported before: skipped".into(),
            "kept_not_read" => "kept (not a text record)".into(),
            _ => "kept, format not recognised".into(),
        };
        println!("{}  {}  {what}", &f.sha256[..12], f.name);
        for u in &f.unreadable {
            println!("    line {}: {}", u.line, u.reason);
        }
    }
    let warned = report
        .cycles
        .iter()
        .filter(|c| !c.warnings.is_empty())
        .count();
    println!(
        "{} cycle(s) recorded, {} file(s) imported before, {} cycle(s) with warnings",
        report.cycles_recorded, report.files_already_imported, warned
    );
    for c in report.cycles.iter().filter(|c| !c.warnings.is_empty()) {
        for w in &c.warnings {
            println!("  cycle {}: {} ({})", c.cycle_number, w.message, w.evidence);
        }
    }
    Ok(())
}

fn export(
    settings: &Settings,
    clinic: &str,
    from: &str,
    to: &str,
    out: &std::path::Path,
) -> Result<(), String> {
    let input = aseptic::exports::usecases::ExportInput {
        from: Some(moment(from, "from")?),
        to: Some(moment(to, "to")?),
        ..Default::default()
    };
    let profiles = aseptic::load_profiles(settings).map_err(|e| e.to_string())?;
    let key = aseptic::exports::ExportKey::load_or_create(&settings.exports.signing_key_path)
        .map_err(|e| e.to_string())?;
    let pool = aseptic::open_database(settings).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let ctx = AuditContext::operator();
    let shown = |e: AppError| match e {
        AppError::Validation(errors) => errors
            .iter()
            .map(|e| format!("--{} {}", e.field, e.reason))
            .collect::<Vec<_>>()
            .join("\n"),
        AppError::NotFound | AppError::NoSuch(_) => format!("no clinic {clinic}"),
        other => other.to_string(),
    };
    let requested = aseptic::exports::usecases::request(&mut conn, &profiles, &ctx, clinic, &input)
        .map_err(shown)?;
    let built = aseptic::exports::usecases::build(
        &mut conn,
        &profiles,
        &key,
        &settings.exports.dir,
        clinic,
        &requested.id,
    )
    .map_err(shown)?;
    if built.state != aseptic::exports::usecases::ExportState::Ready {
        return Err(built.error.unwrap_or_else(|| "the export failed".into()));
    }
    std::fs::copy(
        aseptic::exports::usecases::file_path(&settings.exports.dir, clinic, &requested.id),
        out,
    )
    .map_err(|e| format!("--out {}: {e}", out.display()))?;
    println!(
        "export {} built in {:.1} s: {} bytes, sha256 {}, chain head {}",
        requested.id,
        started.elapsed().as_secs_f64(),
        built.bytes.unwrap_or(0),
        built.sha256.unwrap_or_default(),
        built.chain_head.unwrap_or_default()
    );
    Ok(())
}
