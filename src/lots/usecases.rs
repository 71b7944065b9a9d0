//! Lot use cases: receive, correct, recall, read; each write with its audit event.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::*;
use super::store::{self, LotFilter, LotRow, RecallRow, WithdrawalRow};
use crate::audit::{self, AuditContext};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::events::{DomainEvent, WithEvents};
use crate::records::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecallView {
    pub reason: String,
    /// The manufacturer's notice or the regulator's recall number.
    pub reference: String,
    pub recalled_by: Option<String>,
    pub recalled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LotView {
    pub id: String,
    pub version: i32,
    #[serde(flatten)]
    pub fields: LotInput,
    /// Whether the lot may be used on a client today.
    pub status: LotStatus,
    pub recall: Option<RecallView>,
    /// When the remaining stock was taken off the shelf, and why.
    pub withdrawal: Option<WithdrawalView>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<VersionView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalView {
    pub reason: String,
    pub withdrawn_by: Option<String>,
    pub withdrawn_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    /// What happened to the stock, e.g. "returned to the supplier under recall FSN-2026-11".
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallRequest {
    pub reason: String,
    /// The manufacturer's notice or the regulator's recall number.
    pub reference: String,
}

fn lot_fields(row: &LotRow) -> AppResult<LotInput> {
    Ok(LotInput {
        kind: LotKind::from_db(&row.kind)?,
        manufacturer: row.manufacturer.clone(),
        product_name: row.product_name.clone(),
        product_code: row.product_code.clone(),
        gtin: row.gtin.clone(),
        lot_number: row.lot_number.clone(),
        expiry_date: row.expiry_date,
        sterilisation_method: SterilisationMethod::from_db(&row.sterilisation_method)?,
        supplier: row.supplier.clone(),
        received_on: row.received_on,
        quantity_received: row.quantity_received,
    })
}

fn lot_row(
    id: String,
    version: i32,
    clinic_id: &str,
    f: &LotInput,
    ctx: &AuditContext,
    reason: Option<String>,
) -> LotRow {
    LotRow {
        id,
        version,
        clinic_id: clinic_id.to_owned(),
        kind: f.kind.as_db().to_owned(),
        manufacturer: f.manufacturer.clone(),
        product_name: f.product_name.clone(),
        product_code: f.product_code.clone(),
        gtin: f.gtin.clone(),
        lot_number: f.lot_number.clone(),
        expiry_date: f.expiry_date,
        sterilisation_method: f.sterilisation_method.as_db().to_owned(),
        supplier: f.supplier.clone(),
        received_on: f.received_on,
        quantity_received: f.quantity_received,
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    }
}

/// What is known of a lot's stock beyond its record: a recall, and the stock's withdrawal.
#[derive(Default)]
struct Stock<'a> {
    recall: Option<&'a RecallRow>,
    withdrawal: Option<&'a WithdrawalRow>,
}

fn stock_of<'a>(recalls: &'a [RecallRow], withdrawals: &'a [WithdrawalRow], id: &str) -> Stock<'a> {
    Stock {
        recall: recalls.iter().find(|r| r.lot_id == id),
        withdrawal: withdrawals.iter().find(|w| w.lot_id == id),
    }
}

fn lot_view(row: &LotRow, stock: Stock<'_>, today: NaiveDate) -> AppResult<LotView> {
    let Stock { recall, withdrawal } = stock;
    Ok(LotView {
        id: row.id.clone(),
        version: row.version,
        fields: lot_fields(row)?,
        status: if withdrawal.is_some() {
            LotStatus::Withdrawn
        } else {
            lot_status(row.expiry_date, recall.is_some(), today)
        },
        recall: recall.map(|r| RecallView {
            reason: r.reason.clone(),
            reference: r.reference.clone(),
            recalled_by: r.recalled_by.clone(),
            recalled_at: to_utc(r.recalled_at),
        }),
        withdrawal: withdrawal.map(|w| WithdrawalView {
            reason: w.reason.clone(),
            withdrawn_by: w.withdrawn_by.clone(),
            withdrawn_at: to_utc(w.withdrawn_at),
        }),
        recorded_at: to_utc(row.recorded_at),
        recorded_by: row.recorded_by.clone(),
        history: Vec::new(),
    })
}

fn duplicate(f: &LotInput) -> AppError {
    AppError::Conflict(format!(
        "lot_number: lot {} of {} {} is already recorded",
        f.lot_number, f.manufacturer, f.product_name
    ))
}

pub fn receive_lot(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    mut input: LotInput,
) -> AppResult<LotView> {
    input.normalise();
    let today = crate::clinics::context::today(conn, clinic_id)?;
    validated(input.validate(today))?;
    audit::audited(conn, clinic_id, |conn| {
        if store::lot_number_taken(
            conn,
            clinic_id,
            &input.manufacturer,
            &input.product_name,
            &input.lot_number,
            None,
        )? {
            return Err(duplicate(&input));
        }
        let row = lot_row(db::new_id(), 1, clinic_id, &input, ctx, None);
        store::insert_lot(conn, &row)?;
        let view = lot_view(&row, Stock::default(), today)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event("lot.received", "lot", &row.id, payload(&view), None),
        )?;
        Ok(view)
    })
}

pub fn amend_lot(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    req: &AmendmentRequest,
) -> AppResult<LotView> {
    let reason = req.reason()?;
    let today = crate::clinics::context::today(conn, clinic_id)?;
    audit::audited(conn, clinic_id, |conn| {
        let current = store::find_lot(conn, clinic_id, id)?.ok_or(AppError::NoSuch("lot"))?;
        let mut fields: LotInput = apply_changes(&lot_fields(&current)?, &req.changes, &[])?;
        fields.normalise();
        validated(fields.validate(today))?;
        if store::lot_number_taken(
            conn,
            clinic_id,
            &fields.manufacturer,
            &fields.product_name,
            &fields.lot_number,
            Some(id),
        )? {
            return Err(duplicate(&fields));
        }
        let row = lot_row(
            id.to_owned(),
            current.version + 1,
            clinic_id,
            &fields,
            ctx,
            Some(reason.clone()),
        );
        store::insert_lot(conn, &row)?;
        let ids = [id.to_owned()];
        let (recalls, withdrawals) = (
            store::recalls_of(conn, clinic_id, &ids, None)?,
            store::withdrawals_of(conn, clinic_id, &ids, None)?,
        );
        let view = lot_view(&row, stock_of(&recalls, &withdrawals, id), today)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event("lot.amended", "lot", id, payload(&view), Some(reason)),
        )?;
        Ok(view)
    })
}

