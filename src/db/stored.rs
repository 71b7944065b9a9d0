//! Closed sets kept in text columns. Each enum's stored spellings are written once, in its
//! `stored_as!` list; both directions are generated from that list, so a spelling cannot be
//! added to one direction and forgotten in the other. Reading a spelling this version does not
//! know is an error that names it: a record is never quietly read as some other kind.

use crate::error::AppError;

/// Declares how each variant of a closed set is spelled in the database (and, since the API
/// uses the same snake_case words, on the wire).
///
/// ```ignore
/// stored_as!(Role, "role", { Owner => "owner", Technician => "technician" });
/// ```
macro_rules! stored_as {
    ($ty:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The spelling kept in the database.
            pub fn as_db(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }

            /// The variant a stored spelling names; an unknown spelling is an error.
            pub fn from_db(value: &str) -> Result<Self, $crate::error::AppError> {
                match value {
                    $($text => Ok($ty::$variant),)+
                    other => Err($crate::db::stored::unknown($what, other)),
                }
            }
        }
    };
}
pub(crate) use stored_as;

/// The error for a stored spelling this version does not know: the database was written by a
/// newer version or by hand, and guessing would misread a compliance record.
pub fn unknown(what: &str, value: &str) -> AppError {
    AppError::internal(format!(
        "the database holds {value:?} as a {what}, which this version does not know"
    ))
}
