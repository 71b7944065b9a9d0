//! Reading a period's records a page at a time, so no part of an export (its CSVs or its report)
//! holds a whole period in memory.

use crate::error::AppResult;

/// Rows per query page.
pub const PAGE: i64 = 1000;

/// Reads rows a page at a time: `page(after)` returns up to [`PAGE`] rows following the row whose
/// key is `after` (the first page when `None`); a short page is the last. `each` sees every row.
pub fn for_each_page<T>(
    mut page: impl FnMut(Option<&str>) -> AppResult<Vec<T>>,
    key: impl Fn(&T) -> String,
    mut each: impl FnMut(&T) -> AppResult<()>,
) -> AppResult<()> {
    let mut after: Option<String> = None;
    loop {
        let rows = page(after.as_deref())?;
        for r in &rows {
            each(r)?;
        }
        if (rows.len() as i64) < PAGE {
            return Ok(());
        }
        after = rows.last().map(&key);
    }
}
