//! Jurisdiction profiles: what a clinic's regulator requires, one TOML file per jurisdiction in
//! `config/jurisdictions/`, every value with the source it comes from. A profile may extend
//! another and override single keys. A malformed profile stops start-up, naming file and key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::kinds::LotKind;
use super::kinds::{CredentialKind, Requirement};

/// The profiles shipped with the binary; files in the configuration directory override them.
const SHIPPED: &[(&str, &str)] = &[
    (
        "baseline.toml",
        include_str!("../../config/jurisdictions/baseline.toml"),
    ),
    (
        "us-ca.toml",
        include_str!("../../config/jurisdictions/us-ca.toml"),
    ),
    (
        "us-tx.toml",
        include_str!("../../config/jurisdictions/us-tx.toml"),
    ),
    (
        "us-mt.toml",
        include_str!("../../config/jurisdictions/us-mt.toml"),
    ),
    (
        "us-or.toml",
        include_str!("../../config/jurisdictions/us-or.toml"),
    ),
    (
        "us-fl.toml",
        include_str!("../../config/jurisdictions/us-fl.toml"),
    ),
    (
        "gb-eng.toml",
        include_str!("../../config/jurisdictions/gb-eng.toml"),
    ),
    (
        "gb-wls.toml",
        include_str!("../../config/jurisdictions/gb-wls.toml"),
    ),
    (
        "ca-on.toml",
        include_str!("../../config/jurisdictions/ca-on.toml"),
    ),
];

