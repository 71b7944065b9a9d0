//! The query-string extractor: every wrong parameter named at once, in plain words, and only
//! after the caller is authorised.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// A query string read into `T`. Like [`super::ValidJson`], the extractor never fails: a
/// handler asks for the verdict with [`ValidQuery::into_inner`] after it has authorised the
/// caller, so a caller who should hear 401 or 403 learns nothing from a 422.
pub struct ValidQuery<T>(Result<T, AppError>);

impl<T> ValidQuery<T> {
    /// The parameters, or why they were refused. Call it after authorisation.
    pub fn into_inner(self) -> Result<T, AppError> {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ValidQuery<T> {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(ValidQuery(crate::input::from_query(req.query_string()))))
    }
}

/// Two readings of one query string (the page and the filters), with every wrong parameter of
/// both named at once.
pub fn both<A, B>(a: ValidQuery<A>, b: ValidQuery<B>) -> Result<(A, B), AppError> {
    match (a.0, b.0) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(AppError::Validation(mut x)), Err(AppError::Validation(y))) => {
            for e in y {
                if !x.iter().any(|seen| seen.field == e.field) {
                    x.push(e);
                }
            }
            Err(AppError::Validation(x))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// A list's `at`: the records as they stood at that moment. A moment still to come has nothing
/// to show yet, so it is refused rather than read as now.
pub fn standing_at(
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<chrono::NaiveDateTime>, AppError> {
    match at {
        Some(t) if t > crate::clock::now() => Err(AppError::invalid(
            "at",
            "is in the future: records can be read as they stand now or as they stood at a past moment",
        )),
        other => Ok(other.map(|t| crate::db::truncate(t.naive_utc()))),
    }
}