/// Recalls a lot: from now on it cannot be used in a session. A lot is recalled once.
/// Reports `LotRecalled`; run it through `reactions::run` so its look-back and authority report
/// land in the same transaction.
pub fn recall_lot(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    req: &RecallRequest,
) -> AppResult<WithEvents<LotView>> {
    let (reason, reference) = (
        req.reason.trim().to_owned(),
        req.reference.trim().to_owned(),
    );
    let mut errors = Vec::new();
    for (field, value) in [("reason", &reason), ("reference", &reference)] {
        if value.is_empty() {
            errors.push(crate::error::FieldError::new(field, "is required"));
        } else if value.chars().count() > 2000 {
            errors.push(crate::error::FieldError::new(
                field,
                "must be at most 2000 characters",
            ));
        }
    }
    validated(errors)?;
    audit::audited(conn, clinic_id, |conn| {
        let row = store::find_lot(conn, clinic_id, id)?.ok_or(AppError::NoSuch("lot"))?;
        if !store::recalls_of(conn, clinic_id, &[id.to_owned()], None)?.is_empty() {
            return Err(AppError::Conflict("this lot is already recalled".into()));
        }
        let recall = RecallRow {
            lot_id: id.to_owned(),
            clinic_id: clinic_id.to_owned(),
            reason: reason.clone(),
            reference,
            recalled_by: ctx.actor.id().map(str::to_owned),
            recalled_at: db::now(),
        };
        store::insert_recall(conn, &recall)?;
        let withdrawals = store::withdrawals_of(conn, clinic_id, &[id.to_owned()], None)?;
        let today = crate::clinics::context::today(conn, clinic_id)?;
        let stock = Stock {
            recall: Some(&recall),
            withdrawal: withdrawals.first(),
        };
        let view = lot_view(&row, stock, today)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event("lot.recalled", "lot", id, payload(&view), Some(reason)),
        )?;
        let summary = format!(
            "{} {} lot {} (received {}, expires {}) was recalled: {} (reference {}).",
            row.manufacturer,
            row.product_name,
            row.lot_number,
            row.received_on,
            row.expiry_date,
            recall.reason,
            recall.reference
        );
        Ok(WithEvents {
            view,
            events: vec![DomainEvent::LotRecalled {
                clinic_id: clinic_id.to_owned(),
                lot_id: id.to_owned(),
                summary,
            }],
        })
    })
}

