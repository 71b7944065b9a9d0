//! The pure part of the audit chain: what bytes an event hashes, and how a chain is checked.
//! `docs/audit-chain.md` describes the same format for people who verify it without our code.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Version of the hashed envelope; bump it (and keep the old rules) if the format ever changes.
pub const FORMAT_VERSION: i64 = 1;

/// The `prev_hash` of a clinic's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every field of an event that its hash covers.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFields<'a> {
    pub clinic_id: &'a str,
    pub seq: i64,
    pub recorded_at: NaiveDateTime,
    pub actor_kind: &'a str,
    pub actor_id: Option<&'a str>,
    pub action: &'a str,
    pub entity_kind: &'a str,
    pub entity_id: &'a str,
    pub payload: &'a Value,
    pub reason: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// RFC 3339 in UTC with exactly six fractional digits, as stored and as hashed.
pub fn format_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The canonical (RFC 8785) envelope of an event. Written member by member, in the order RFC
/// 8785 sorts these names, so the payload is never copied into a second tree (an export's chain
/// is checked event by event, and every write hashes one).
pub fn canonical_envelope(e: &EventFields<'_>) -> String {
    use super::canonical::{write_str, write_value};
    let optional = |out: &mut String, v: Option<&str>| match v {
        Some(v) => write_str(out, v),
        None => out.push_str("null"),
    };
    let mut out = String::with_capacity(512);
    out.push_str("{\"action\":");
    write_str(&mut out, e.action);
    out.push_str(",\"actor_id\":");
    optional(&mut out, e.actor_id);
    out.push_str(",\"actor_kind\":");
    write_str(&mut out, e.actor_kind);
    out.push_str(",\"clinic_id\":");
    write_str(&mut out, e.clinic_id);
    out.push_str(",\"entity_id\":");
    write_str(&mut out, e.entity_id);
    out.push_str(",\"entity_kind\":");
    write_str(&mut out, e.entity_kind);
    out.push_str(",\"payload\":");
    write_value(&mut out, e.payload);
    out.push_str(",\"reason\":");
    optional(&mut out, e.reason);
    out.push_str(",\"recorded_at\":");
    write_str(&mut out, &format_time(e.recorded_at));
    out.push_str(",\"request_id\":");
    optional(&mut out, e.request_id);
    out.push_str(",\"seq\":");
    write_value(&mut out, &Value::from(e.seq));
    out.push_str(",\"v\":");
    write_value(&mut out, &Value::from(FORMAT_VERSION));
    out.push('}');
    out
}

/// The envelope as first written: a JSON tree of the members, canonicalised. Kept to show the
/// member-by-member writer above gives the same bytes.
#[cfg(test)]
fn canonical_envelope_from_tree(e: &EventFields<'_>) -> String {
    super::canonical::to_canonical_string(&serde_json::json!({
        "v": FORMAT_VERSION,
        "clinic_id": e.clinic_id,
        "seq": e.seq,
        "recorded_at": format_time(e.recorded_at),
        "actor_kind": e.actor_kind,
        "actor_id": e.actor_id,
        "action": e.action,
        "entity_kind": e.entity_kind,
        "entity_id": e.entity_id,
        "payload": e.payload,
        "reason": e.reason,
        "request_id": e.request_id,
    }))
}

/// `hash = SHA-256(prev_hash as 32 raw bytes || canonical envelope as UTF-8)`, in lower-case hex.
pub fn event_hash(prev_hash_hex: &str, e: &EventFields<'_>) -> Result<String, ChainError> {
    let prev = decode_hash(prev_hash_hex).ok_or(ChainError::MalformedHash)?;
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(canonical_envelope(e).as_bytes());
    Ok(hex::encode(hasher.finalize()))
}

fn decode_hash(hex_str: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_str).ok()?;
    bytes.try_into().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("a hash is not 64 hexadecimal characters")]
    MalformedHash,
}

