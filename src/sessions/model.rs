//! Session inputs and the start rule: every reason a session may not start, at once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::checklists::model::{completes, ChecklistItem};
use crate::credentials::model::Eligibility;
use crate::error::FieldError;
use crate::lots::model::LotStatus;
use crate::sterilisation::model::PackState;

/// Where a session stands: derived from whether it was started and completed, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Booked: no start recorded yet.
    Planned,
    /// Started (setup checked and supplies recorded), not yet completed.
    InProgress,
    Completed,
}

impl SessionState {
    pub fn of(started: bool, completed: bool) -> Self {
        match (started, completed) {
            (_, true) => Self::Completed,
            (true, false) => Self::InProgress,
            (false, false) => Self::Planned,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionInput {
    pub client_id: String,
    /// Who works on the client; defaults to the caller.
    pub technician_id: Option<String>,
    pub station: String,
    /// E.g. "SMP session 2 of 3, crown".
    pub procedure: String,
    pub planned_at: DateTime<Utc>,
    /// The checklist template to run; defaults to the clinic's newest.
    pub checklist_id: Option<String>,
}

impl SessionInput {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (field, value) in [("station", &self.station), ("procedure", &self.procedure)] {
            if value.trim().is_empty() {
                errors.push(FieldError::new(field, "is required"));
            } else if value.chars().count() > 200 {
                errors.push(FieldError::new(field, "must be at most 200 characters"));
            }
        }
        errors
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub item_key: String,
    /// `true`/`false` for a tick, a number, a lot id, or text.
    #[schema(value_type = Object)]
    pub value: Value,
    /// When the item was done (defaults to now).
    pub answered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswersInput {
    #[schema(min_items = 1)]
    pub answers: Vec<Answer>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackUse {
    /// The code on the pack's label.
    pub code: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackRemoval {
    /// The code on the pack's label.
    pub code: String,
    /// Why it is set aside, e.g. "its load is quarantined; sent for reprocessing".
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LotUse {
    /// The lot's id; or give `lot_number` or `barcode` instead.
    pub lot_id: Option<String>,
    /// The lot number printed on the box.
    pub lot_number: Option<String>,
    /// With `lot_number`, where two products share the number.
    pub manufacturer: Option<String>,
    /// With `lot_number`, where two products share the number.
    pub gtin: Option<String>,
    /// What the scanner typed from the box (GS1); the lot is found by GTIN and lot number.
    pub barcode: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInput {
    /// An owner may start despite refusals, with a written reason that stays on the session.
    pub override_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteInput {
    pub notes: Option<String>,
}

/// Clients must be adults unless a jurisdiction's minor rules apply (not modelled yet).
/// The profile's minimum client age, and whether no one may start a session below it.
#[derive(Debug, Clone, PartialEq)]
pub struct MinimumAge {
    pub years: i32,
    pub absolute: bool,
    pub source: String,
}

/// A pack in the session as the start rule sees it.
#[derive(Debug, Clone)]
pub struct PackFact {
    pub code: String,
    /// Where it came from, as a person finds it: "load 1201 of W&H Lisa 500 (LS-0042)".
    pub from: String,
    pub state: PackState,
    pub reason: String,
    /// Its steriliser is quarantined now.
    pub quarantined: bool,
}

/// What the start rule looks at.
#[derive(Debug, Clone)]
pub struct StartFacts {
    pub items: Vec<ChecklistItem>,
    /// The latest answer to each item.
    pub answers: HashMap<String, Value>,
    pub packs: Vec<PackFact>,
    /// Id, a label, and status today.
    pub lots: Vec<(String, String, LotStatus)>,
    pub eligibility: Eligibility,
    pub blocked_by: Option<String>,
    pub client_age: i32,
    pub minimum_age: Option<MinimumAge>,
    /// Lot kinds the jurisdiction requires on every session and this one lacks.
    pub missing_lot_kinds: Vec<crate::lots::model::LotKind>,
}

/// Every reason the session may not start, each naming what is wrong.
pub fn refusals(f: &StartFacts) -> Vec<FieldError> {
    let mut out = Vec::new();
    for item in f.items.iter().filter(|i| i.required) {
        match f.answers.get(&item.key) {
            Some(value) if completes(item, value) => {}
            Some(_) => out.push(FieldError::new(
                format!("checklist.{}", item.key),
                format!("\"{}\" is answered but not done", item.text),
            )),
            None => out.push(FieldError::new(
                format!("checklist.{}", item.key),
                format!("\"{}\" is not answered", item.text),
            )),
        }
    }
    for p in &f.packs {
        let (code, from) = (&p.code, &p.from);
        if p.state != PackState::Released {
            let state = serde_json::to_value(p.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let advice = match p.state {
                PackState::Quarantined => "Do not use it; set it aside for reprocessing.",
                PackState::Used => "Take another pack.",
                _ => "Do not use it; take another pack.",
            };
            let reason = p.reason.trim_end_matches(": reprocess it");
            out.push(FieldError::new(
                format!("packs.{code}"),
                format!("Pack {code} comes from {from} and is {state}: {reason}. {advice}"),
            ));
        }
        if p.quarantined {
            out.push(FieldError::new(
                format!("packs.{code}"),
                format!(
                    "Pack {code} comes from {from}, whose steriliser is quarantined after a \
                     positive spore test. Do not use it; set it aside for reprocessing."
                ),
            ));
        }
    }
    for kind in &f.missing_lot_kinds {
        out.push(FieldError::new(
            "lots",
            format!(
                "no {} is recorded: the jurisdiction requires one on every session",
                kind.label()
            ),
        ));
    }
    for (id, label, status) in &f.lots {
        match status {
            LotStatus::Usable => {}
            LotStatus::Expired => out.push(FieldError::new(
                format!("lots.{id}"),
                format!("{label} is expired"),
            )),
            LotStatus::Withdrawn => out.push(FieldError::new(
                format!("lots.{id}"),
                format!("{label} was withdrawn from stock"),
            )),
            LotStatus::Recalled => out.push(FieldError::new(
                format!("lots.{id}"),
                format!("{label} is recalled"),
            )),
        }
    }
    if let Some(blocked) = &f.blocked_by {
        out.push(FieldError::new("technician", blocked.clone()));
    }
    for reason in &f.eligibility.reasons {
        out.push(FieldError::new("technician", reason.message.clone()));
    }
    out.extend(absolute_refusals(f));
    if let Some(min) = f.minimum_age.as_ref().filter(|m| !m.absolute) {
        if f.client_age < min.years {
            out.push(FieldError::new(
                "client",
                format!(
                    "the client is {} (under {}); an owner may start only under the exception the jurisdiction allows ({})",
                    f.client_age, min.years, min.source
                ),
            ));
        }
    }
    out
}

/// The refusals no one may override: a client under an absolute minimum age.
pub fn absolute_refusals(f: &StartFacts) -> Vec<FieldError> {
    match f.minimum_age.as_ref().filter(|m| m.absolute) {
        Some(min) if f.client_age < min.years => vec![FieldError::new(
            "client",
            format!(
                "the client is {} (under {}): no one may start this session ({})",
                f.client_age, min.years, min.source
            ),
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checklists::model::default_template;
    use serde_json::json;

    fn facts() -> StartFacts {
        let items = default_template().items;
        let answers = items
            .iter()
            .map(|i| {
                let v = match i.answer {
                    crate::checklists::model::AnswerKind::Tick => json!(true),
                    crate::checklists::model::AnswerKind::Number => json!(60),
                    _ => json!("x"),
                };
                (i.key.clone(), v)
            })
            .collect();
        StartFacts {
            items,
            answers,
            packs: vec![PackFact {
                code: "ABC-123".into(),
                from: "load 7 of Test Clave (SN-1)".into(),
                state: PackState::Released,
                reason: "ok".into(),
                quarantined: false,
            }],
            lots: vec![("lot1".into(), "lot L1".into(), LotStatus::Usable)],
            eligibility: Eligibility {
                eligible: true,
                reasons: vec![],
                warnings: vec![],
            },
            blocked_by: None,
            client_age: 30,
            minimum_age: Some(MinimumAge {
                years: 18,
                absolute: false,
                source: "a source".into(),
            }),
            missing_lot_kinds: vec![],
        }
    }

    #[test]
    fn a_ready_session_has_no_refusals() {
        assert!(refusals(&facts()).is_empty());
    }

    #[test]
    fn an_absolute_minimum_age_cannot_be_overridden() {
        let mut f = facts();
        f.client_age = 17;
        assert!(absolute_refusals(&f).is_empty(), "an exception is allowed");
        assert_eq!(refusals(&f).len(), 1);
        f.minimum_age = Some(MinimumAge {
            years: 18,
            absolute: true,
            source: "Tattooing of Minors Act 1969".into(),
        });
        assert_eq!(absolute_refusals(&f).len(), 1);
        assert_eq!(refusals(&f).len(), 1, "named once");
        f.client_age = 18;
        assert!(refusals(&f).is_empty());
    }

    #[test]
    fn every_reason_is_given_at_once() {
        let mut f = facts();
        f.answers.remove("gloves");
        f.answers.insert("barrier_film".into(), json!(false));
        f.packs[0].state = PackState::Expired;
        f.lots[0].2 = LotStatus::Recalled;
        f.blocked_by = Some("the member is deactivated".into());
        f.client_age = 17;
        f.missing_lot_kinds = vec![crate::lots::model::LotKind::Pigment];
        let fields: Vec<String> = refusals(&f).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "checklist.gloves",
                "checklist.barrier_film",
                "packs.ABC-123",
                "lots",
                "lots.lot1",
                "technician",
                "client"
            ]
        );
    }
}
