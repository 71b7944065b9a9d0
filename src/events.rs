//! What a use case reports having done, for whatever must follow from it (a look-back record, a
//! report to the authority). Use cases never call into those consequences themselves: they return
//! these events, and `reactions` acts on them in the same transaction.

/// Something that happened which other parts of the service react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    /// A valid spore test read positive: the steriliser is quarantined. `summary` says so in
    /// words, for the authority.
    SporeTestPositive {
        clinic_id: String,
        spore_test_id: String,
        summary: String,
    },
    /// A lot was recalled. `summary` says which and why, for the authority.
    LotRecalled {
        clinic_id: String,
        lot_id: String,
        summary: String,
    },
}

/// A use case's answer and the events it caused.
#[derive(Debug)]
pub struct WithEvents<T> {
    pub view: T,
    pub events: Vec<DomainEvent>,
}