/// What went wrong at one event of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// Checks events in `seq` order, one at a time, so a chain of any length is verified in constant
/// memory. Every link is checked: a verifier that skips the middle of a chain can be fooled.
#[derive(Debug)]
pub struct Verifier {
    expected_seq: i64,
    prev_hash: String,
    pub checked: u64,
    pub first_break: Option<ChainBreak>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    pub fn new() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            checked: 0,
            first_break: None,
        }
    }

    /// Checks a segment of a chain that starts at `first_seq`, after the event whose hash is
    /// `prev_hash`.
    pub fn starting_at(first_seq: i64, prev_hash: &str) -> Self {
        Self {
            expected_seq: first_seq,
            prev_hash: prev_hash.to_owned(),
            checked: 0,
            first_break: None,
        }
    }

    pub fn head(&self) -> (i64, &str) {
        (self.expected_seq - 1, &self.prev_hash)
    }

    /// Feeds the next stored event. Returns false once the chain is broken.
    pub fn push(&mut self, fields: &EventFields<'_>, stored_prev: &str, stored_hash: &str) -> bool {
        if self.first_break.is_some() {
            return false;
        }
        let broken = |reason: String| ChainBreak {
            seq: fields.seq,
            reason,
        };
        let problem = if fields.seq != self.expected_seq {
            if fields.seq > self.expected_seq {
                Some(broken(format!(
                    "events {} to {} are missing",
                    self.expected_seq,
                    fields.seq - 1
                )))
            } else {
                Some(broken(format!(
                    "sequence number {} appears out of order",
                    fields.seq
                )))
            }
        } else if stored_prev != self.prev_hash {
            Some(broken(
                "prev_hash does not match the hash of the previous event".to_owned(),
            ))
        } else {
            match event_hash(stored_prev, fields) {
                Ok(h) if h == stored_hash => None,
                Ok(_) => Some(broken(
                    "hash does not match the event's content (the event was altered)".to_owned(),
                )),
                Err(e) => Some(broken(e.to_string())),
            }
        };
        match problem {
            Some(p) => {
                self.first_break = Some(p);
                false
            }
            None => {
                self.expected_seq += 1;
                self.prev_hash = stored_hash.to_owned();
                self.checked += 1;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use serde_json::json;

    fn at() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_micro_opt(9, 30, 0, 123_456)
            .unwrap()
    }

    fn golden_payload() -> Value {
        json!({"name": "Ink & Needle Studio", "timezone": "Europe/London", "jurisdiction": "gb-eng"})
    }

    fn golden(payload: &Value) -> EventFields<'_> {
        EventFields {
            clinic_id: "0193a1b2-0000-7000-8000-000000000001",
            seq: 1,
            recorded_at: at(),
            actor_kind: "operator",
            actor_id: None,
            action: "clinic.created",
            entity_kind: "clinic",
            entity_id: "0193a1b2-0000-7000-8000-000000000001",
            payload,
            reason: None,
            request_id: None,
        }
    }

    /// The envelope written member by member is byte for byte the canonicalised tree, whatever
    /// the fields hold: absent ones, escapes, text outside ASCII, large sequence numbers.
    #[test]
    fn the_envelope_writer_matches_the_canonical_tree() {
        let payloads = [
            golden_payload(),
            json!({"z": [1, 2.5, -0.0, 1e21, {"b": null, "a": true}], "é": "quote \" back \\ tab \t nul \u{0} \u{1f}", "A": "日本"}),
            Value::Null,
            json!("just text"),
        ];
        for (i, payload) in payloads.iter().enumerate() {
            let mut e = golden(payload);
            if i % 2 == 1 {
                e.actor_id = Some("user \"one\"");
                e.reason = Some("corrected: line\nbreak");
                e.request_id = Some("req-ü");
                e.seq = 9_007_199_254_740_993;
            }
            assert_eq!(canonical_envelope(&e), canonical_envelope_from_tree(&e));
        }
    }

    /// The worked example of docs/audit-chain.md. If this test fails, old chains no longer verify:
    /// never change these values, add a new format version instead.
    #[test]
    fn golden_vector() {
        let payload = golden_payload();
        let e = golden(&payload);
        assert_eq!(
            canonical_envelope(&e),
            r#"{"action":"clinic.created","actor_id":null,"actor_kind":"operator","clinic_id":"0193a1b2-0000-7000-8000-000000000001","entity_id":"0193a1b2-0000-7000-8000-000000000001","entity_kind":"clinic","payload":{"jurisdiction":"gb-eng","name":"Ink & Needle Studio","timezone":"Europe/London"},"reason":null,"recorded_at":"2026-11-25T09:30:00.123456Z","request_id":null,"seq":1,"v":1}"#
        );
        assert_eq!(
            event_hash(GENESIS_HASH, &e).unwrap(),
            "46276422eae07b18511cc6950c884ac287a4251ef59f2126355293673e91ed64"
        );
    }

    #[test]
    fn verifier_accepts_a_chain_and_names_the_first_break() {
        let payload = golden_payload();
        let mut events = Vec::new();
        let mut prev = GENESIS_HASH.to_owned();
        for seq in 1..=3 {
            let mut e = golden(&payload);
            e.seq = seq;
            let h = event_hash(&prev, &e).unwrap();
            events.push((e, prev.clone(), h.clone()));
            prev = h;
        }
        let mut v = Verifier::new();
        assert!(events.iter().all(|(e, p, h)| v.push(e, p, h)));
        assert_eq!(v.checked, 3);

        // A missing middle event is reported as missing, not skipped.
        let mut v = Verifier::new();
        assert!(v.push(&events[0].0, &events[0].1, &events[0].2));
        assert!(!v.push(&events[2].0, &events[2].1, &events[2].2));
        assert_eq!(v.first_break.as_ref().unwrap().seq, 3);
        assert!(v.first_break.as_ref().unwrap().reason.contains("missing"));

        // An altered payload breaks the hash of that event.
        let altered = json!({"name": "Someone Else"});
        let mut e = events[1].0.clone();
        e.payload = &altered;
        let mut v = Verifier::new();
        assert!(v.push(&events[0].0, &events[0].1, &events[0].2));
        assert!(!v.push(&e, &events[1].1, &events[1].2));
        assert!(v.first_break.unwrap().reason.contains("altered"));
    }
}
