//! Queries on lots and recalls.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{lot_recalls, lot_withdrawals, lots};
use crate::db::DbConn;
use crate::records::{current, standing};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = lots)]
pub struct LotRow {
    pub id: String,
    pub version: i32,
    pub clinic_id: String,
    pub kind: String,
    pub manufacturer: String,
    pub product_name: String,
    pub product_code: Option<String>,
    pub gtin: Option<String>,
    pub lot_number: String,
    pub expiry_date: NaiveDate,
    pub sterilisation_method: String,
    pub supplier: Option<String>,
    pub received_on: NaiveDate,
    pub quantity_received: i32,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub amendment_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = lot_recalls)]
pub struct RecallRow {
    pub lot_id: String,
    pub clinic_id: String,
    pub reason: String,
    pub reference: String,
    pub recalled_by: Option<String>,
    pub recalled_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct LotFilter {
    pub kind: Option<String>,
    pub received_from: Option<NaiveDate>,
    pub received_to: Option<NaiveDate>,
    /// Id of the last lot of the previous page (ids are time-ordered, newest first).
    pub after_id: Option<String>,
    pub limit: i64,
    /// The lots as they stood at this moment (later receipts, amendments, recalls and
    /// withdrawals left out); now when absent.
    pub at: Option<NaiveDateTime>,
}

pub fn insert_lot(conn: &mut DbConn, row: &LotRow) -> QueryResult<()> {
    diesel::insert_into(lots::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_lot(conn: &mut DbConn, clinic_id: &str, id: &str) -> QueryResult<Option<LotRow>> {
    lots::table
        .filter(lots::clinic_id.eq(clinic_id))
        .filter(lots::id.eq(id))
        .filter(current("lots"))
        .select(LotRow::as_select())
        .first(conn)
        .optional()
}

pub fn lot_history(conn: &mut DbConn, clinic_id: &str, id: &str) -> QueryResult<Vec<LotRow>> {
    lots::table
        .filter(lots::clinic_id.eq(clinic_id))
        .filter(lots::id.eq(id))
        .select(LotRow::as_select())
        .order(lots::version.asc())
        .load(conn)
}

pub fn list_lots(conn: &mut DbConn, clinic_id: &str, f: &LotFilter) -> QueryResult<Vec<LotRow>> {
    let mut query = lots::table
        .filter(lots::clinic_id.eq(clinic_id))
        .select(LotRow::as_select())
        .order(lots::id.desc())
        .limit(f.limit)
        .into_boxed();
    query = standing(query, "lots", f.at);
    if let Some(kind) = &f.kind {
        query = query.filter(lots::kind.eq(kind.clone()));
    }
    if let Some(from) = f.received_from {
        query = query.filter(lots::received_on.ge(from));
    }
    if let Some(to) = f.received_to {
        query = query.filter(lots::received_on.lt(to));
    }
    if let Some(after) = &f.after_id {
        query = query.filter(lots::id.lt(after.clone()));
    }
    query.load(conn)
}

/// Whether another current lot has this number for the same manufacturer and product.
pub fn lot_number_taken(
    conn: &mut DbConn,
    clinic_id: &str,
    manufacturer: &str,
    product_name: &str,
    lot_number: &str,
    except_id: Option<&str>,
) -> QueryResult<bool> {
    let mut query = lots::table
        .filter(lots::clinic_id.eq(clinic_id))
        .filter(lots::lot_number.eq(lot_number))
        .filter(lots::manufacturer.eq(manufacturer))
        .filter(lots::product_name.eq(product_name))
        .filter(current("lots"))
        .into_boxed();
    if let Some(id) = except_id {
        query = query.filter(lots::id.ne(id));
    }
    Ok(query.count().get_result::<i64>(conn)? > 0)
}

/// The lot a scanned box refers to: by lot number, and by GTIN when the barcode carries one.
pub fn find_by_number(
    conn: &mut DbConn,
    clinic_id: &str,
    gtin: Option<&str>,
    lot_number: &str,
) -> QueryResult<Option<String>> {
    let mut query = lots::table
        .filter(lots::clinic_id.eq(clinic_id))
        .filter(lots::lot_number.eq(lot_number))
        .filter(current("lots"))
        .select(lots::id)
        .order(lots::id.desc())
        .into_boxed();
    if let Some(gtin) = gtin {
        query = query.filter(lots::gtin.eq(gtin.to_owned()));
    }
    query.first(conn).optional()
}

/// Every current lot with this lot number, narrowed by GTIN or manufacturer where given.
pub fn with_number(
    conn: &mut DbConn,
    clinic_id: &str,
    lot_number: &str,
    gtin: Option<&str>,
    manufacturer: Option<&str>,
) -> QueryResult<Vec<LotRow>> {
    let mut query = lots::table
        .filter(lots::clinic_id.eq(clinic_id))
        .filter(lots::lot_number.eq(lot_number.trim().to_owned()))
        .filter(current("lots"))
        .select(LotRow::as_select())
        .order(lots::id.asc())
        .into_boxed();
    if let Some(gtin) = gtin {
        query = query.filter(lots::gtin.eq(gtin.trim().to_owned()));
    }
    let rows = query.load(conn)?;
    Ok(match manufacturer {
        Some(m) => rows
            .into_iter()
            .filter(|r| r.manufacturer.trim().eq_ignore_ascii_case(m.trim()))
            .collect(),
        None => rows,
    })
}

pub fn insert_recall(conn: &mut DbConn, row: &RecallRow) -> QueryResult<()> {
    diesel::insert_into(lot_recalls::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn recalls_of(
    conn: &mut DbConn,
    clinic_id: &str,
    lot_ids: &[String],
    by: Option<NaiveDateTime>,
) -> QueryResult<Vec<RecallRow>> {
    let mut query = lot_recalls::table
        .filter(lot_recalls::clinic_id.eq(clinic_id))
        .filter(lot_recalls::lot_id.eq_any(lot_ids))
        .select(RecallRow::as_select())
        .into_boxed();
    if let Some(by) = by {
        query = query.filter(lot_recalls::recalled_at.le(by));
    }
    query.load(conn)
}

/// The remaining stock of a lot taken off the shelf: it is no longer in stock, so a recall or
/// expiry no longer asks anything of the clinic.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = lot_withdrawals)]
pub struct WithdrawalRow {
    pub lot_id: String,
    pub clinic_id: String,
    pub reason: String,
    pub withdrawn_by: Option<String>,
    pub withdrawn_at: NaiveDateTime,
}

pub fn insert_withdrawal(conn: &mut DbConn, row: &WithdrawalRow) -> QueryResult<()> {
    diesel::insert_into(lot_withdrawals::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn withdrawals_of(
    conn: &mut DbConn,
    clinic_id: &str,
    lot_ids: &[String],
    by: Option<NaiveDateTime>,
) -> QueryResult<Vec<WithdrawalRow>> {
    let mut query = lot_withdrawals::table
        .filter(lot_withdrawals::clinic_id.eq(clinic_id))
        .filter(lot_withdrawals::lot_id.eq_any(lot_ids))
        .select(WithdrawalRow::as_select())
        .into_boxed();
    if let Some(by) = by {
        query = query.filter(lot_withdrawals::withdrawn_at.le(by));
    }
    query.load(conn)
}

crate::records::versioned_rows!(LotRow);
