//! Sterilisation types, their validation, and the values derived from them: a cycle's
//! indicators and outcome, a pack's state, the look-back window of a failed spore test.
//! Everything here is pure; `store` does the I/O.

use crate::error::FieldError;

mod air_removal;
mod cycles;
mod packs;
mod spore_tests;
mod sterilisers;

pub use air_removal::*;
pub use cycles::*;
pub use packs::*;
pub use spore_tests::*;
pub use sterilisers::*;

// ---------------------------------------------------------------------------------------------
// Physics

/// Saturated steam temperatures a steam steriliser can plausibly report (°C). Small steam
/// sterilisers run 121–137 °C (CDC 2008 Table 7; HTM 01-05 134–137 °C); anything outside this band is a typing error.
pub const MIN_TEMPERATURE_C: f64 = 100.0;
pub const MAX_TEMPERATURE_C: f64 = 140.0;

/// How far a measured absolute pressure may stray from saturated steam at the measured
/// temperature: ±10 % (air in the chamber raises it, superheat lowers it, gauges drift).
pub const PRESSURE_TOLERANCE: f64 = 0.10;

/// Absolute pressure (kPa) of saturated steam at `celsius`, by the Antoine equation for water
/// (constants for 99–374 °C): log10(P / mmHg) = 8.14019 − 1810.94 / (244.485 + T).
pub fn saturation_pressure_kpa(celsius: f64) -> f64 {
    let mmhg = 10f64.powf(8.14019 - 1810.94 / (244.485 + celsius));
    mmhg * 0.133_322_368
}

