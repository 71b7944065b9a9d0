//! Closed sets stored as text: each spelling reads back as itself and is the API's spelling; an
//! unknown spelling is an error that names it.

use aseptic::auth::Role;
use aseptic::incidents::model::{FollowUpKind, IncidentKind};
use aseptic::jurisdiction::kinds::{CredentialKind, LotKind};
use aseptic::sterilisation::model::{SporeResult, SteriliserKind};

fn round_trips<T: Copy + PartialEq + std::fmt::Debug + serde::Serialize>(
    all: &[T],
    as_db: fn(T) -> &'static str,
    from_db: fn(&str) -> Result<T, aseptic::error::AppError>,
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
