//! Compliance rules: pure functions from a clinic's facts, its jurisdiction profile and a moment
//! to findings. Nothing here reads or writes the database; `view` gathers the facts.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::profiles::Profile;
use crate::credentials::model::Eligibility;
use crate::lots::model::LotStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Work must stop until this is fixed.
    Blocker,
    Warning,
    Info,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    /// What the finding is about, e.g. `steriliser:<id>`.
    pub subject: String,
    pub message: String,
    /// The regulation or guidance behind the rule.
    pub reference: String,
    pub due: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone)]
pub struct SteriliserFacts {
    pub id: String,
    pub label: String,
    pub pre_vacuum: bool,
    pub in_service: bool,
    pub quarantined: bool,
    /// Start of the load that carried the latest valid negative spore test.
    pub last_negative_spore_test: Option<NaiveDateTime>,
    pub loads_today: bool,
    pub air_removal_passed_today: bool,
}

#[derive(Debug, Clone)]
pub struct LotFacts {
    pub id: String,
    pub label: String,
    pub status: LotStatus,
    pub expiry_date: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct StaffFacts {
    pub user_id: String,
    pub name: String,
    pub eligibility: Eligibility,
}

#[derive(Debug, Clone)]
pub struct FollowUpFacts {
    pub incident_id: String,
    pub kind: String,
    pub due: NaiveDateTime,
    pub done: bool,
}

/// Everything the rules look at, as of one moment.
#[derive(Debug, Clone)]
pub struct Facts {
    pub now: NaiveDateTime,
    /// The clinic-local date of `now`.
    pub today: NaiveDate,
    pub sterilisers: Vec<SteriliserFacts>,
    pub lots: Vec<LotFacts>,
    pub staff: Vec<StaffFacts>,
    pub follow_ups: Vec<FollowUpFacts>,
}

fn utc(t: NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    crate::db::to_utc(t)
}

fn finding(
    rule: &str,
    severity: Severity,
    subject: String,
    message: String,
    reference: &str,
    due: Option<NaiveDateTime>,
) -> Finding {
    Finding {
        rule: rule.into(),
        severity,
        subject,
        message,
        reference: reference.into(),
        due: due.map(utc),
    }
}

/// Spore-test interval per steriliser (DOMAIN.md rule 1) and quarantine after a failure (rule 3).
pub fn spore_tests(p: &Profile, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let source = &p.sterilisation.spore_test_interval_days.source;
    for s in &f.sterilisers {
        let subject = format!("steriliser:{}", s.id);
        if s.quarantined {
            out.push(finding("failed_spore_test", Severity::Blocker, subject.clone(), format!("{} is quarantined after a positive spore test: retest, and reprocess the look-back packs", s.label), "CDC 2008; NEHA Body Art Model Code [S2][B1]", None));
            continue;
        }
        if !s.in_service {
            continue;
        }
        let Some(days) = p.sterilisation.spore_test_interval_days.value else {
            continue;
        };
        match s.last_negative_spore_test {
            None => out.push(finding(
                "spore_test_interval",
                Severity::Blocker,
                subject,
                format!("{} has no passing spore test on record", s.label),
                source,
                None,
            )),
            Some(last) => {
                let due = last + Duration::days(i64::from(days));
                if f.now > due {
                    out.push(finding(
                        "spore_test_interval",
                        Severity::Blocker,
                        subject,
                        format!("{}'s spore test is overdue (every {days} days)", s.label),
                        source,
                        Some(due),
                    ));
                } else if due - f.now <= Duration::days(1) {
                    out.push(finding(
                        "spore_test_interval",
                        Severity::Warning,
                        subject,
                        format!("{}'s spore test is due within a day", s.label),
                        source,
                        Some(due),
                    ));
                }
            }
        }
    }
    out
}

/// Daily air-removal test before the first load of a pre-vacuum steriliser (rule 4).
pub fn air_removal(p: &Profile, f: &Facts) -> Vec<Finding> {
    if p.sterilisation.daily_air_removal_test.value != Some(true) {
        return Vec::new();
    }
    let source = &p.sterilisation.daily_air_removal_test.source;
    f.sterilisers
        .iter()
        .filter(|s| s.pre_vacuum && s.in_service && !s.air_removal_passed_today)
        .map(|s| {
            let subject = format!("steriliser:{}", s.id);
            if s.loads_today {
                finding(
                    "daily_air_removal",
                    Severity::Blocker,
                    subject,
                    format!(
                        "{} ran loads today without a passing air-removal test",
                        s.label
                    ),
                    source,
                    None,
                )
            } else {
                finding(
                    "daily_air_removal",
                    Severity::Info,
                    subject,
                    format!(
                        "{} needs a passing air-removal test before today's first load",
                        s.label
                    ),
                    source,
                    None,
                )
            }
        })
        .collect()
}

/// Lots in stock that are recalled, expired or about to expire (rule 7).
pub fn lots(f: &Facts) -> Vec<Finding> {
    let reference = "Lots recorded, unexpired and not recalled (DOMAIN.md rule 7) [F10][B1]";
    f.lots
        .iter()
        .filter_map(|l| {
            let subject = format!("lot:{}", l.id);
            match l.status {
                LotStatus::Recalled => Some(finding(
                    "lot_recalled",
                    Severity::Warning,
                    subject,
                    format!("{} is recalled: quarantine the stock", l.label),
                    reference,
                    None,
                )),
                LotStatus::Expired => Some(finding(
                    "lot_expired",
                    Severity::Warning,
                    subject,
                    format!("{} expired on {}", l.label, l.expiry_date),
                    reference,
                    None,
                )),
                LotStatus::Usable if l.expiry_date - f.today <= Duration::days(30) => {
                    Some(finding(
                        "lot_expiring",
                        Severity::Info,
                        subject,
                        format!("{} expires on {}", l.label, l.expiry_date),
                        reference,
                        l.expiry_date.and_hms_opt(23, 59, 59),
                    ))
                }
                LotStatus::Usable => None,
            }
        })
        .collect()
}

/// Technician eligibility, with 30-day warnings (rule 9).
pub fn staff(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &f.staff {
        let subject = format!("member:{}", s.user_id);
        for r in &s.eligibility.reasons {
            out.push(finding(
                "technician_eligibility",
                Severity::Blocker,
                subject.clone(),
                format!("{}: {}", s.name, r.message),
                "Jurisdiction profile required credentials (DOMAIN.md rule 9)",
                None,
            ));
        }
        for w in &s.eligibility.warnings {
            out.push(finding(
                "technician_eligibility",
                Severity::Warning,
                subject.clone(),
                format!("{}: {w}", s.name),
                "Jurisdiction profile required credentials (DOMAIN.md rule 9)",
                None,
            ));
        }
    }
    out
}

/// Incident follow-ups past their deadline (rules 10 and 11).
pub fn incidents(f: &Facts) -> Vec<Finding> {
    f.follow_ups
        .iter()
        .filter(|u| !u.done)
        .map(|u| {
            let overdue = f.now > u.due;
            finding(
                "incident_follow_up",
                if overdue {
                    Severity::Blocker
                } else {
                    Severity::Info
                },
                format!("incident:{}", u.incident_id),
                format!(
                    "{} {}",
                    u.kind.replace('_', " "),
                    if overdue { "is overdue" } else { "is due" }
                ),
                "29 CFR 1910.1030(f); jurisdiction reporting deadline (DOMAIN.md rules 10, 11)",
                Some(u.due),
            )
        })
        .collect()
}

/// Every rule, most severe first.
pub fn evaluate(p: &Profile, f: &Facts) -> Vec<Finding> {
    let mut all = Vec::new();
    all.extend(spore_tests(p, f));
    all.extend(air_removal(p, f));
    all.extend(lots(f));
    all.extend(staff(f));
    all.extend(incidents(f));
    all.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.rule.cmp(&b.rule))
            .then(a.subject.cmp(&b.subject))
    });
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::profiles::Profiles;

    fn at(d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    fn steriliser(last: Option<NaiveDateTime>) -> SteriliserFacts {
        SteriliserFacts {
            id: "s".into(),
            label: "Lisa".into(),
            pre_vacuum: true,
            in_service: true,
            quarantined: false,
            last_negative_spore_test: last,
            loads_today: false,
            air_removal_passed_today: true,
        }
    }

    fn facts(now: NaiveDateTime, s: SteriliserFacts) -> Facts {
        Facts {
            now,
            today: now.date(),
            sterilisers: vec![s],
            lots: vec![],
            staff: vec![],
            follow_ups: vec![],
        }
    }

    #[test]
    fn spore_test_interval_boundaries() {
        let profiles = Profiles::load(None).unwrap();
        let baseline = profiles.get("baseline").unwrap(); // every 7 days
        let last = at(1, 9);
        // The day before the deadline: nothing; within a day: warning; after: blocker.
        assert!(spore_tests(baseline, &facts(at(7, 8), steriliser(Some(last)))).is_empty());
        assert_eq!(
            spore_tests(baseline, &facts(at(8, 8), steriliser(Some(last))))[0].severity,
            Severity::Warning
        );
        assert_eq!(
            spore_tests(baseline, &facts(at(8, 9), steriliser(Some(last))))[0].severity,
            Severity::Warning
        );
        assert_eq!(
            spore_tests(baseline, &facts(at(8, 10), steriliser(Some(last))))[0].severity,
            Severity::Blocker
        );
        // California allows 30 days.
        let ca = profiles.get("us-ca").unwrap();
        assert!(spore_tests(ca, &facts(at(20, 9), steriliser(Some(last)))).is_empty());
        // England sets no periodic test.
        assert!(spore_tests(
            profiles.get("gb-eng").unwrap(),
            &facts(at(30, 9), steriliser(None))
        )
        .is_empty());
        assert_eq!(
            spore_tests(baseline, &facts(at(2, 9), steriliser(None)))[0].severity,
            Severity::Blocker
        );
    }

    #[test]
    fn air_removal_before_the_first_load() {
        let profiles = Profiles::load(None).unwrap();
        let p = profiles.get("baseline").unwrap();
        let missing = SteriliserFacts {
            air_removal_passed_today: false,
            ..steriliser(Some(at(1, 9)))
        };
        assert_eq!(
            air_removal(p, &facts(at(2, 7), missing.clone()))[0].severity,
            Severity::Info
        );
        let loaded = SteriliserFacts {
            loads_today: true,
            ..missing
        };
        assert_eq!(
            air_removal(p, &facts(at(2, 9), loaded.clone()))[0].severity,
            Severity::Blocker
        );
        let gravity = SteriliserFacts {
            pre_vacuum: false,
            ..loaded
        };
        assert!(air_removal(p, &facts(at(2, 9), gravity)).is_empty());
    }

    #[test]
    fn follow_ups_turn_overdue_after_their_deadline() {
        let mut f = facts(at(10, 12), steriliser(Some(at(9, 9))));
        f.follow_ups = vec![FollowUpFacts {
            incident_id: "i".into(),
            kind: "written_opinion".into(),
            due: at(10, 12),
            done: false,
        }];
        assert_eq!(incidents(&f)[0].severity, Severity::Info);
        f.now = at(10, 13);
        assert_eq!(incidents(&f)[0].severity, Severity::Blocker);
        f.follow_ups[0].done = true;
        assert!(incidents(&f).is_empty());
    }
}
