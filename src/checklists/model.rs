//! Setup checklist templates: items, what kind of answer each takes, and when an answer counts.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// Done or not: the answer is `true` or `false`.
    Tick,
    /// A measured number, e.g. a disinfectant contact time in seconds.
    Number,
    /// A lot used, by its id.
    Lot,
    /// Free text, e.g. the disinfectant product.
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    /// Stable key of the item (lower case, digits, underscores), used when answering.
    #[schema(pattern = "^[a-z0-9_]{1,64}$")]
    pub key: String,
    pub text: String,
    pub required: bool,
    pub answer: AnswerKind,
    /// The unit of a number answer, e.g. `s`.
    #[serde(default)]
    pub unit: Option<String>,
    /// The smallest acceptable number, e.g. the product's contact time.
    #[serde(default)]
    pub min: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub name: String,
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ChecklistItem>,
}

fn item(key: &str, text: &str, answer: AnswerKind) -> ChecklistItem {
    ChecklistItem {
        key: key.into(),
        text: text.into(),
        required: true,
        answer,
        unit: None,
        min: None,
    }
}

/// The template every new clinic starts with, for SMP and tattoo work.
pub fn default_template() -> TemplateInput {
    TemplateInput {
        name: "SMP / tattoo station setup".into(),
        items: vec![
            item(
                "hand_hygiene",
                "Hands washed and sanitised before gloving",
                AnswerKind::Tick,
            ),
            item("gloves", "New single-use gloves put on", AnswerKind::Tick),
            item(
                "surface_disinfectant",
                "Work surfaces disinfected: product used",
                AnswerKind::Text,
            ),
            ChecklistItem {
                unit: Some("s".into()),
                ..item(
                    "contact_time",
                    "Disinfectant left wet for its contact time",
                    AnswerKind::Number,
                )
            },
            item(
                "barrier_film",
                "Barrier film on machine, cord and touch points",
                AnswerKind::Tick,
            ),
            item(
                "sharps_container",
                "Sharps container within reach and below the fill line",
                AnswerKind::Tick,
            ),
            item(
                "single_use_opened",
                "Single-use items opened in front of the client",
                AnswerKind::Tick,
            ),
            item(
                "pack_checked",
                "Instrument pack intact, indicator changed, within shelf life",
                AnswerKind::Tick,
            ),
            item(
                "pigment_caps",
                "Pigment dispensed into single-use caps",
                AnswerKind::Tick,
            ),
            item(
                "cartridge_lot",
                "Needle cartridge lot recorded",
                AnswerKind::Lot,
            ),
            item(
                "skin_prep",
                "Client's skin cleaned with antiseptic",
                AnswerKind::Tick,
            ),
        ],
    }
}

impl TemplateInput {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push(FieldError::new("name", "is required"));
        }
        if self.items.is_empty() || self.items.len() > 100 {
            errors.push(FieldError::new("items", "must hold 1 to 100 items"));
        }
        for (i, it) in self.items.iter().enumerate() {
            let field = |f: &str| format!("items[{i}].{f}");
            let key_ok = !it.key.is_empty()
                && it.key.len() <= 64
                && it
                    .key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !key_ok {
                errors.push(FieldError::new(
                    field("key"),
                    "must be 1–64 lower-case letters, digits or underscores",
                ));
            } else if self.items[..i].iter().any(|o| o.key == it.key) {
                errors.push(FieldError::new(field("key"), "is used by another item"));
            }
            if it.text.trim().is_empty() {
                errors.push(FieldError::new(field("text"), "is required"));
            }
            if it.answer != AnswerKind::Number && (it.unit.is_some() || it.min.is_some()) {
                errors.push(FieldError::new(
                    field("answer"),
                    "only number answers take a unit or a minimum",
                ));
            }
        }
        errors
    }
}

/// Checks an answer's form; `Err` says what is wrong with it.
pub fn check_answer(item: &ChecklistItem, value: &Value) -> Result<(), String> {
    match (item.answer, value) {
        (AnswerKind::Tick, Value::Bool(_)) => Ok(()),
        (AnswerKind::Number, Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => Ok(()),
        (AnswerKind::Lot, Value::String(s)) if !s.trim().is_empty() => Ok(()),
        (AnswerKind::Text, Value::String(s))
            if !s.trim().is_empty() && s.chars().count() <= 2000 =>
        {
            Ok(())
        }
        (AnswerKind::Tick, _) => Err("must be true or false".into()),
        (AnswerKind::Number, _) => Err("must be a number".into()),
        (AnswerKind::Lot, _) => Err(
            "must name a lot: its id, the lot number printed on the box, or the scanned code"
                .into(),
        ),
        (AnswerKind::Text, _) => Err("must be text of 1 to 2000 characters".into()),
    }
}

/// Whether an answer completes its item: a tick must be ticked, a number must reach its minimum.
pub fn completes(item: &ChecklistItem, value: &Value) -> bool {
    match item.answer {
        AnswerKind::Tick => value == &Value::Bool(true),
        AnswerKind::Number => value
            .as_f64()
            .is_some_and(|n| item.min.is_none_or(|m| n >= m)),
        AnswerKind::Lot | AnswerKind::Text => check_answer(item, value).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_default_template_is_valid() {
        assert!(default_template().validate().is_empty());
    }

    #[test]
    fn duplicate_keys_and_misplaced_units_are_named() {
        let mut t = default_template();
        t.items[1].key = "hand_hygiene".into();
        t.items[0].unit = Some("s".into());
        let fields: Vec<String> = t.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["items[0].answer", "items[1].key"]);
    }

    #[test]
    fn answers_complete_their_items() {
        let contact = ChecklistItem {
            min: Some(60.0),
            ..default_template().items[3].clone()
        };
        assert!(completes(&contact, &json!(60)));
        assert!(!completes(&contact, &json!(59.9)));
        let tick = &default_template().items[0];
        assert!(completes(tick, &json!(true)));
        assert!(!completes(tick, &json!(false)));
        assert!(check_answer(tick, &json!("yes")).is_err());
    }
}
