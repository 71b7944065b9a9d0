//! Importing a card of 2,000 cycle files (a zip of Tuttnauer Elara 11 text records, the size of
//! a year and more of a busy studio's loads) against the two things it is made of, in one run:
//! parsing alone (unzip and read every record), and inserting the same rows straight into the
//! database (the device files and the cycles, one transaction, prepared statements).
//!
//! `cargo bench --bench import`; `BENCH_DATABASE_URL=postgres://…` runs it on PostgreSQL (a
//! fresh database is made for it and dropped after).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use aseptic::audit::AuditContext;
use aseptic::clinics::model::NewClinic;
use aseptic::clinics::usecases::{self as clinics, OwnerAccount};
use aseptic::db::{self, DbConn};
use aseptic::jurisdiction::profiles::Profiles;
use aseptic::sterilisation::device_records::{DeviceFileRow, ImportedCycleRow};
use aseptic::sterilisation::import::archive::{self, Limits};
use aseptic::sterilisation::import::parsers;
use aseptic::sterilisation::import::RawFile;
use aseptic::sterilisation::model::{SteriliserInput, SteriliserKind};
use aseptic::sterilisation::usecases;
use diesel::prelude::*;

const FILES: usize = 2_000;
const RUNS: usize = 3;

/// One record in the documented Elara 11 layout; values vary with the number like a real card's.
fn record(n: usize) -> String {
    let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()
        + chrono::Duration::days((n / 5) as i64);
    let hour = 8 + (n % 5) * 2;
    let jitter = |k: usize| ((n * 7 + k * 13) % 9) as f64 / 10.0;
    let months = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    use chrono::Datelike;
    let mut s = format!(
        "------------------------\nDate: {:02}/{}/{}\nTime: {hour:02}:00:00\nSer. Num: 12345678\nModel: ELARA11\nVersion: 1\nSoftware vers.: 2.0.3.98\nCycle Num: {:06}\nWRAPPED INSTU\nSter. Temp. 273.2 °F\nSter. Time 4.0 min\nDry Time 20 min\nEnd Temperature 248 °F\n  Time     °F    Psig\n",
        day.day(),
        months[day.month0() as usize],
        day.year(),
        1000 + n
    );
    s.push_str(&format!(
        "A 00:00:06 {:.1} 00.41\nA 00:03:06 {:.1} 24.90In\nH 00:15:02 {:.1} 05.80\n",
        140.0 + jitter(1),
        151.0 + jitter(2),
        221.0 + jitter(3)
    ));
    s.push_str(&format!("CLK 1: {hour:02}:26:30\nCLK 2: {hour:02}:26:30\n"));
    for k in 0..5 {
        let tf = 274.9 + jitter(k + 4);
        let kpa = 304.2 + ((tf - 32.0) * 5.0 / 9.0 - 134.0) * 9.1;
        s.push_str(&format!(
            "S 00:{:02}:{:02} {tf:.1} {:05.2}\n",
            26 + k,
            31,
            (kpa - 101.325) / 6.894757
        ));
    }
    s.push_str(&format!("CLK 1: {hour:02}:30:31\nCLK 2: {hour:02}:30:31\nE 00:30:33 275.1 30.80\nD 00:31:50 210.2 20.10In\nStatus: Cycle Ended\nTime: {hour:02}:52:31\nOperator: ____________\n------------------------\n"));
    s
}