pub fn get_lot(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<LotView> {
    let row = store::find_lot(conn, clinic_id, id)?.ok_or(AppError::NoSuch("lot"))?;
    let ids = [id.to_owned()];
    let (recalls, withdrawals) = (
        store::recalls_of(conn, clinic_id, &ids, None)?,
        store::withdrawals_of(conn, clinic_id, &ids, None)?,
    );
    let today = crate::clinics::context::today(conn, clinic_id)?;
    let mut view = lot_view(&row, stock_of(&recalls, &withdrawals, id), today)?;
    view.history = history_of(&store::lot_history(conn, clinic_id, id)?, lot_fields)?;
    Ok(view)
}

pub fn list_lots(
    conn: &mut DbConn,
    clinic_id: &str,
    filter: &LotFilter,
) -> AppResult<(Vec<LotView>, Option<String>)> {
    let mut rows = store::list_lots(
        conn,
        clinic_id,
        &LotFilter {
            limit: filter.limit + 1,
            ..filter.clone()
        },
    )?;
    let next = cut_page(&mut rows, filter.limit, |r| r.id.clone());
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let recalls = store::recalls_of(conn, clinic_id, &ids, filter.at)?;
    let withdrawals = store::withdrawals_of(conn, clinic_id, &ids, filter.at)?;
    let today = crate::clinics::context::day_at(conn, clinic_id, filter.at)?;
    Ok((
        rows.iter()
            .map(|r| lot_view(r, stock_of(&recalls, &withdrawals, &r.id), today))
            .collect::<AppResult<_>>()?,
        next,
    ))
}

/// Records that the lot's remaining stock was taken off the shelf (returned or destroyed): a
/// recalled or expired lot then asks nothing more of the clinic, and it can no longer be used.
pub fn withdraw_lot(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    req: &WithdrawalRequest,
) -> AppResult<LotView> {
    let reason = req.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid(
            "reason",
            "is required: say what happened to the stock",
        ));
    }
    if reason.chars().count() > 2000 {
        return Err(AppError::invalid(
            "reason",
            "must be at most 2000 characters",
        ));
    }
    audit::audited(conn, clinic_id, |conn| {
        let row = store::find_lot(conn, clinic_id, id)?.ok_or(AppError::NoSuch("lot"))?;
        let ids = [id.to_owned()];
        if !store::withdrawals_of(conn, clinic_id, &ids, None)?.is_empty() {
            return Err(AppError::Conflict(
                "this lot's stock is already withdrawn".into(),
            ));
        }
        let withdrawal = WithdrawalRow {
            lot_id: id.to_owned(),
            clinic_id: clinic_id.to_owned(),
            reason: reason.clone(),
            withdrawn_by: ctx.actor.id().map(str::to_owned),
            withdrawn_at: db::now(),
        };
        store::insert_withdrawal(conn, &withdrawal)?;
        let recalls = store::recalls_of(conn, clinic_id, &ids, None)?;
        let today = crate::clinics::context::today(conn, clinic_id)?;
        let stock = Stock {
            recall: recalls.first(),
            withdrawal: Some(&withdrawal),
        };
        let view = lot_view(&row, stock, today)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event("lot.withdrawn", "lot", id, payload(&view), Some(reason)),
        )?;
        Ok(view)
    })
}

