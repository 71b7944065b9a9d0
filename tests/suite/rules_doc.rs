//! `docs/rules.md` lists every rule and, for each jurisdiction profile, every value with its
//! source. This test renders the profile tables from the profiles the binary ships and fails
//! when the document says anything else; `UPDATE_RULES_DOC=1` rewrites that part of it.

use aseptic::compliance::rules::Rule;
use aseptic::jurisdiction::profiles::{Profile, Profiles, Sourced};

const START: &str =
    "<!-- profiles: generated from config/jurisdictions by tests/suite/rules_doc.rs -->";
const END: &str = "<!-- end of profiles -->";

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn row<T: std::fmt::Debug>(
    out: &mut String,
    key: &str,
    v: &Sourced<T>,
    show: impl Fn(&T) -> String,
) {
    let value = v.value.as_ref().map_or("—".to_owned(), show);
    out.push_str(&format!(
        "| `{key}` | {} | {} |\n",
        cell(&value),
        cell(&v.source)
    ));
}

fn render(p: &Profile) -> String {
    let s = &p.sterilisation;
    let mut out = format!(
        "\n### {} (`{}`)\n\n| key | value | source |\n| --- | --- | --- |\n",
        p.name, p.id
    );
    row(
        &mut out,
        "sterilisation.spore_test_interval_days",
        &s.spore_test_interval_days,
        |v| format!("{v} days"),
    );
    row(
        &mut out,
        "sterilisation.daily_air_removal_test",
        &s.daily_air_removal_test,
        |v| v.to_string(),
    );
    row(
        &mut out,
        "sterilisation.load_indicator_min_type",
        &s.load_indicator_min_type,
        |v| format!("type {v}"),
    );
    row(
        &mut out,
        "sterilisation.spore_test_after_events",
        &s.spore_test_after_events,
        |v| v.to_string(),
    );
    row(
        &mut out,
        "sterilisation.spore_test_operating_hours",
        &s.spore_test_operating_hours,
        |v| format!("{v} hours of operation"),
    );
    row(
        &mut out,
        "sterilisation.requalification_spore_tests",
        &s.requalification_spore_tests,
        |v| format!("{v} consecutive negative tests, empty chamber"),
    );
    row(
        &mut out,
        "sterilisation.daily_automatic_control_test",
        &s.daily_automatic_control_test,
        |v| v.to_string(),
    );
    row(
        &mut out,
        "sterilisation.weekly_air_leakage_test",
        &s.weekly_air_leakage_test,
        |v| v.to_string(),
    );
    row(
        &mut out,
        "sterilisation.spore_test_read_by_laboratory",
        &s.spore_test_read_by_laboratory,
        |v| v.to_string(),
    );
    row(
        &mut out,
        "sterilisation.failed_spore_test_recall",
        &s.failed_spore_test_recall,
        |v| v.to_string(),
    );
    row(
        &mut out,
        "sterilisation.pack_shelf_life_days",
        &s.pack_shelf_life_days,
        |v| format!("{v} days"),
    );
    row(
        &mut out,
        "sterilisation.record_retention_years",
        &s.record_retention_years,
        |v| format!("{v} years"),
    );
    if p.required_credentials.is_empty() {
        out.push_str("| `required_credentials` | none | no credential is required of a practitioner by this jurisdiction's sources |\n");
    }
    for c in &p.required_credentials {
        let mut age = c
            .max_age_days
            .map_or("held".to_owned(), |d| format!("issued within {d} days"));
        if let Some(accepts) = &c.accepts {
            let words: Vec<&str> = accepts.iter().map(|s| s.as_db()).collect();
            age = format!("{age}, status one of: {}", words.join(", "));
        }
        out.push_str(&format!(
            "| `required_credentials.{}` | {} | {} |\n",
            c.kind.as_db(),
            age,
            cell(&c.source)
        ));
    }
    row(
        &mut out,
        "client_record_retention_years",
        &p.client_record_retention_years,
        |v| format!("{v} years"),
    );
    row(
        &mut out,
        "incident_report_working_days",
        &p.incident_report_working_days,
        |v| format!("{v} working days"),
    );
    row(&mut out, "public_holidays", &p.public_holidays, |v| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    });
    row(&mut out, "minimum_client_age", &p.minimum_client_age, |v| {
        format!("{v} years")
    });
    row(
        &mut out,
        "minimum_client_age_absolute",
        &p.minimum_client_age_absolute,
        |v| v.to_string(),
    );
    row(
        &mut out,
        "lot_expiry_and_recall",
        &p.lot_expiry_and_recall,
        |v| v.to_string(),
    );
    row(
        &mut out,
        "lots_recorded_per_session",
        &p.lots_recorded_per_session,
        |v| v.iter().map(|k| k.as_db()).collect::<Vec<_>>().join(", "),
    );
    row(
        &mut out,
        "notify_authority_of",
        &p.notify_authority_of,
        |v| format!("{v:?}").to_lowercase(),
    );
    out
}

fn rendered() -> String {
    let profiles = Profiles::load(None).unwrap();
    let mut out = String::new();
    for id in profiles.ids() {
        out.push_str(&render(profiles.get(id).unwrap()));
    }
    out
}

#[test]
fn the_rules_document_matches_the_profiles_the_binary_ships() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let (head, rest) = doc
        .split_once(START)
        .expect("docs/rules.md has the profiles marker");
    let (current, tail) = rest
        .split_once(END)
        .expect("docs/rules.md has the end marker");
    let expected = format!("{}\n", rendered());
    if current != expected {
        if std::env::var_os("UPDATE_RULES_DOC").is_some() {
            std::fs::write(path, format!("{head}{START}{expected}{END}{tail}")).unwrap();
        } else {
            panic!(
                "docs/rules.md does not match the profiles; run `UPDATE_RULES_DOC=1 cargo test --test suite rules_doc` and review the change"
            );
        }
    }
    // Every rule the engine has is described, with its severity and whether it gates the start.
    for rule in Rule::ALL {
        assert!(
            head.contains(&format!("| `{}` |", rule.as_str())),
            "docs/rules.md does not describe {}",
            rule.as_str()
        );
    }
    // Nothing a reader sees points at a development document.
    for word in ["DOMAIN.md", "issue ", "[S2]", "[B1]"] {
        assert!(!doc.contains(word), "docs/rules.md mentions {word}");
    }
}

#[test]
fn no_profile_source_points_at_a_development_document() {
    let profiles = Profiles::load(None).unwrap();
    let doc = rendered();
    for id in profiles.ids() {
        assert!(!doc.is_empty(), "{id}");
    }
    let key = regex_like_key(&doc);
    assert!(key.is_none(), "a source cites a private key: {key:?}");
    assert!(
        !doc.contains("DOMAIN.md") && !doc.contains("verify"),
        "{doc}"
    );
}

/// A bracketed key like `[S2]` or `[B15]` that only a development document could resolve.
fn regex_like_key(text: &str) -> Option<String> {
    let bytes: Vec<char> = text.chars().collect();
    for i in 0..bytes.len() {
        if bytes[i] == '[' {
            let inner: String = bytes[i + 1..].iter().take_while(|c| **c != ']').collect();
            let mut chars = inner.chars();
            if chars.next().is_some_and(|c| c.is_ascii_uppercase())
                && inner.len() <= 4
                && chars.clone().count() > 0
                && chars.all(|c| c.is_ascii_digit())
            {
                return Some(inner);
            }
        }
    }
    None
}
