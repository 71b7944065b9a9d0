//! Both migration sets: the same migrations, producing the same columns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use aseptic::db::{ConnectionManager, DbConn};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};

fn migration_names(backend: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("up.sql").is_file() && e.path().join("down.sql").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn both_backends_have_the_same_migrations() {
    let sqlite = migration_names("sqlite");
    let postgres = migration_names("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
}

/// (table, column, nullable, coarse type)
type Column = (String, String, bool, &'static str);

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    type_name: String,
    #[diesel(sql_type = Integer)]
    not_null: i32,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

fn coarse(type_name: &str) -> &'static str {
    match type_name.to_lowercase().as_str() {
        "text" => "text",
        "integer" | "bigint" => "integer",
        "boolean" => "bool",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "blob" | "bytea" => "binary",
        "date" => "date",
        "double precision" | "double" | "real" => "float",
        other => panic!("column type {other} is not portable between SQLite and PostgreSQL"),
    }
}

fn columns(conn: &mut DbConn) -> BTreeSet<Column> {
    match conn {
        DbConn::Sqlite(c) => diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS name, p.type AS type_name, p.\"notnull\" AS not_null
             FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '__diesel%'",
        )
        .load::<SqliteColumn>(c)
        .unwrap()
        .into_iter()
        .map(|r| (r.table_name, r.name, r.not_null == 0, coarse(&r.type_name)))
        .collect(),
        DbConn::Postgres(c) => diesel::sql_query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name NOT LIKE '__diesel%'",
        )
        .load::<PgColumn>(c)
        .unwrap()
        .into_iter()
        .map(|r| (r.table_name, r.column_name, r.is_nullable == "YES", coarse(&r.data_type)))
        .collect(),
    }
}

#[test]
fn both_backends_produce_the_same_columns() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("cols.db").display());
    let mut sqlite = ConnectionManager::new(&sqlite_url, 5000)
        .unwrap()
        .connect()
        .unwrap();
    aseptic::db::run_migrations(&mut sqlite).unwrap();
    let sqlite_columns = columns(&mut sqlite);
    assert!(sqlite_columns
        .iter()
        .any(|c| c.0 == "audit_events" && c.1 == "hash"));

    if !common::is_postgres() {
        eprintln!(
            "TEST_DATABASE_URL is not PostgreSQL: the PostgreSQL side runs in the PostgreSQL pass"
        );
        return;
    }
    let (pg_url, admin) = common::fresh_database(dir.path());
    let mut pg = ConnectionManager::new(&pg_url, 5000)
        .unwrap()
        .connect()
        .unwrap();
    aseptic::db::run_migrations(&mut pg).unwrap();
    let pg_columns = columns(&mut pg);
    drop(pg);
    if let Some((admin, name)) = admin {
        common::drop_database(&admin, &name);
    }
    let only_sqlite: Vec<_> = sqlite_columns.difference(&pg_columns).collect();
    let only_pg: Vec<_> = pg_columns.difference(&sqlite_columns).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "only in SQLite: {only_sqlite:?}\nonly in PostgreSQL: {only_pg:?}"
    );
}