/// How someone at the station names a lot: its id, the lot number printed on the box (with the
/// manufacturer or GTIN where two products share a number), or the GS1 text a scanner types.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, utoipa::ToSchema)]
pub struct LotReference {
    pub lot_id: Option<String>,
    pub lot_number: Option<String>,
    pub manufacturer: Option<String>,
    pub gtin: Option<String>,
    /// What the scanner typed from the box (GS1-128 or DataMatrix text).
    pub barcode: Option<String>,
}

/// The id of the lot a reference names, or an error on `field` that says what to give.
pub fn resolve(
    conn: &mut DbConn,
    clinic_id: &str,
    reference: &LotReference,
    field: &str,
) -> AppResult<String> {
    let given = [
        reference.lot_id.is_some(),
        reference.lot_number.is_some(),
        reference.barcode.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(AppError::invalid(
            field,
            "name the lot one way: its lot_id, its lot_number (with manufacturer or gtin where needed), or the scanned barcode",
        ));
    }
    if let Some(id) = &reference.lot_id {
        return match store::find_lot(conn, clinic_id, id)? {
            Some(_) => Ok(id.clone()),
            None => Err(crate::records::not_found(field, "lot")),
        };
    }
    let (number, gtin) = match (&reference.barcode, &reference.lot_number) {
        (Some(barcode), _) => {
            let today = crate::clinics::context::today(conn, clinic_id)?;
            let scan = super::gs1::parse(barcode, today)
                .map_err(|e| AppError::invalid(field, e.to_string()))?;
            let Some(lot) = scan.lot else {
                return Err(AppError::invalid(
                    field,
                    "the scanned code holds no lot number (AI 10)",
                ));
            };
            (lot, scan.gtin)
        }
        (None, Some(number)) => (number.clone(), reference.gtin.clone()),
        (None, None) => return Err(AppError::invalid(field, "name the lot")),
    };
    let rows = store::with_number(
        conn,
        clinic_id,
        &number,
        gtin.as_deref(),
        reference.manufacturer.as_deref(),
    )?;
    match rows.as_slice() {
        [] => Err(crate::records::not_found(field, "lot with this lot number")),
        [one] => Ok(one.id.clone()),
        several => Err(AppError::invalid(
            field,
            format!(
                "lot number {number} is recorded for {} products ({}): give the manufacturer or the GTIN too, or scan the box",
                several.len(),
                several
                    .iter()
                    .map(|r| format!("{} by {}", r.product_name, r.manufacturer))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )),
    }
}

/// A checklist answer that names a lot: its id, its lot number, or the scanned GS1 text.
pub fn resolve_text(
    conn: &mut DbConn,
    clinic_id: &str,
    text: &str,
    field: &str,
) -> AppResult<String> {
    let text = text.trim();
    if store::find_lot(conn, clinic_id, text)?.is_some() {
        return Ok(text.to_owned());
    }
    resolve(conn, clinic_id, &reference_of_text(text), field)
}

/// What a person typed or scanned into a lot field: the GS1 text of a box's barcode, or the lot
/// number printed on it.
pub fn reference_of_text(text: &str) -> LotReference {
    let text = text.trim();
    // GS1 text starts with an application identifier: (01)… or 01 and 14 digits.
    let scanned = text.starts_with('(')
        || text.starts_with('\u{1d}')
        || (text.len() > 16
            && text.starts_with("01")
            && text.as_bytes()[2..16].iter().all(u8::is_ascii_digit));
    if scanned {
        LotReference {
            barcode: Some(text.to_owned()),
            ..LotReference::default()
        }
    } else {
        LotReference {
            lot_number: Some(text.to_owned()),
            ..LotReference::default()
        }
    }
}
