//! What every amendable compliance record shares: versions instead of updates, amendments with
//! a reason, a history of changes, and lists paged newest first by a cursor.
//!
//! A record is rows keyed by (id, version) that are never updated; reads pick the highest
//! version, history reads them all.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::sql_types::{Bool, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::audit::NewEvent;
use crate::db::to_utc;
use crate::error::{AppError, AppResult, FieldError};

/// Keeps only the current (highest) version of each record of `table`.
pub fn current(table: &'static str) -> Standing {
    current_by(table, "id")
}

/// `current` for a table whose records are keyed by another column (a spore test's result
/// versions are keyed by the test).
pub fn current_by(table: &'static str, key: &'static str) -> Standing {
    Standing {
        table,
        key,
        at: None,
    }
}

/// Keeps, of each record of `table`, the version that was current at `at`: the highest version
/// recorded at or before it. Records first recorded after `at` drop out.
pub fn as_of(table: &'static str, at: NaiveDateTime) -> Standing {
    as_of_by(table, "id", at)
}

/// `as_of` for a table whose records are keyed by another column.
pub fn as_of_by(table: &'static str, key: &'static str, at: NaiveDateTime) -> Standing {
    Standing {
        table,
        key,
        at: Some(diesel::expression::AsExpression::<Timestamp>::as_expression(at)),
    }
}

/// Keeps each record of `table` as it stands now or, given a moment, as it stood then: a list
/// read "as of" a past date shows what an inspector would have found on that day.
pub fn standing<Q>(query: Q, table: &'static str, at: Option<NaiveDateTime>) -> Q
where
    Q: diesel::query_dsl::methods::FilterDsl<Standing, Output = Q>,
{
    let standing = match at {
        None => current(table),
        Some(at) => as_of(table, at),
    };
    diesel::query_dsl::methods::FilterDsl::filter(query, standing)
}

/// The version filter [`current`] and [`as_of`] give. Its SQL depends only on the table, the key
/// and whether a moment is given (the moment is a bound parameter), so the databases prepare it
/// once and diesel keeps the prepared statement.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    table: &'static str,
    key: &'static str,
    at: Option<Moment>,
}

type Moment = <NaiveDateTime as diesel::expression::AsExpression<Timestamp>>::Expression;

impl diesel::Expression for Standing {
    type SqlType = Bool;
}

impl<QS> diesel::AppearsOnTable<QS> for Standing {}

impl<QS> diesel::SelectableExpression<QS> for Standing {}

impl<GB> diesel::expression::ValidGrouping<GB> for Standing {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl diesel::query_builder::QueryId for Standing {
    type QueryId = ();
    // The SQL differs by table, so statements are cached by their text, not by type.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> diesel::query_builder::QueryFragment<DB> for Standing
where
    DB: diesel::backend::Backend,
    Moment: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        let (table, key) = (self.table, self.key);
        out.push_sql(table);
        out.push_sql(".version = (SELECT MAX(v.version) FROM ");
        out.push_sql(table);
        out.push_sql(" v WHERE v.");
        out.push_sql(key);
        out.push_sql(" = ");
        out.push_sql(table);
        out.push_sql(".");
        out.push_sql(key);
        if let Some(at) = &self.at {
            out.push_sql(" AND v.recorded_at <= ");
            at.walk_ast(out.reborrow())?;
        }
        out.push_sql(")");
        Ok(())
    }
}

/// A position in a list ordered newest first by a time and then by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeCursor {
    pub at: NaiveDateTime,
    pub id: String,
}

impl TimeCursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.at.and_utc().timestamp_micros(), self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (micros, id) = s.split_once('_')?;
        let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
        (!id.is_empty()).then(|| Self {
            at,
            id: id.to_owned(),
        })
    }
}

/// One version of a record: who wrote it, when, why, and what it changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionView {
    pub version: i32,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
    /// The amendment's reason; none for the original record.
    pub reason: Option<String>,
    /// Field → `{"from": .., "to": ..}`; empty for the original record.
    #[schema(value_type = Object)]
    pub changes: Value,
}

/// An amendment: the corrected fields and why.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendmentRequest {
    /// Why the record was wrong; kept in its history and the audit trail.
    pub reason: String,
    /// The fields to correct, with their corrected values (at least one).
    #[schema(value_type = Object)]
    pub changes: Value,
}

impl AmendmentRequest {
    pub fn reason(&self) -> AppResult<String> {
        let reason = self.reason.trim();
        if reason.is_empty() {
            return Err(AppError::invalid(
                "reason",
                "is required: say why the record was wrong",
            ));
        }
        if reason.chars().count() > 2000 {
            return Err(AppError::invalid(
                "reason",
                "must be at most 2000 characters",
            ));
        }
        Ok(reason.to_owned())
    }
}

