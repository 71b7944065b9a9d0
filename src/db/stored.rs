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
#[macro_export]
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

/// The error for a stored spelling this version does not know: the database was written by a
/// newer version or by hand, and guessing would misread a compliance record.
pub fn unknown(what: &str, value: &str) -> AppError {
    AppError::internal(format!(
        "the database holds {value:?} as a {what}, which this version does not know"
    ))
}

#[cfg(test)]
mod tests {
    use crate::auth::Role;
    use crate::incidents::model::{FollowUpKind, IncidentKind};
    use crate::jurisdiction::kinds::{CredentialKind, LotKind};
    use crate::sterilisation::model::{SporeResult, SteriliserKind};

    fn round_trips<T: Copy + PartialEq + std::fmt::Debug + serde::Serialize>(
        all: &[T],
        as_db: fn(T) -> &'static str,
        from_db: fn(&str) -> Result<T, crate::error::AppError>,
    ) {
        for v in all {
            assert_eq!(from_db(as_db(*v)).ok(), Some(*v));
            // The stored spelling is the API's spelling.
            assert_eq!(serde_json::to_value(v).ok(), Some(as_db(*v).into()));
        }
    }

    #[test]
    fn every_variant_reads_back_as_itself_and_is_spelled_as_on_the_wire() {
        round_trips(Role::ALL, Role::as_db, Role::from_db);
        round_trips(
            IncidentKind::ALL,
            IncidentKind::as_db,
            IncidentKind::from_db,
        );
        round_trips(
            FollowUpKind::ALL,
            FollowUpKind::as_db,
            FollowUpKind::from_db,
        );
        round_trips(
            CredentialKind::ALL,
            CredentialKind::as_db,
            CredentialKind::from_db,
        );
        round_trips(LotKind::ALL, LotKind::as_db, LotKind::from_db);
        round_trips(SporeResult::ALL, SporeResult::as_db, SporeResult::from_db);
        round_trips(
            SteriliserKind::ALL,
            SteriliserKind::as_db,
            SteriliserKind::from_db,
        );
    }

    #[test]
    fn an_unknown_spelling_is_an_error_that_names_it_not_a_guess() {
        let err = IncidentKind::from_db("needle_stick")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("needle_stick") && e.contains("incident kind")),
            "{err:?}"
        );
        assert!(SteriliserKind::from_db("Pre_Vacuum").is_err());
    }
}