/// A value and where it comes from. `value` may be absent where the sources set no requirement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sourced<T> {
    pub value: Option<T>,
    /// The regulation, code or guidance the value rests on, with its section and a link where
    /// one exists.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredCredential {
    pub kind: CredentialKind,
    /// The credential counts for this many days after it was issued (e.g. yearly training).
    pub max_age_days: Option<i64>,
    /// For hepatitis B: the statuses that meet the requirement; every status when absent.
    #[serde(default)]
    pub accepts: Option<Vec<super::kinds::HepatitisBStatus>>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SterilisationRules {
    /// Longest gap between passing spore tests of a steriliser, in days.
    pub spore_test_interval_days: Sourced<u32>,
    /// Pre-vacuum sterilisers need a passing air-removal test each day before the first load.
    pub daily_air_removal_test: Sourced<bool>,
    /// Lowest ISO 11140-1 indicator type accepted as the load's chemical indicator.
    pub load_indicator_min_type: Sourced<i32>,
    /// A passing spore test is needed after installation, relocation or repair before loads are
    /// released again.
    pub spore_test_after_events: Sourced<bool>,
    /// A spore test is due after this many hours of operation (the loads' durations) since the
    /// last passing one, whatever the calendar says. Absent where no source counts hours.
    pub spore_test_operating_hours: Sourced<u32>,
    /// Only a spore test read by an independent or certified laboratory (mail-in) counts as a
    /// passing test; an in-house reading's growth still counts as a failure.
    pub spore_test_read_by_laboratory: Sourced<bool>,
    /// A positive spore test takes the steriliser out of service and quarantines every load back
    /// to its last negative test.
    pub failed_spore_test_recall: Sourced<bool>,
    /// The longest a sterilised pack may stay on the shelf, in days; a clinic may set a shorter
    /// one. Absent where the sources make shelf life event-related.
    pub pack_shelf_life_days: Sourced<u32>,
    /// How many consecutive negative spore tests, each in an empty chamber, requalify a
    /// steriliser after a positive test or a relocation or repair. Absent: one passing test.
    pub requalification_spore_tests: Sourced<u32>,
    /// Every steriliser needs a passing automatic control test each day before the first load.
    pub daily_automatic_control_test: Sourced<bool>,
    /// Vacuum (pre-vacuum) sterilisers need a passing air-leakage test in the seven days before a
    /// load.
    pub weekly_air_leakage_test: Sourced<bool>,
    pub record_retention_years: Sourced<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The file name without `.toml`; what a clinic's `jurisdiction` names.
    #[serde(default)]
    pub id: String,
    pub name: String,
    /// The profile this one starts from, if any.
    #[serde(default)]
    pub extends: Option<String>,
    pub sterilisation: SterilisationRules,
    pub required_credentials: Vec<RequiredCredential>,
    pub client_record_retention_years: Sourced<u32>,
    /// Working days to report a client's infection or reaction to the authority, counted from
    /// when it occurred or when the clinic learned of it, whichever is later. Absent where no
    /// source asks for such a report.
    pub incident_report_working_days: Sourced<u32>,
    /// The jurisdiction's public holidays, which working-day deadlines skip, as rules
    /// ("12-25", "4 thu 11", "last mon 5", "day after 4 thu 11").
    pub public_holidays: Sourced<Vec<String>>,
    /// The youngest a client may be. Absent where the sources set no age.
    pub minimum_client_age: Sourced<u32>,
    /// Whether the age is absolute: then no one, not even an owner, may start a session for a
    /// younger client. Otherwise an owner may, with a reason (the source names the exception).
    pub minimum_client_age_absolute: Sourced<bool>,
    /// A lot past its expiry date or under recall must not be used.
    pub lot_expiry_and_recall: Sourced<bool>,
    /// Lot kinds that must be recorded for each session.
    pub lots_recorded_per_session: Sourced<Vec<LotKind>>,
    /// Events mailed to the clinic's authority address as soon as they are recorded.
    pub notify_authority_of: Sourced<Vec<AuthorityEvent>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthorityEvent {
    PositiveSporeTest,
    LotRecall,
}

impl Profile {
    /// The jurisdiction's holiday calendar (checked when the profile is loaded).
    pub fn holidays(&self) -> Result<super::holidays::Calendar, String> {
        super::holidays::Calendar::parse(self.public_holidays.value.as_deref().unwrap_or_default())
    }

    /// The authority report rule, where the profile has one: working days and the calendar.
    pub fn report_rule(&self) -> Option<(u32, super::holidays::Calendar)> {
        let days = self.incident_report_working_days.value?;
        Some((days, self.holidays().unwrap_or_default()))
    }

    /// The credential requirements in the form the eligibility rule takes.
    pub fn requirements(&self) -> Vec<Requirement> {
        self.required_credentials
            .iter()
            .map(|r| Requirement {
                kind: r.kind,
                max_age_days: r.max_age_days,
                accepts: r.accepts.clone(),
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("jurisdiction profile {file}: {key}: {reason}")]
pub struct ProfileError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

/// Every profile, by id.
#[derive(Debug, Clone, Default)]
pub struct Profiles(BTreeMap<String, Profile>);

/// Child keys override the parent's. A sourced value (a table with a `source`) is replaced whole:
/// a value never keeps a source it did not come from, and leaving `value` out clears it.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) if !o.contains_key("source") => {
                merge(b, o)
            }
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

impl Profiles {
    /// The shipped profiles, then every `*.toml` in `dir` (which may add or replace profiles).
    pub fn load(dir: Option<&Path>) -> Result<Self, ProfileError> {
        let mut raw: BTreeMap<String, (String, toml::Table)> = BTreeMap::new();
        let parse = |file: &str, text: &str| {
            text.parse::<toml::Table>().map_err(|e| ProfileError {
                file: file.to_owned(),
                key: "(syntax)".to_owned(),
                reason: e.message().to_owned(),
            })
        };
        for (file, text) in SHIPPED {
            raw.insert(
                file.trim_end_matches(".toml").to_owned(),
                ((*file).to_owned(), parse(file, text)?),
            );
        }
        if let Some(dir) = dir.filter(|d| d.is_dir()) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| ProfileError {
                    file: dir.display().to_string(),
                    key: "(directory)".into(),
                    reason: e.to_string(),
                })?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            entries.sort();
            for path in entries {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| ProfileError {
                    file: file.clone(),
                    key: "(file)".into(),
                    reason: e.to_string(),
                })?;
                let id = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                raw.insert(id, (file.clone(), parse(&file, &text)?));
            }
        }
        let mut profiles = BTreeMap::new();
        for id in raw.keys() {
            let (file, table) = Self::resolve(&raw, id, &mut Vec::new())?;
            let mut profile: Profile = serde_path_to_error::deserialize(toml::Value::Table(table))
                .map_err(|e| ProfileError {
                    file: file.clone(),
                    key: e.path().to_string(),
                    reason: e.into_inner().to_string(),
                })?;
            profile.id = id.clone();
            Self::check(&file, &profile)?;
            profiles.insert(id.clone(), profile);
        }
        Ok(Self(profiles))
    }

    /// The profile's table with everything it extends merged underneath.
    fn resolve(
        raw: &BTreeMap<String, (String, toml::Table)>,
        id: &str,
        seen: &mut Vec<String>,
    ) -> Result<(String, toml::Table), ProfileError> {
        let (file, table) = raw.get(id).ok_or_else(|| ProfileError {
            file: id.to_owned(),
            key: "extends".into(),
            reason: "no such profile".into(),
        })?;
        if seen.iter().any(|s| s == id) {
            return Err(ProfileError {
                file: file.clone(),
                key: "extends".into(),
                reason: format!(
                    "profiles extend each other in a circle: {}",
                    seen.join(" -> ")
                ),
            });
        }
        seen.push(id.to_owned());
        let mut merged = match table.get("extends") {
            Some(toml::Value::String(parent)) => {
                let (_, base) = Self::resolve(raw, parent, seen).map_err(|mut e| {
                    if e.reason == "no such profile" {
                        e = ProfileError {
                            file: file.clone(),
                            key: "extends".into(),
                            reason: format!("extends unknown profile {parent:?}"),
                        };
                    }
                    e
                })?;
                base
            }
            Some(_) => {
                return Err(ProfileError {
                    file: file.clone(),
                    key: "extends".into(),
                    reason: "must be a profile name".into(),
                })
            }
            None => toml::Table::new(),
        };
        merge(&mut merged, table.clone());
        Ok((file.clone(), merged))
    }

    fn check(file: &str, p: &Profile) -> Result<(), ProfileError> {
        let bad = |key: &str, reason: &str| {
            Err(ProfileError {
                file: file.to_owned(),
                key: key.to_owned(),
                reason: reason.to_owned(),
            })
        };
        let sources = [
            (
                "sterilisation.spore_test_interval_days.source",
                &p.sterilisation.spore_test_interval_days.source,
            ),
            (
                "sterilisation.daily_air_removal_test.source",
                &p.sterilisation.daily_air_removal_test.source,
            ),
            (
                "sterilisation.load_indicator_min_type.source",
                &p.sterilisation.load_indicator_min_type.source,
            ),
            (
                "sterilisation.spore_test_after_events.source",
                &p.sterilisation.spore_test_after_events.source,
            ),
            (
                "sterilisation.record_retention_years.source",
                &p.sterilisation.record_retention_years.source,
            ),
            (
                "sterilisation.spore_test_operating_hours.source",
                &p.sterilisation.spore_test_operating_hours.source,
            ),
            (
                "sterilisation.requalification_spore_tests.source",
                &p.sterilisation.requalification_spore_tests.source,
            ),
            (
                "sterilisation.daily_automatic_control_test.source",
                &p.sterilisation.daily_automatic_control_test.source,
            ),
            (
                "sterilisation.weekly_air_leakage_test.source",
                &p.sterilisation.weekly_air_leakage_test.source,
            ),
            (
                "sterilisation.spore_test_read_by_laboratory.source",
                &p.sterilisation.spore_test_read_by_laboratory.source,
            ),
            (
                "sterilisation.failed_spore_test_recall.source",
                &p.sterilisation.failed_spore_test_recall.source,
            ),
            (
                "sterilisation.pack_shelf_life_days.source",
                &p.sterilisation.pack_shelf_life_days.source,
            ),
            ("public_holidays.source", &p.public_holidays.source),
            (
                "client_record_retention_years.source",
                &p.client_record_retention_years.source,
            ),
            (
                "incident_report_working_days.source",
                &p.incident_report_working_days.source,
            ),
            ("minimum_client_age.source", &p.minimum_client_age.source),
            (
                "minimum_client_age_absolute.source",
                &p.minimum_client_age_absolute.source,
            ),
            (
                "lot_expiry_and_recall.source",
                &p.lot_expiry_and_recall.source,
            ),
            (
                "lots_recorded_per_session.source",
                &p.lots_recorded_per_session.source,
            ),
            ("notify_authority_of.source", &p.notify_authority_of.source),
        ];
        for (key, source) in sources {
            if source.trim().is_empty() {
                return bad(key, "every value needs a source");
            }
        }
        for (i, c) in p.required_credentials.iter().enumerate() {
            if c.source.trim().is_empty() {
                return bad(
                    &format!("required_credentials[{i}].source"),
                    "every value needs a source",
                );
            }
        }
        if p.sterilisation
            .load_indicator_min_type
            .value
            .is_some_and(|t| !(1..=6).contains(&t))
        {
            return bad(
                "sterilisation.load_indicator_min_type.value",
                "must be an ISO 11140-1 type from 1 to 6",
            );
        }
        if let Err(reason) = p.holidays() {
            return bad("public_holidays.value", &reason);
        }
        if p.sterilisation.spore_test_interval_days.value == Some(0) {
            return bad(
                "sterilisation.spore_test_interval_days.value",
                "must be at least 1 day, or left out",
            );
        }
        Ok(())
    }

    /// The credentials a clinic of this jurisdiction requires; the baseline's when the profile is
    /// gone (a file removed after clinics chose it).
    pub fn get(&self, id: &str) -> Option<&Profile> {
        self.0.get(id)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn the_shipped_profiles_load_with_sources() {
        let p = Profiles::load(None).unwrap();
        assert_eq!(
            p.ids(),
            [
                "baseline", "ca-on", "gb-eng", "gb-wls", "us-ca", "us-fl", "us-mt", "us-or",
                "us-tx"
            ]
        );
        // Only Montana asks for a failed spore test to be mailed to the authority at once.
        let mt = p.get("us-mt").unwrap();
        assert_eq!(
            mt.notify_authority_of.value,
            Some(vec![AuthorityEvent::PositiveSporeTest])
        );
        assert_eq!(
            p.get("us-ca").unwrap().notify_authority_of.value,
            Some(vec![])
        );
        let ca = p.get("us-ca").unwrap();
        assert_eq!(ca.sterilisation.spore_test_interval_days.value, Some(30));
        assert_eq!(ca.sterilisation.load_indicator_min_type.value, Some(5));
        // Inherited from the baseline unless overridden.
        assert_eq!(
            ca.incident_report_working_days,
            p.get("baseline").unwrap().incident_report_working_days
        );
        assert_eq!(
            p.get("baseline")
                .unwrap()
                .sterilisation
                .spore_test_interval_days
                .value,
            Some(7)
        );
    }

    #[test]
    fn a_profile_may_extend_another_and_override_one_key() {
        let dir = dir_with(&[("xx-test.toml", "name = \"Test\"\nextends = \"us-ca\"\n[sterilisation.spore_test_interval_days]\nvalue = 14\nsource = \"local order 12\"\n")]);
        let p = Profiles::load(Some(dir.path())).unwrap();
        let t = p.get("xx-test").unwrap();
        assert_eq!(t.sterilisation.spore_test_interval_days.value, Some(14));
        assert_eq!(
            t.sterilisation.load_indicator_min_type.value,
            Some(5),
            "from us-ca"
        );
    }

    #[test]
    fn a_malformed_profile_names_the_file_and_the_key() {
        let dir = dir_with(&[("bad.toml", "name = \"Bad\"\nextends = \"baseline\"\n[sterilisation.spore_test_interval_days]\nvalue = \"weekly\"\nsource = \"x\"\n")]);
        let err = Profiles::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml")
                && err.contains("sterilisation.spore_test_interval_days.value"),
            "{err}"
        );

        let dir = dir_with(&[("nosource.toml", "name = \"N\"\nextends = \"baseline\"\n[sterilisation.daily_air_removal_test]\nvalue = false\nsource = \"\"\n")]);
        let err = Profiles::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("nosource.toml") && err.contains("daily_air_removal_test.source"),
            "{err}"
        );

        let dir = dir_with(&[("orphan.toml", "name = \"O\"\nextends = \"atlantis\"\n")]);
        let err = Profiles::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("orphan.toml") && err.contains("extends"),
            "{err}"
        );

        let dir = dir_with(&[
            ("a.toml", "extends = \"b\"\n"),
            ("b.toml", "extends = \"a\"\n"),
        ]);
        assert!(Profiles::load(Some(dir.path()))
            .unwrap_err()
            .to_string()
            .contains("circle"));

        let dir = dir_with(&[("syntax.toml", "name = \n")]);
        assert!(Profiles::load(Some(dir.path()))
            .unwrap_err()
            .to_string()
            .contains("syntax.toml"));
    }
}