/// Applies `changes` to the current fields and reads the result back as `T`, naming any field
/// that is unknown, fixed, or of the wrong type as `changes.<field>`.
pub fn apply_changes<T: Serialize + DeserializeOwned>(
    current: &T,
    changes: &Value,
    fixed: &[&str],
) -> AppResult<T> {
    let Value::Object(changes) = changes else {
        return Err(AppError::invalid(
            "changes",
            "must be an object of field: corrected value",
        ));
    };
    if changes.is_empty() {
        return Err(AppError::invalid(
            "changes",
            "name at least one field to correct",
        ));
    }
    let mut merged = serde_json::to_value(current).map_err(AppError::internal)?;
    let Value::Object(fields) = &mut merged else {
        return Err(AppError::internal("record is not an object"));
    };
    for (key, value) in changes {
        if fixed.contains(&key.as_str()) {
            return Err(AppError::invalid(
                format!("changes.{key}"),
                "cannot be amended",
            ));
        }
        if !fields.contains_key(key) {
            return Err(AppError::invalid(
                format!("changes.{key}"),
                "is not a field of this record",
            ));
        }
        fields.insert(key.clone(), value.clone());
    }
    serde_path_to_error::deserialize(merged).map_err(|e| {
        let path = e.path().to_string();
        AppError::invalid(format!("changes.{path}"), e.into_inner().to_string())
    })
}

/// One stored version: number, when, by whom, why, and its fields.
pub type Version<T> = (i32, NaiveDateTime, Option<String>, Option<String>, T);

/// A row of an amendable record: every version carries its number, when and by whom it was
/// recorded, and the reason for the amendment.
pub trait VersionedRow {
    fn version_of(&self) -> (i32, NaiveDateTime, Option<String>, Option<String>);
}

/// Implements [`VersionedRow`] for rows with the usual `version`, `recorded_at`, `recorded_by`
/// and `amendment_reason` columns.
macro_rules! versioned_rows {
    ($($row:ty),+ $(,)?) => {
        $(impl $crate::records::VersionedRow for $row {
            fn version_of(&self) -> (i32, chrono::NaiveDateTime, Option<String>, Option<String>) {
                (
                    self.version,
                    self.recorded_at,
                    self.recorded_by.clone(),
                    self.amendment_reason.clone(),
                )
            }
        })+
    };
}
pub(crate) use versioned_rows;

/// The history of a record from its stored versions, oldest first, each with what changed.
pub fn history_of<R: VersionedRow, T: Serialize>(
    versions: &[R],
    fields: impl Fn(&R) -> AppResult<T>,
) -> AppResult<Vec<VersionView>> {
    let versions = versions
        .iter()
        .map(|r| {
            let (version, at, by, reason) = r.version_of();
            Ok((version, at, by, reason, fields(r)?))
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(history(versions))
}

pub fn history<T: Serialize>(versions: Vec<Version<T>>) -> Vec<VersionView> {
    let mut previous: Option<Value> = None;
    versions
        .into_iter()
        .map(|(version, recorded_at, recorded_by, reason, fields)| {
            let now = serde_json::to_value(&fields).unwrap_or(Value::Null);
            let mut changes = Map::new();
            if let (Some(Value::Object(before)), Value::Object(after)) = (&previous, &now) {
                for (k, v) in after {
                    let old = before.get(k).cloned().unwrap_or(Value::Null);
                    if &old != v {
                        changes.insert(k.clone(), json!({"from": old, "to": v}));
                    }
                }
            }
            previous = Some(now);
            VersionView {
                version,
                recorded_at: to_utc(recorded_at),
                recorded_by,
                reason,
                changes: Value::Object(changes),
            }
        })
        .collect()
}

pub fn not_found(field: &str, what: &str) -> AppError {
    AppError::NotFoundField(FieldError::new(
        field,
        format!("no such {what} in this clinic"),
    ))
}

pub fn validated(errors: Vec<FieldError>) -> AppResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

pub fn event(
    action: &'static str,
    kind: &'static str,
    id: &str,
    payload: Value,
    reason: Option<String>,
) -> NewEvent {
    NewEvent {
        action,
        entity_kind: kind,
        entity_id: id.to_owned(),
        payload,
        reason,
    }
}

pub fn payload<T: Serialize>(view: &T) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// Cuts `rows` (fetched with one extra) to `limit` and returns the cursor of the next page.
pub fn next_cursor<T>(
    rows: &mut Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> TimeCursor,
) -> Option<String> {
    cut_page(rows, limit, |r| cursor(r).encode())
}

/// Cuts `rows` (fetched with one extra) to `limit`; the extra row's presence means another page,
/// whose cursor is `cursor` of the last row kept.
pub fn cut_page<T>(rows: &mut Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Option<String> {
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(cursor)
    } else {
        None
    }
}