fn card() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for n in 0..FILES {
        w.start_file(format!("TXT/cycle_{:06}.txt", 1000 + n), opts)
            .unwrap();
        w.write_all(record(n).as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn clinic(conn: &mut DbConn, profiles: &Profiles, tag: &str) -> (String, String) {
    let (row, _) = clinics::create_clinic(
        conn,
        &AuditContext::operator(),
        profiles,
        &NewClinic {
            name: format!("Import bench {tag}"),
            timezone: "Europe/London".into(),
            jurisdiction: "baseline".into(),
            address: None,
            registration_number: None,
            owner_works_on_clients: false,
        },
        &format!("owner.{tag}@bench.example"),
        OwnerAccount::New {
            display_name: "Owner".into(),
            password_hash: "not-a-real-hash".into(),
        },
    )
    .unwrap();
    let steriliser = usecases::create_steriliser(
        conn,
        &AuditContext::operator(),
        &row.id,
        SteriliserInput {
            make: "Tuttnauer".into(),
            model: "Elara 11".into(),
            serial_number: "12345678".into(),
            kind: SteriliserKind::PreVacuum,
            chamber_litres: Some(11.0),
            location: None,
            installed_on: None,
        },
    )
    .unwrap();
    (row.id, steriliser.id)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_default();
    let (url, cleanup): (String, Option<(String, String)>) = if url.starts_with("postgres") {
        let name = format!("aseptic_bench_import_{}", std::process::id());
        let mut admin = diesel::PgConnection::establish(&url).unwrap();
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap();
        let base = url
            .rsplit_once('/')
            .map_or(url.as_str(), |(b, _)| b)
            .to_owned();
        (format!("{base}/{name}"), Some((url.clone(), name)))
    } else {
        std::fs::create_dir_all("target/bench").unwrap();
        let path = format!("target/bench/import-{}.db", std::process::id());
        (format!("sqlite://{path}"), None)
    };
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let pool = db::connect_and_migrate(&url, 2, Duration::from_secs(30), 5_000).unwrap();
    let mut conn = pool.get().unwrap();
    let profiles = Profiles::load(None).unwrap();
    let zip = card();
    println!(
        "a card of {FILES} Tuttnauer records: {:.1} MB zipped, {:.1} MB unpacked; {backend}",
        zip.len() as f64 / 1e6,
        (0..FILES).map(|n| record(n).len()).sum::<usize>() as f64 / 1e6
    );
    let limits = Limits::default();
    // The card as the upload receives it, unpacked as the service unpacks it.
    let unzip = || {
        archive::expand(
            vec![RawFile {
                name: "card.zip".into(),
                bytes: zip.clone(),
            }],
            &limits,
        )
        .unwrap()
    };

    // Parsing alone: unzip and read every record.
    let mut parse = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let files = unzip();
        let mut cycles = 0;
        for f in &files {
            if let parsers::Detection::Read { parsed, .. } = parsers::detect(f, None) {
                cycles += parsed.cycles.len();
            }
        }
        assert_eq!(cycles, FILES);
        parse.push(t.elapsed());
    }

    // The import as the service runs it, into a fresh clinic each run.
    let mut import = Vec::new();
    let mut last = None;
    for run in 0..RUNS {
        let (clinic_id, steriliser) = clinic(
            &mut conn,
            &profiles,
            &format!("{}-{run}", std::process::id()),
        );
        let t = Instant::now();
        let files = unzip();
        let report = usecases::import_files(
            &mut conn,
            &profiles,
            &AuditContext::operator(),
            &clinic_id,
            &steriliser,
            files,
        )
        .unwrap();
        import.push(t.elapsed());
        assert_eq!(report.cycles_recorded, FILES);
        last = Some(clinic_id);
    }

    // The same rows written straight to the database, into another clinic.
    let source = last.unwrap();
    use aseptic::db::schema::{cycle_imports, device_files, imported_cycles};
    let files: Vec<DeviceFileRow> = device_files::table
        .filter(device_files::clinic_id.eq(&source))
        .select(DeviceFileRow::as_select())
        .load(&mut **conn)
        .unwrap();
    let cycles: Vec<ImportedCycleRow> = imported_cycles::table
        .filter(imported_cycles::clinic_id.eq(&source))
        .select(ImportedCycleRow::as_select())
        .load(&mut **conn)
        .unwrap();
    let import_row: aseptic::sterilisation::device_records::ImportRow = cycle_imports::table
        .filter(cycle_imports::clinic_id.eq(&source))
        .select(aseptic::sterilisation::device_records::ImportRow::as_select())
        .first(&mut **conn)
        .unwrap();
    let mut direct = Vec::new();
    for run in 0..RUNS {
        let (clinic_id, steriliser) = clinic(
            &mut conn,
            &profiles,
            &format!("direct-{}-{run}", std::process::id()),
        );
        let t = Instant::now();
        db::write_transaction(&mut conn, |conn| {
            let import_id = db::new_id();
            let mut i = import_row.clone();
            i.id = import_id.clone();
            i.clinic_id = clinic_id.clone();
            i.steriliser_id = steriliser.clone();
            diesel::insert_into(cycle_imports::table)
                .values(&i)
                .execute(conn)?;
            let mut ids = std::collections::HashMap::new();
            for f in &files {
                let mut f = f.clone();
                let id = db::new_id();
                ids.insert(f.id.clone(), id.clone());
                f.id = id;
                f.clinic_id = clinic_id.clone();
                f.steriliser_id = steriliser.clone();
                f.import_id = import_id.clone();
                diesel::insert_into(device_files::table)
                    .values(&f)
                    .execute(conn)?;
            }
            for c in &cycles {
                let mut c = c.clone();
                c.id = db::new_id();
                c.file_id = ids[&c.file_id].clone();
                c.clinic_id = clinic_id.clone();
                c.steriliser_id = steriliser.clone();
                c.import_id = import_id.clone();
                diesel::insert_into(imported_cycles::table)
                    .values(&c)
                    .execute(conn)?;
            }
            Ok::<_, aseptic::error::AppError>(())
        })
        .unwrap();
        direct.push(t.elapsed());
    }
    let (p, i, d) = (median(parse), median(import), median(direct));
    println!("median of {RUNS} runs each:");
    println!(
        "  import through the service's use case: {:>8.1} ms ({:.0} files/s)",
        i.as_secs_f64() * 1e3,
        FILES as f64 / i.as_secs_f64()
    );
    println!(
        "  parsing alone (unzip and read):        {:>8.1} ms",
        p.as_secs_f64() * 1e3
    );
    println!(
        "  the same rows inserted directly:       {:>8.1} ms",
        d.as_secs_f64() * 1e3
    );
    println!(
        "  import / parsing alone:              {:.2}x",
        i.as_secs_f64() / p.as_secs_f64()
    );
    println!(
        "  import / inserting directly:         {:.2}x",
        i.as_secs_f64() / d.as_secs_f64()
    );
    println!(
        "  import / (parsing + inserting):      {:.2}x",
        i.as_secs_f64() / (p + d).as_secs_f64()
    );
    drop(conn);
    drop(pool);
    match cleanup {
        Some((admin, name)) => {
            let mut admin = diesel::PgConnection::establish(&admin).unwrap();
            diesel::sql_query(format!("DROP DATABASE {name}"))
                .execute(&mut admin)
                .unwrap();
        }
        None => {
            let path = url.trim_start_matches("sqlite://");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        }
    }
}