fn check_temperature(field: &str, celsius: f64, errors: &mut Vec<FieldError>) {
    if !celsius.is_finite() || !(MIN_TEMPERATURE_C..=MAX_TEMPERATURE_C).contains(&celsius) {
        errors.push(FieldError::new(
            field,
            format!(
                "{celsius} °C is not a steam sterilisation temperature (expected {MIN_TEMPERATURE_C}–{MAX_TEMPERATURE_C} °C)"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0).unwrap()
    }

    fn cycle() -> CycleFields {
        CycleFields {
            steriliser_id: "s".into(),
            cycle_number: 7,
            program: Program {
                name: "134 °C / 3.5 min".into(),
                temperature_c: 134.0,
                hold_minutes: 3.5,
            },
            started_at: t(9, 0),
            finished_at: t(9, 40),
            peak_temperature_c: 135.0,
            peak_pressure_kpa: 313.0,
            hold_minutes: 4.0,
            operator_id: None,
            load_indicator: ChemicalIndicator {
                indicator_type: 5,
                passed: true,
            },
            notes: None,
        }
    }

    fn fields_of(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn saturated_steam_matches_steam_tables() {
        // Steam tables: 121 °C ≈ 205 kPa, 134 °C ≈ 304 kPa absolute.
        assert!((saturation_pressure_kpa(121.0) - 205.0).abs() < 3.0);
        assert!((saturation_pressure_kpa(134.0) - 304.0).abs() < 3.0);
    }

    #[test]
    fn a_plausible_cycle_validates_and_passes_mechanically() {
        let c = cycle();
        assert!(
            c.validate(t(12, 0)).is_empty(),
            "{:?}",
            c.validate(t(12, 0))
        );
        assert!(c.mechanical_passed());
        let short_hold = CycleFields {
            hold_minutes: 3.0,
            ..cycle()
        };
        assert!(!short_hold.mechanical_passed());
        let cool = CycleFields {
            peak_temperature_c: 133.5,
            peak_pressure_kpa: 300.0,
            ..cycle()
        };
        assert!(!cool.mechanical_passed());
    }

    #[test]
    fn physics_boundaries() {
        let now = t(12, 0);
        assert_eq!(
            fields_of(
                CycleFields {
                    peak_temperature_c: 300.0,
                    ..cycle()
                }
                .validate(now)
            ),
            ["peak_temperature_c"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    peak_temperature_c: 140.1,
                    ..cycle()
                }
                .validate(now)
            ),
            ["peak_temperature_c"]
        );
        // 10 % either side of saturation is accepted; just beyond is not.
        let sat = saturation_pressure_kpa(135.0);
        assert!(CycleFields {
            peak_pressure_kpa: sat * 1.099,
            ..cycle()
        }
        .validate(now)
        .is_empty());
        assert!(CycleFields {
            peak_pressure_kpa: sat * 0.901,
            ..cycle()
        }
        .validate(now)
        .is_empty());
        assert_eq!(
            fields_of(
                CycleFields {
                    peak_pressure_kpa: sat * 1.11,
                    ..cycle()
                }
                .validate(now)
            ),
            ["peak_pressure_kpa"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    peak_pressure_kpa: 101.0,
                    ..cycle()
                }
                .validate(now)
            ),
            ["peak_pressure_kpa"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    hold_minutes: 0.0,
                    ..cycle()
                }
                .validate(now)
            ),
            ["hold_minutes"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    finished_at: t(8, 59),
                    ..cycle()
                }
                .validate(now)
            ),
            ["finished_at"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    finished_at: t(12, 2),
                    ..cycle()
                }
                .validate(now)
            ),
            ["finished_at"]
        );
        assert!(CycleFields {
            finished_at: t(12, 1),
            ..cycle()
        }
        .validate(now)
        .is_empty());
        assert_eq!(
            fields_of(
                CycleFields {
                    hold_minutes: 41.0,
                    program: Program {
                        hold_minutes: 3.5,
                        ..cycle().program
                    },
                    ..cycle()
                }
                .validate(now)
            ),
            ["hold_minutes"]
        );
        assert_eq!(
            fields_of(
                CycleFields {
                    load_indicator: ChemicalIndicator {
                        indicator_type: 7,
                        passed: true
                    },
                    ..cycle()
                }
                .validate(now)
            ),
            ["load_indicator.type"]
        );
    }

    #[test]
    fn outcome_needs_every_indicator() {
        assert_eq!(
            cycle_outcome(true, true, [true, true], Biological::None),
            Outcome::Pass
        );
        assert_eq!(
            cycle_outcome(true, true, [true, false], Biological::None),
            Outcome::Fail
        );
        assert_eq!(
            cycle_outcome(false, true, [], Biological::None),
            Outcome::Fail
        );
        assert_eq!(
            cycle_outcome(true, false, [], Biological::None),
            Outcome::Fail
        );
        assert_eq!(
            cycle_outcome(true, true, [], Biological::Positive),
            Outcome::Fail
        );
        assert_eq!(
            cycle_outcome(true, true, [], Biological::Pending),
            Outcome::Pass
        );
    }

    #[test]
    fn gaps_in_cycle_numbers_are_named() {
        assert_eq!(cycle_number_gap(8, Some(7)), None);
        assert_eq!(cycle_number_gap(1, None), None);
        assert!(cycle_number_gap(9, Some(7))
            .unwrap()
            .contains("cycle number 8 is missing"));
        assert!(cycle_number_gap(12, Some(7)).unwrap().contains("8 to 11"));
    }

    fn read(h: u32, result: SporeResult) -> ReadTest {
        ReadTest {
            cycle_started_at: t(h, 0).naive_utc(),
            result,
            valid: true,
            empty_chamber: true,
        }
    }

    #[test]
    fn lookback_reaches_back_to_the_last_negative_and_ends_at_the_retest() {
        let tests = [
            read(8, SporeResult::Negative),
            read(11, SporeResult::Positive),
            read(15, SporeResult::Negative),
        ];
        let windows = lookback_windows(&tests);
        assert_eq!(windows.len(), 1);
        let w = &windows[0];
        assert!(
            !in_window(t(8, 0).naive_utc(), w),
            "the load of the last negative is fine"
        );
        assert!(in_window(t(9, 0).naive_utc(), w));
        assert!(in_window(t(11, 0).naive_utc(), w), "the failed load itself");
        assert!(in_window(t(14, 59).naive_utc(), w));
        assert!(
            !in_window(t(15, 0).naive_utc(), w),
            "the passing retest's load"
        );
        assert!(!in_window(t(16, 0).naive_utc(), w));
        // Without a retest the window stays open; an invalid negative does not close it.
        let open = lookback_windows(&[
            read(11, SporeResult::Positive),
            ReadTest {
                valid: false,
                ..read(15, SporeResult::Negative)
            },
        ]);
        assert_eq!(open, vec![(None, None)]);
    }

    #[test]
    fn loads_run_while_the_spore_test_is_overdue_wait_for_the_next_negative() {
        let tz = chrono_tz::Europe::London;
        let day = |d: u32, h: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 3, d)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
        };
        // Negative test in a load on 1 March; weekly: due by the end of 8 March (London time).
        let negatives = [day(1, 21)];
        assert!(!run_while_overdue(day(8, 23), &negatives, Some(7), tz));
        assert!(run_while_overdue(day(9, 8), &negatives, Some(7), tz));
        // The next negative test, run in a load after it, releases it.
        assert!(!run_while_overdue(
            day(9, 8),
            &[day(1, 21), day(9, 21)],
            Some(7),
            tz
        ));
        // Across the clock change (29 March): due by the end of 29 March, London time.
        let negatives = [day(22, 21)];
        assert!(!run_while_overdue(day(29, 22), &negatives, Some(7), tz));
        // 23:00 UTC on the 29th is already 00:00 on the 30th in London: overdue.
        assert!(run_while_overdue(day(29, 23), &negatives, Some(7), tz));
        assert!(run_while_overdue(day(30, 7), &negatives, Some(7), tz));
        // No periodic test in the profile, or no negative test yet: not judged here.
        assert!(!run_while_overdue(day(30, 7), &negatives, None, tz));
        assert!(!run_while_overdue(day(30, 7), &[], Some(7), tz));
    }

    #[test]
    fn pack_states() {
        let now = t(12, 0).naive_utc();
        let base = PackFacts {
            used: false,
            cycle_outcome: Outcome::Pass,
            cycle_started_at: t(9, 0).naive_utc(),
            biological: Biological::None,
            lookback: vec![],
            expires_at: Some(t(13, 0).naive_utc()),
            checks: LoadChecks::default(),
        };
        assert_eq!(pack_state(&base, now).0, PackState::Released);
        assert_eq!(
            pack_state(
                &PackFacts {
                    checks: LoadChecks {
                        run_while_overdue: true,
                        ..LoadChecks::default()
                    },
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Pending
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    biological: Biological::Pending,
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Pending
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    cycle_outcome: Outcome::Fail,
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Quarantined
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    lookback: vec![(None, None)],
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Quarantined
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    expires_at: Some(now),
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Expired
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    expires_at: None,
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Released
        );
        assert_eq!(
            pack_state(
                &PackFacts {
                    used: true,
                    cycle_outcome: Outcome::Fail,
                    ..base.clone()
                },
                now
            )
            .0,
            PackState::Used
        );
        // What the steriliser's record says holds or quarantines the pack too.
        let with = |checks: LoadChecks| {
            pack_state(
                &PackFacts {
                    checks,
                    ..base.clone()
                },
                now,
            )
            .0
        };
        assert_eq!(
            with(LoadChecks {
                unqualified: Some(Unqualified::NeverTested),
                ..LoadChecks::default()
            }),
            PackState::Pending
        );
        assert_eq!(
            with(LoadChecks {
                without_air_removal: true,
                ..LoadChecks::default()
            }),
            PackState::Quarantined
        );
        assert_eq!(
            with(LoadChecks {
                indicator_below: Some((4, 5)),
                ..LoadChecks::default()
            }),
            PackState::Quarantined
        );
    }

    #[test]
    fn a_load_is_judged_against_its_sterilisers_record() {
        let tz: chrono_tz::Tz = "Pacific/Auckland".parse().unwrap();
        let rules = LoadRules {
            spore_test_interval_days: Some(7),
            spore_test_after_events: true,
            daily_air_removal_test: true,
            load_indicator_min_type: Some(5),
            spore_test_operating_hours: None,
            requalification_spore_tests: 1,
            daily_automatic_control_test: false,
            weekly_air_leakage_test: false,
            tz,
        };
        let negative = |at: chrono::NaiveDateTime| ReadTest {
            cycle_started_at: at,
            result: SporeResult::Negative,
            valid: true,
            empty_chamber: true,
        };
        // 20:00 UTC on 19 November is 09:00 on the 20th in Auckland.
        let load = t(9, 0).naive_utc() - chrono::Duration::hours(13);
        let mut record = SteriliserRecord {
            pre_vacuum: true,
            reads: vec![],
            last_event: None,
            loads: vec![],
            ..SteriliserRecord::default()
        };
        let checks = load_checks(load, 5, &record, &rules);
        assert!(checks.unqualified.is_some(), "never spore-tested");
        assert!(checks.without_air_removal, "no air-removal test that day");
        record.reads = vec![negative(load - chrono::Duration::days(2))];
        // A pass at 08:00 Auckland (the same local day, before the load) clears it; one at
        // 11:00 UTC the day before (00:00 Auckland, the same local day) does too; one after the
        // load does not.
        record.air_removal_passes = vec![load + chrono::Duration::minutes(5)];
        assert!(load_checks(load, 5, &record, &rules).without_air_removal);
        record.air_removal_passes = vec![load - chrono::Duration::hours(1)];
        let checks = load_checks(load, 5, &record, &rules);
        assert_eq!(checks, LoadChecks::default());
        assert_eq!(
            load_checks(load, 4, &record, &rules).indicator_below,
            Some((4, 5))
        );
        // Relocated before the load: held until a test run after the move passes.
        record.last_event = Some(TestEvent {
            at: load - chrono::Duration::hours(2),
            what: "relocated to room 2".into(),
        });
        assert!(load_checks(load, 5, &record, &rules).unqualified.is_some());
        record
            .reads
            .push(negative(load + chrono::Duration::hours(1)));
        assert!(load_checks(load, 5, &record, &rules).unqualified.is_none());
    }

    #[test]
    fn the_day_of_a_load_is_its_local_day_even_when_it_lasts_25_hours() {
        let rules = LoadRules {
            spore_test_interval_days: None,
            spore_test_after_events: false,
            daily_air_removal_test: true,
            load_indicator_min_type: None,
            spore_test_operating_hours: None,
            requalification_spore_tests: 1,
            daily_automatic_control_test: true,
            weekly_air_leakage_test: true,
            tz: chrono_tz::Europe::London,
        };
        let utc = |d: u32, h: u32, m: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 10, d)
                .and_then(|d| d.and_hms_opt(h, m, 0))
                .unwrap()
        };
        // The clocks went back on 25 October 2026: 00:05 that day in London was 23:05 UTC on the
        // 24th, and 23:55 was 23:55 UTC, 24 h 50 min later, the same local day.
        let load = utc(25, 23, 55);
        let morning = utc(24, 23, 5);
        // Three years of earlier passes, none of them that day.
        let history: Vec<_> = (1..1100)
            .map(|d| morning - chrono::Duration::days(d))
            .collect();
        let mut record = SteriliserRecord {
            pre_vacuum: true,
            air_removal_passes: history.clone(),
            automatic_control_passes: history.clone(),
            air_leakage_passes: vec![load - chrono::Duration::days(8)],
            ..SteriliserRecord::default()
        };
        let checks = load_checks(load, 5, &record, &rules);
        assert!(checks.without_air_removal && checks.without_automatic_control);
        assert!(
            checks.without_air_leakage,
            "eight days back is not this week"
        );
        record.air_removal_passes.push(morning);
        record.automatic_control_passes.push(morning);
        // Six local days back (19 October, 00:30 BST) is still this week.
        record.air_leakage_passes.push(utc(18, 23, 30));
        let checks = load_checks(load, 5, &record, &rules);
        assert!(!checks.without_air_removal && !checks.without_automatic_control);
        assert!(!checks.without_air_leakage);
        // The evening before (23:55 BST on the 24th) is another local day.
        record.air_removal_passes = vec![utc(24, 22, 55)];
        assert!(load_checks(load, 5, &record, &rules).without_air_removal);
    }

    #[test]
    fn a_spore_test_falls_due_after_hours_of_operation_where_a_profile_counts_them() {
        let tz = chrono_tz::America::New_York;
        let rules = LoadRules {
            spore_test_interval_days: Some(90),
            spore_test_after_events: false,
            daily_air_removal_test: false,
            load_indicator_min_type: None,
            spore_test_operating_hours: Some(40),
            requalification_spore_tests: 1,
            daily_automatic_control_test: false,
            weekly_air_leakage_test: false,
            tz,
        };
        let start = t(9, 0).naive_utc() - chrono::Duration::days(30);
        let negative = ReadTest {
            cycle_started_at: start,
            result: SporeResult::Negative,
            valid: true,
            empty_chamber: true,
        };
        // Forty one-hour loads after the passing test: the next load waits for a new test.
        let loads: Vec<_> = (1..=40)
            .map(|i| {
                let s = start + chrono::Duration::hours(6 * i);
                (s, s + chrono::Duration::hours(1))
            })
            .collect();
        let record = SteriliserRecord {
            pre_vacuum: false,
            reads: vec![negative],
            last_event: None,
            loads: loads.clone(),
            ..SteriliserRecord::default()
        };
        let next = loads[39].1 + chrono::Duration::hours(1);
        assert!(load_checks(next, 5, &record, &rules).run_while_overdue);
        assert!(
            !load_checks(loads[39].0, 5, &record, &rules).run_while_overdue,
            "39 hours before it"
        );
        let days_only = LoadRules {
            spore_test_operating_hours: None,
            ..rules
        };
        assert!(!load_checks(next, 5, &record, &days_only).run_while_overdue);
    }

    #[test]
    fn requalification_needs_consecutive_empty_chamber_negatives_where_a_profile_asks() {
        let since = t(1, 0).naive_utc();
        let test = |h: i64, result: SporeResult, empty: bool| ReadTest {
            cycle_started_at: since + chrono::Duration::hours(h),
            result,
            valid: true,
            empty_chamber: empty,
        };
        use SporeResult::{Negative, Positive};
        // One passing test on any load, where one is enough.
        assert!(requalified_after(&[test(1, Negative, false)], since, 1));
        // Three: only empty-chamber tests count, and a failure starts the count again.
        let two = [test(1, Negative, true), test(2, Negative, true)];
        assert!(!requalified_after(&two, since, 3));
        let loaded_third = [two.as_slice(), &[test(3, Negative, false)]].concat();
        assert!(!requalified_after(&loaded_third, since, 3));
        let three = [two.as_slice(), &[test(3, Negative, true)]].concat();
        assert!(requalified_after(&three, since, 3));
        let broken = [
            test(1, Negative, true),
            test(2, Positive, true),
            test(3, Negative, true),
            test(4, Negative, true),
        ];
        assert!(!requalified_after(&broken, since, 3));
        // An invalid test (control did not grow) breaks the run too.
        let mut invalid = three.clone();
        invalid[1].valid = false;
        assert!(!requalified_after(&invalid, since, 3));
        // Tests on loads before the failure or repair do not count.
        let before = [
            test(-3, Negative, true),
            test(-2, Negative, true),
            test(1, Negative, true),
        ];
        assert!(!requalified_after(&before, since, 3));
    }

    #[test]
    fn htm_routine_tests_go_by_the_clinics_own_day_and_week() {
        for tz in [
            chrono_tz::Pacific::Auckland,
            chrono_tz::America::Los_Angeles,
        ] {
            let rules = LoadRules {
                spore_test_interval_days: None,
                spore_test_after_events: false,
                daily_air_removal_test: false,
                load_indicator_min_type: None,
                spore_test_operating_hours: None,
                requalification_spore_tests: 1,
                daily_automatic_control_test: true,
                weekly_air_leakage_test: true,
                tz,
            };
            // 08:00 local on 20 November, whatever the zone.
            let local = |d: u32, h: u32| {
                tz.with_ymd_and_hms(2026, 11, d, h, 0, 0)
                    .unwrap()
                    .naive_utc()
            };
            let load = local(20, 8);
            let mut record = SteriliserRecord {
                pre_vacuum: true,
                ..SteriliserRecord::default()
            };
            let checks = load_checks(load, 5, &record, &rules);
            assert!(checks.without_automatic_control && checks.without_air_leakage);
            // An automatic control test late the evening before (local) is another day's.
            record.automatic_control_passes = vec![local(19, 23)];
            assert!(load_checks(load, 5, &record, &rules).without_automatic_control);
            record.automatic_control_passes = vec![local(20, 0), local(20, 9)];
            assert!(!load_checks(load, 5, &record, &rules).without_automatic_control);
            // The air-leakage test: within the seven local days up to the load.
            record.air_leakage_passes = vec![local(13, 23)];
            assert!(
                load_checks(load, 5, &record, &rules).without_air_leakage,
                "{tz}"
            );
            record.air_leakage_passes = vec![local(14, 0)];
            assert!(
                !load_checks(load, 5, &record, &rules).without_air_leakage,
                "{tz}"
            );
            // A gravity steriliser has no vacuum to leak.
            record.pre_vacuum = false;
            record.air_leakage_passes.clear();
            assert!(!load_checks(load, 5, &record, &rules).without_air_leakage);
        }
    }

    #[test]
    fn pack_codes_are_short_and_forgiving() {
        for _ in 0..100 {
            let code = new_pack_code();
            assert_eq!(code.len(), 7);
            assert_eq!(normalise_pack_code(&code).as_deref(), Some(code.as_str()));
            assert_eq!(
                normalise_pack_code(&code.to_lowercase().replace('-', " ")).as_deref(),
                Some(code.as_str())
            );
        }
        assert_eq!(normalise_pack_code("ab0-o1l").as_deref(), Some("AB0-011"));
        assert_eq!(normalise_pack_code("AB0-01"), None);
        assert_eq!(normalise_pack_code("AB0-01U"), None);
    }

    #[test]
    fn initials_for_labels() {
        assert_eq!(initials("Sam Q. Tech"), "SQT");
        assert_eq!(initials("owner@ink.example"), "OIE");
        assert_eq!(initials("Zoë"), "Z");
    }
}

#[cfg(test)]
mod stored_readings {
    use super::*;

    #[test]
    fn only_an_exact_valid_negative_passes() {
        assert!(is_valid_negative("negative", "growth"));
        for (result, control) in [
            ("negative", "no_growth"),
            ("Negative", "growth"),
            ("", "growth"),
            ("positive", "growth"),
            ("negative", "grown"),
        ] {
            assert!(!is_valid_negative(result, control), "{result} {control}");
        }
        assert!(is_valid_positive("positive", "growth"));
        assert!(
            is_valid_positive("unreadable", "growth"),
            "unknown never reads as a pass"
        );
        assert!(!is_valid_positive("positive", "no_growth"));
        for r in [SporeResult::Negative, SporeResult::Positive] {
            assert_eq!(SporeResult::from_db(r.as_db()).ok(), Some(r));
        }
        for c in [ControlResult::Growth, ControlResult::NoGrowth] {
            assert_eq!(ControlResult::from_db(c.as_db()).ok(), Some(c));
        }
    }
}
