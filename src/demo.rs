//! A living demo clinic: months of a busy studio's records, written through the same use cases
//! the API calls, each on its day (see [`crate::clock::backdated`]), so its audit chain, its
//! compliance view as of any past day and its look-backs are all real.
//!
//! Also the data behind the compliance benchmark (`benches/compliance.rs`).

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::audit::{Actor, AuditContext};
use crate::auth::{password, Role};
use crate::clinics::model::NewClinic;
use crate::clinics::usecases::{self as clinics, NewMember, OwnerAccount};
use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult};
use crate::jurisdiction::profiles::Profiles;
use crate::sterilisation::model::CycleInput;
use crate::{clients, credentials, incidents, lots, sessions, sterilisation};

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub months: u32,
    pub sessions_per_day: u32,
    /// Loads of instruments a day (weekly spore-test loads come on top).
    pub cycles_per_day: u32,
    pub seed: u64,
    pub timezone: Tz,
    pub jurisdiction: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            months: 3,
            sessions_per_day: 40,
            cycles_per_day: 5,
            seed: 7,
            timezone: chrono_tz::Europe::London,
            jurisdiction: "baseline".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub role: Role,
    pub name: String,
    pub email: String,
    pub password: String,
    pub user_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct DemoCounts {
    pub days: u32,
    pub cycles: u32,
    pub packs: u32,
    pub spore_tests: u32,
    pub sessions: u32,
    pub clients: u32,
    pub lots: u32,
    pub incidents: u32,
}

#[derive(Debug, Clone)]
pub struct DemoClinic {
    pub clinic_id: String,
    pub name: String,
    pub accounts: Vec<DemoAccount>,
    pub failed_spore_test_id: String,
    pub recalled_lot_id: String,
    pub open_incident_id: String,
    pub main_steriliser_id: String,
    pub counts: DemoCounts,
}

/// Weekly tests ride in an evening load and are read the next morning, before the first load.
const SPORE_INCUBATION_HOURS: i64 = 10;

fn input<T: DeserializeOwned>(v: Value) -> AppResult<T> {
    serde_json::from_value(v).map_err(|e| AppError::internal(format!("demo input: {e}")))
}

fn id_of(v: &impl serde::Serialize) -> AppResult<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .ok_or_else(|| AppError::internal("demo: a record without an id"))
}

struct Gen<'a> {
    conn: &'a mut DbConn,
    profiles: &'a Profiles,
    jurisdiction: String,
    /// The day of each vacuum steriliser's last air-leakage test.
    air_leakage_tested: std::collections::HashMap<String, NaiveDate>,
    tz: Tz,
    clinic: String,
    owner: AuditContext,
    techs: Vec<(String, AuditContext)>,
    rng: StdRng,
    counts: DemoCounts,
    clients: Vec<String>,
    cartridge_lot: String,
    pigment_lot: String,
    lot_serial: u32,
    cycle_numbers: [i64; 2],
    /// What happens later, in time order: sessions ending, spore tests being read.
    pending: Vec<(NaiveDateTime, Later)>,
}

enum Later {
    Complete {
        tech: usize,
        session: String,
    },
    Read {
        test: String,
        positive: bool,
        then_return: Option<String>,
    },
}

fn user(id: &str) -> AuditContext {
    AuditContext {
        actor: Actor::User(id.to_owned()),
        request_id: None,
    }
}

impl Gen<'_> {
    /// A clinic-local wall-clock time of `day`, in UTC.
    fn at(&self, day: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
        let local = day.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default());
        self.tz
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.naive_utc())
            .unwrap_or(local)
    }

    /// Runs `f` as if at `t`, after whatever was due by then.
    fn on<R>(
        &mut self,
        t: NaiveDateTime,
        f: impl FnOnce(&mut Self) -> AppResult<R>,
    ) -> AppResult<R> {
        self.catch_up(t)?;
        crate::clock::backdated(t, || f(self))
    }

    fn catch_up(&mut self, t: NaiveDateTime) -> AppResult<()> {
        self.pending.sort_by_key(|(at, _)| *at);
        while self.pending.first().is_some_and(|(at, _)| *at <= t) {
            let (at, later) = self.pending.remove(0);
            let (conn, clinic, owner) = (&mut *self.conn, self.clinic.clone(), self.owner.clone());
            let profiles = self.profiles;
            match later {
                Later::Complete { tech, session } => {
                    let ctx = self.techs[tech].1.clone();
                    crate::clock::backdated(at, || {
                        sessions::usecases::complete(
                            conn,
                            &ctx,
                            &clinic,
                            &session,
                            input(json!({"notes": "aftercare explained and leaflet given"}))?,
                        )
                    })?;
                }
                Later::Read {
                    test,
                    positive,
                    then_return,
                } => {
                    let result = json!({"result": if positive { "positive" } else { "negative" },
                        "control_result": "growth", "read_at": db::to_utc(at).to_rfc3339()});
                    crate::clock::backdated(at + Duration::minutes(5), || {
                        crate::reactions::run(conn, profiles, &owner, |conn| {
                            sterilisation::usecases::record_spore_result(
                                conn,
                                &owner,
                                &clinic,
                                &test,
                                input(result)?,
                            )
                        })
                    })?;
                    if let Some(steriliser) = then_return {
                        crate::clock::backdated(at + Duration::minutes(15), || {
                            sterilisation::usecases::set_in_service(
                                conn,
                                profiles,
                                &owner,
                                &clinic,
                                &steriliser,
                                true,
                                "retest negative; look-back packs reprocessed and clients notified",
                            )
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    fn receive_lot(&mut self, day: NaiveDate, kind: &str) -> AppResult<String> {
        self.lot_serial += 1;
        let (manufacturer, product, gtin, method) = if kind == "needle_cartridge" {
            (
                "Cheyenne",
                "Craft Cartridge 3RL 0.25",
                Some("09506000134352"),
                "ethylene_oxide",
            )
        } else {
            ("Scalp Ink Co", "SMP Pigment Dark Brown 3", None, "gamma")
        };
        let body = json!({
            "kind": kind, "manufacturer": manufacturer, "product_name": product, "gtin": gtin,
            "lot_number": format!("{}{:05}", if kind == "pigment" { "PG" } else { "CT" }, self.lot_serial),
            "expiry_date": (day + Duration::days(730)).to_string(),
            "sterilisation_method": method, "supplier": "Studio Supply Ltd",
            "received_on": day.to_string(), "quantity_received": 500,
        });
        let (conn, owner, clinic) = (&mut *self.conn, self.owner.clone(), self.clinic.clone());
        let lot = lots::usecases::receive_lot(conn, &owner, &clinic, input(body)?)?;
        self.counts.lots += 1;
        id_of(&lot)
    }

    fn credentials_for(&mut self, user_id: &str, day: NaiveDate) -> AppResult<()> {
        let bodies = [
            json!({"user_id": user_id, "kind": "bloodborne_pathogen_training", "issuer": "Safe Ink Training",
                   "number": format!("BBP-{}", self.rng.gen_range(10000..99999)), "issued_on": (day - Duration::days(20)).to_string()}),
            json!({"user_id": user_id, "kind": "hepatitis_b", "hepatitis_b_status": "vaccinated"}),
            json!({"user_id": user_id, "kind": "licence", "issuer": "Local authority",
                   "number": format!("BA-{}", self.rng.gen_range(1000..9999)),
                   "issued_on": (day - Duration::days(20)).to_string(), "expires_on": (day + Duration::days(345)).to_string()}),
        ];
        for body in bodies {
            let (conn, owner, clinic) = (&mut *self.conn, self.owner.clone(), self.clinic.clone());
            let c =
                credentials::usecases::submit(conn, &owner, Role::Owner, &clinic, input(body)?)?;
            credentials::usecases::verify(conn, &owner, &clinic, &id_of(&c)?)?;
        }
        Ok(())
    }

    /// Training and licences are renewed yearly.
    fn renewals(&mut self, user_id: &str, day: NaiveDate) -> AppResult<()> {
        for kind in ["bloodborne_pathogen_training", "licence"] {
            let mut body = json!({"user_id": user_id, "kind": kind, "issuer": "Safe Ink Training",
                "number": format!("R-{}", self.rng.gen_range(10000..99999)), "issued_on": day.to_string()});
            if kind == "licence" {
                body["expires_on"] = json!((day + Duration::days(365)).to_string());
            }
            let (conn, owner, clinic) = (&mut *self.conn, self.owner.clone(), self.clinic.clone());
            let c =
                credentials::usecases::submit(conn, &owner, Role::Owner, &clinic, input(body)?)?;
            credentials::usecases::verify(conn, &owner, &clinic, &id_of(&c)?)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn cycle(
        &mut self,
        steriliser: &str,
        which: usize,
        start: NaiveDateTime,
        gravity: bool,
        packs: u32,
    ) -> AppResult<(String, Vec<String>, NaiveDateTime)> {
        self.cycle_numbers[which] += 1;
        let (program, peak, pressure, hold, minutes) = if gravity {
            (
                json!({"name": "121 °C gravity", "temperature_c": 121.0, "hold_minutes": 30.0}),
                122.0,
                213.0,
                31.0,
                60,
            )
        } else {
            (
                json!({"name": "134 °C wrapped", "temperature_c": 134.0, "hold_minutes": 3.5}),
                135.0,
                313.0,
                4.0,
                40,
            )
        };
        let finish = start + Duration::minutes(minutes);
        let operator = self.techs[self.rng.gen_range(0..self.techs.len())]
            .0
            .clone();
        let body = json!({
            "steriliser_id": steriliser, "cycle_number": self.cycle_numbers[which], "program": program,
            "started_at": db::to_utc(start).to_rfc3339(), "finished_at": db::to_utc(finish).to_rfc3339(),
            "peak_temperature_c": peak, "peak_pressure_kpa": pressure, "hold_minutes": hold,
            "operator_id": operator,
            "load_indicator": {"type": 5, "passed": true},
            "packs": (0..packs).map(|_| json!({"contents": "SMP kit: grip, tip, tray"})).collect::<Vec<_>>(),
        });
        let cycle = self.on(finish + Duration::minutes(2), |g| {
            let (conn, owner, clinic) = (&mut *g.conn, g.owner.clone(), g.clinic.clone());
            sterilisation::usecases::create_cycle(
                conn,
                g.profiles,
                &owner,
                &clinic,
                CycleInput::from_json(body)?,
            )
        })?;
        self.counts.cycles += 1;
        self.counts.packs += packs;
        let v = serde_json::to_value(&cycle).map_err(AppError::internal)?;
        let codes = v["packs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p["code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok((id_of(&cycle)?, codes, finish))
    }

    /// A spore test in a load of its own, read [`SPORE_INCUBATION_HOURS`] later; a retest
    /// (`then_return`) returns the steriliser to service once read.
    fn spore_test(
        &mut self,
        steriliser: &str,
        which: usize,
        start: NaiveDateTime,
        gravity: bool,
        positive: bool,
        then_return: bool,
    ) -> AppResult<String> {
        let (cycle, _, finish) = self.cycle(steriliser, which, start, gravity, 0)?;
        let hours = SPORE_INCUBATION_HOURS;
        let body = json!({"steriliser_id": steriliser, "cycle_id": cycle, "bi_product": "Attest 1292",
            "bi_lot": format!("BI{}", start.date().format("%y%m")), "placed_at": db::to_utc(start).to_rfc3339(),
            "incubation": {"kind": "in_house", "hours": hours as f64}});
        let test = self.on(finish + Duration::minutes(3), |g| {
            let (conn, owner, clinic) = (&mut *g.conn, g.owner.clone(), g.clinic.clone());
            sterilisation::usecases::create_spore_test(conn, &owner, &clinic, input(body)?)
        })?;
        let id = id_of(&test)?;
        self.pending.push((
            start + Duration::hours(hours),
            Later::Read {
                test: id.clone(),
                positive,
                then_return: then_return.then(|| steriliser.to_owned()),
            },
        ));
        self.counts.spore_tests += 1;
        Ok(id)
    }

    /// A passing routine test of a steriliser: `bowie_dick` (air removal), `automatic_control` or
    /// `air_leakage`.
    fn routine_test(&mut self, steriliser: &str, t: NaiveDateTime, kind: &str) -> AppResult<()> {
        let body = json!({"steriliser_id": steriliser, "performed_at": db::to_utc(t).to_rfc3339(),
            "test_type": kind, "passed": true});
        self.on(t + Duration::minutes(20), |g| {
            let (conn, owner, clinic) = (&mut *g.conn, g.owner.clone(), g.clinic.clone());
            sterilisation::usecases::create_air_removal(conn, &owner, &clinic, input(body)?)
        })?;
        Ok(())
    }

    /// The morning's tests before a steriliser's first load, as the profile asks: the air-removal
    /// test (vacuum sterilisers), the automatic control test, and once a week the air-leakage
    /// test (vacuum sterilisers).
    fn morning_tests(&mut self, steriliser: &str, t: NaiveDateTime, vacuum: bool) -> AppResult<()> {
        let st = self
            .profiles
            .get(&self.jurisdiction)
            .map(|p| p.sterilisation.clone());
        let asks = |f: fn(&crate::jurisdiction::profiles::SterilisationRules) -> Option<bool>| {
            st.as_ref().and_then(f) == Some(true)
        };
        if vacuum && asks(|s| s.daily_air_removal_test.value) {
            self.routine_test(steriliser, t, "bowie_dick")?;
        }
        if asks(|s| s.daily_automatic_control_test.value) {
            self.routine_test(steriliser, t + Duration::minutes(1), "automatic_control")?;
        }
        let day = t.date();
        let leakage_due = self
            .air_leakage_tested
            .get(steriliser)
            .is_none_or(|last| (day - *last).num_days() >= 7);
        if vacuum && asks(|s| s.weekly_air_leakage_test.value) && leakage_due {
            self.routine_test(steriliser, t + Duration::minutes(2), "air_leakage")?;
            self.air_leakage_tested.insert(steriliser.to_owned(), day);
        }
        Ok(())
    }

    fn session(&mut self, t: NaiveDateTime, tech: usize, pack: &str) -> AppResult<String> {
        let new_client = self.clients.is_empty() || self.rng.gen_bool(0.4);
        let client = if new_client {
            let n = self.clients.len() + 1;
            let body = json!({"name": format!("Client {n:05}"), "contact": format!("+44 7700 9{:05}", n % 100_000),
                "date_of_birth": format!("19{}-0{}-1{}", self.rng.gen_range(60..99), self.rng.gen_range(1..9), self.rng.gen_range(0..9))});
            let ctx = self.techs[tech].1.clone();
            let c = self.on(t, |g| {
                clients::usecases::create(&mut *g.conn, &ctx, &g.clinic.clone(), input(body)?)
            })?;
            let id = id_of(&c)?;
            self.clients.push(id.clone());
            self.counts.clients += 1;
            id
        } else {
            self.clients[self.rng.gen_range(0..self.clients.len())].clone()
        };
        let (ctx, tech_id) = (self.techs[tech].1.clone(), self.techs[tech].0.clone());
        let (cartridge, pigment) = (self.cartridge_lot.clone(), self.pigment_lot.clone());
        let pack = pack.to_owned();
        let id = self.on(t + Duration::minutes(1), |g| {
            let (clinic, profiles) = (g.clinic.clone(), g.profiles);
            let conn = &mut *g.conn;
            db::write_transaction(conn, |conn| {
                let trace = sessions::usecases::create(
                    conn,
                    &ctx,
                    &clinic,
                    input(json!({"client_id": client, "technician_id": tech_id, "station": format!("Chair {}", tech + 1),
                        "procedure": "SMP session, crown and hairline", "planned_at": db::to_utc(t).to_rfc3339()}))?,
                )?;
                let trace = serde_json::to_value(&trace).map_err(AppError::internal)?;
                let id = trace["id"].as_str().unwrap_or_default().to_owned();
                let answers: Vec<Value> = trace["checklist"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .map(|line| {
                                let value = match line["key"].as_str().unwrap_or_default() {
                                    "cartridge_lot" => json!(cartridge),
                                    "surface_disinfectant" => json!("Mikrozid AF liquid"),
                                    "contact_time" => json!(60),
                                    _ => json!(true),
                                };
                                json!({"item_key": line["key"], "value": value})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                sessions::usecases::answer(conn, &ctx, &clinic, &id, input(json!({"answers": answers}))?)?;
                sessions::usecases::add_pack(conn, profiles, &ctx, &clinic, &id, input(json!({"code": pack}))?)?;
                for lot in [&cartridge, &pigment] {
                    sessions::usecases::add_lot(conn, &ctx, &clinic, &id, input(json!({"lot_id": lot}))?)?;
                }
                Ok::<_, AppError>(id)
            })
        })?;
        let profiles = self.profiles;
        self.on(t + Duration::minutes(4), |g| {
            let clinic = g.clinic.clone();
            sessions::usecases::start(
                &mut *g.conn,
                profiles,
                &ctx,
                Role::Technician,
                &clinic,
                &id,
                input(json!({}))?,
            )
        })?;
        self.pending.push((
            t + Duration::minutes(30),
            Later::Complete {
                tech,
                session: id.clone(),
            },
        ));
        self.counts.sessions += 1;
        Ok(id)
    }

    fn incident(&mut self, t: NaiveDateTime, body: Value) -> AppResult<String> {
        let ctx = self.techs[0].1.clone();
        let profiles = self.profiles;
        let incident = self.on(t + Duration::minutes(15), |g| {
            let clinic = g.clinic.clone();
            incidents::usecases::report(&mut *g.conn, profiles, &ctx, &clinic, input(body)?)
        })?;
        self.counts.incidents += 1;
        id_of(&incident)
    }

    fn follow_up(&mut self, t: NaiveDateTime, id: &str, kind: &str, note: &str) -> AppResult<()> {
        let profiles = self.profiles;
        let (owner, body) = (
            self.owner.clone(),
            json!({"kind": kind, "note": note, "done_at": db::to_utc(t).to_rfc3339()}),
        );
        self.on(t + Duration::minutes(5), |g| {
            let clinic = g.clinic.clone();
            incidents::usecases::add_follow_up(
                &mut *g.conn,
                profiles,
                &owner,
                &clinic,
                id,
                input(body)?,
            )
        })?;
        Ok(())
    }
}

fn random_password(rng: &mut StdRng) -> String {
    const WORDS: &[&str] = &[
        "amber", "basil", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper",
        "kelp", "lumen", "maple", "nectar", "orbit", "pepper", "quartz", "raven", "sable",
        "tundra",
    ];
    (0..4)
        .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join("-")
        + &rng.gen_range(10..99).to_string()
}

/// Creates the demo clinic and `months` of records up to yesterday (clinic-local).
pub fn generate(
    conn: &mut DbConn,
    profiles: &Profiles,
    opts: &DemoOptions,
) -> AppResult<DemoClinic> {
    if opts.months == 0 || opts.months > 120 {
        return Err(AppError::invalid("months", "must be between 1 and 120"));
    }
    let tz = opts.timezone;
    let today = crate::clock::now().with_timezone(&tz).date_naive();
    let first = today
        .checked_sub_months(chrono::Months::new(opts.months))
        .ok_or_else(|| AppError::invalid("months", "reaches too far back"))?;
    let days = (today - first).num_days();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    // The accounts' emails carry a fresh tag, so demos can be created side by side.
    let tag = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let name = format!("Demo SMP Studio {tag}");

    let people = [
        (Role::Owner, "Olivia Owner", "owner"),
        (Role::Technician, "Tariq Technician", "tariq"),
        (Role::Technician, "Tess Technician", "tess"),
        (Role::Inspector, "Ines Inspector", "inspector"),
    ];
    let mut accounts: Vec<DemoAccount> = people
        .iter()
        .map(|(role, name, local)| DemoAccount {
            role: *role,
            name: (*name).to_owned(),
            email: format!("{local}.{tag}@demo.aseptic.example"),
            password: random_password(&mut rng),
            user_id: String::new(),
        })
        .collect();
    let hashes = accounts
        .iter()
        .map(|a| password::hash(&a.password).map_err(AppError::internal))
        .collect::<AppResult<Vec<_>>>()?;

    // The clinic opens the day before its first working day, to commission its sterilisers:
    // no load is released until a steriliser has passed a spore test.
    let commissioning = first - Duration::days(1);
    let opened = tz
        .from_local_datetime(&commissioning.and_hms_opt(6, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.naive_utc())
        .unwrap_or_default();
    let clinic_id = crate::clock::backdated(opened, || -> AppResult<String> {
        let (row, owner) = clinics::create_clinic(
            conn,
            &AuditContext::operator(),
            profiles,
            &NewClinic {
                name: name.clone(),
                timezone: tz.name().to_owned(),
                jurisdiction: opts.jurisdiction.clone(),
                address: Some("12 Demo Street, London".into()),
                registration_number: Some(format!("SKP-{tag}")),
                owner_works_on_clients: true,
            },
            &accounts[0].email,
            OwnerAccount::New {
                display_name: accounts[0].name.clone(),
                password_hash: hashes[0].clone(),
            },
        )?;
        accounts[0].user_id = owner.id;
        let owner_ctx = user(&accounts[0].user_id);
        for (i, account) in accounts.iter_mut().enumerate().skip(1) {
            let (_, u) = clinics::add_member(
                conn,
                &owner_ctx,
                &row.id,
                NewMember {
                    email: account.email.clone(),
                    display_name: Some(account.name.clone()),
                    role: account.role,
                    password_hash: Some(hashes[i].clone()),
                    works_on_clients: true,
                },
            )?;
            account.user_id = u.id;
        }
        Ok(row.id)
    })?;

    let owner = user(&accounts[0].user_id);
    let techs: Vec<(String, AuditContext)> = accounts[1..3]
        .iter()
        .map(|a| (a.user_id.clone(), user(&a.user_id)))
        .collect();
    let mut g = Gen {
        conn,
        profiles,
        jurisdiction: opts.jurisdiction.clone(),
        air_leakage_tested: std::collections::HashMap::new(),
        tz,
        clinic: clinic_id.clone(),
        owner: owner.clone(),
        techs,
        rng,
        counts: DemoCounts::default(),
        clients: Vec::new(),
        cartridge_lot: String::new(),
        pigment_lot: String::new(),
        lot_serial: 0,
        cycle_numbers: [0, 0],
        pending: Vec::new(),
    };

    // Set-up on the first morning: sterilisers, credentials, stock.
    let setup_at = opened + Duration::minutes(10);
    let (main, backup) = g.on(setup_at, |g| {
        let (conn, owner, clinic) = (&mut *g.conn, g.owner.clone(), g.clinic.clone());
        let a = sterilisation::usecases::create_steriliser(conn, &owner, &clinic, input(json!({
            "make": "W&H", "model": "Lisa 517", "serial_number": format!("LISA-{tag}"), "kind": "pre_vacuum",
            "chamber_litres": 17.0, "location": "Decontamination room"}))?)?;
        let b = sterilisation::usecases::create_steriliser(conn, &owner, &clinic, input(json!({
            "make": "Tuttnauer", "model": "2340M", "serial_number": format!("TUTT-{tag}"), "kind": "gravity",
            "chamber_litres": 20.0, "location": "Decontamination room (backup)"}))?)?;
        Ok((id_of(&a)?, id_of(&b)?))
    })?;
    // Commissioning: a spore test in an empty load of each steriliser, read by the evening.
    db::begin_write(&mut *g.conn)?;
    let result = (|| {
        g.morning_tests(&main, g.at(commissioning, 7, 0), true)?;
        g.morning_tests(&backup, g.at(commissioning, 7, 0), false)?;
        g.spore_test(&main, 0, g.at(commissioning, 7, 30), false, false, false)?;
        g.spore_test(&backup, 1, g.at(commissioning, 7, 45), true, false, false)?;
        g.catch_up(g.at(commissioning, 20, 0))
    })();
    db::finish(&mut *g.conn, result)?;
    let staff: Vec<String> = accounts[..3].iter().map(|a| a.user_id.clone()).collect();
    g.on(setup_at + Duration::minutes(5), |g| {
        for u in &staff {
            g.credentials_for(u, commissioning)?;
        }
        g.cartridge_lot = g.receive_lot(commissioning, "needle_cartridge")?;
        g.pigment_lot = g.receive_lot(commissioning, "pigment")?;
        Ok(())
    })?;

    let spore_days = 7;
    // The failed test: a weekly test day about two thirds of the way through.
    let fail_day = ((days * 2 / 3) / spore_days).max(1) * spore_days;
    // A cartridge lot in use for a couple of weeks is recalled a third of the way through.
    let recall_day = (days / 3 + 14).min(days - 3).max(1);
    let packs_per_load = opts.sessions_per_day.div_ceil(opts.cycles_per_day.max(1));
    let plan = Plan {
        opts,
        days,
        fail_day,
        recall_day,
        spore_days,
        packs_per_load,
        main: &main,
        backup: &backup,
        staff: &staff,
    };
    let mut milestones = Milestones::default();

    for d in 0..days {
        let day = first + Duration::days(d);
        // The morning after the failed test the main steriliser is quarantined: the backup
        // runs the day's loads while the main one is retested.
        // Each day in one transaction: an interrupted run leaves whole days.
        db::begin_write(&mut *g.conn)?;
        let result = one_day(&mut g, d, day, &plan, &mut milestones);
        db::finish(&mut *g.conn, result)?;
    }
    // Whatever fell due by now (this morning's readings, say) has happened; later ones wait.
    let now = crate::clock::now().naive_utc();
    db::begin_write(&mut *g.conn)?;
    let result = g.catch_up(now);
    db::finish(&mut *g.conn, result)?;
    // The inspector may look for the next 90 days.
    crate::inspectors::usecases::grant(
        &mut *g.conn,
        &owner,
        &clinic_id,
        input(
            json!({"email": accounts[3].email, "purpose": "demo inspection",
            "valid_until": crate::db::to_utc(now + Duration::days(90)).to_rfc3339()}),
        )?,
        "http://127.0.0.1:8080",
    )?;
    let counts = g.counts;
    // Months of records arrived at once: the planners learn of them now, not an hour from now.
    crate::db::after_bulk_load(conn);
    Ok(DemoClinic {
        clinic_id,
        name,
        accounts,
        failed_spore_test_id: milestones.failed_spore_test,
        recalled_lot_id: milestones.recalled_lot,
        open_incident_id: milestones.open_incident,
        main_steriliser_id: main,
        counts,
    })
}

/// What every day of the demo follows.
struct Plan<'a> {
    opts: &'a DemoOptions,
    days: i64,
    /// The weekly spore test that reads positive.
    fail_day: i64,
    /// The day a cartridge lot is recalled.
    recall_day: i64,
    spore_days: i64,
    packs_per_load: u32,
    main: &'a str,
    backup: &'a str,
    staff: &'a [String],
}

/// The records a newcomer is pointed at.
#[derive(Default)]
struct Milestones {
    failed_spore_test: String,
    recalled_lot: String,
    open_incident: String,
}

/// Day `d` of the demo: renewals and stock, the morning tests, the day's loads and the sessions
/// that use their packs, the weekly spore tests, and the day's planned events.
fn one_day(
    g: &mut Gen<'_>,
    d: i64,
    day: NaiveDate,
    plan: &Plan<'_>,
    milestones: &mut Milestones,
) -> AppResult<()> {
    let Plan {
        opts,
        days,
        fail_day,
        recall_day,
        spore_days,
        packs_per_load,
        main,
        backup,
        staff,
    } = *plan;
    // The morning after the failed test the main steriliser is quarantined: the backup runs the
    // day's loads while the main one is retested.
    let out_of_service = d == fail_day + 1;
    // Yearly renewals, a month before the anniversary.
    if d > 0 && d % 335 == 0 {
        let at = g.at(day, 6, 30);
        g.on(at, |g| {
            for u in staff {
                g.renewals(u, day)?;
            }
            Ok(())
        })?;
    }
    // New stock monthly.
    if d > 0 && d % 30 == 0 {
        let at = g.at(day, 6, 40);
        g.on(at, |g| {
            g.cartridge_lot = g.receive_lot(day, "needle_cartridge")?;
            g.pigment_lot = g.receive_lot(day, "pigment")?;
            Ok(())
        })?;
    }
    let (steriliser, which, gravity) = if out_of_service {
        (backup, 1, true)
    } else {
        (main, 0, false)
    };
    let at = g.at(day, 7, 0);
    g.morning_tests(steriliser, at, !gravity)?;
    if out_of_service {
        // Requalification: three consecutive empty-chamber retests where the jurisdiction asks
        // for them (CDC, AAMI ST79), one elsewhere; the last one returns it to service.
        let retests = g
            .profiles
            .get(&opts.jurisdiction)
            .and_then(|p| p.sterilisation.requalification_spore_tests.value)
            .unwrap_or(1)
            .max(1);
        for i in 0..retests {
            let at = g.at(day, 7, 10) + Duration::minutes(50 * i64::from(i));
            g.spore_test(main, 0, at, false, false, i + 1 == retests)?;
        }
    }
    // The day's loads, then the sessions that use their packs.
    let mut packs: Vec<(NaiveDateTime, String)> = Vec::new();
    let mut start = g.at(day, 7, 30);
    for _ in 0..opts.cycles_per_day {
        let (_, codes, finish) = g.cycle(steriliser, which, start, gravity, packs_per_load)?;
        packs.extend(codes.into_iter().map(|c| (finish, c)));
        start = finish + Duration::minutes(10);
    }
    let open = g.at(day, 8, 30);
    let slot = Duration::minutes(12 * 60 / i64::from(opts.sessions_per_day.max(1)));
    for (i, (ready, code)) in packs
        .into_iter()
        .enumerate()
        .take(opts.sessions_per_day as usize)
    {
        let t = (open + slot * i as i32).max(ready + Duration::minutes(5));
        g.session(t, i % 2, &code)?;
    }
    // Weekly spore tests, in evening loads of their own.
    if d % spore_days == 0 {
        let at = g.at(day, 21, 0);
        if !out_of_service {
            let positive = d == fail_day;
            let id = g.spore_test(main, 0, at, false, positive, false)?;
            if positive {
                milestones.failed_spore_test = id;
            }
        }
        g.spore_test(backup, 1, at + Duration::minutes(5), true, false, false)?;
    }
    if d == recall_day {
        let at = g.at(day, 21, 30);
        let lot = g.cartridge_lot.clone();
        g.on(at, |g| {
            let (conn, owner, clinic) = (&mut *g.conn, g.owner.clone(), g.clinic.clone());
            let recall = input(json!({
                "reason": "manufacturer recall: sterility of the lot cannot be assured",
                "reference": format!("FSN-{}", day.format("%Y-%m"))}))?;
            crate::reactions::run(conn, g.profiles, &owner, |conn| {
                lots::usecases::recall_lot(conn, &owner, &clinic, &lot, &recall)
            })
        })?;
        milestones.recalled_lot = lot.clone();
        let replacement = g.at(day, 21, 45);
        g.on(replacement, |g| {
            g.cartridge_lot = g.receive_lot(day, "needle_cartridge")?;
            let (conn, owner, clinic) = (&mut *g.conn, g.owner.clone(), g.clinic.clone());
            let withdrawal = input(json!({
                "reason": "remaining cartridges returned to the supplier under the recall"}))?;
            lots::usecases::withdraw_lot(conn, &owner, &clinic, &lot, &withdrawal)?;
            Ok(())
        })?;
    }
    // A client's reaction every six weeks or so, reported and closed.
    if d % 45 == 20 {
        let at = g.at(day, 16, 0);
        let client = g.clients.last().cloned();
        let id = g.incident(at, json!({"kind": "adverse_reaction", "occurred_at": db::to_utc(at - Duration::days(2)).to_rfc3339(),
            "location": "Chair 1", "people": [{"client_id": client, "role": "affected"}],
            "description": "redness and swelling two days after the session", "immediate_actions": "advised a GP visit; photos taken"}))?;
        let done = g.at(day + Duration::days(1), 10, 0);
        g.follow_up(
            done,
            &id,
            "authority_report",
            "reported to the environmental health officer by email",
        )?;
        let profiles = g.profiles;
        let owner = g.owner.clone();
        g.on(done + Duration::minutes(30), |g| {
            let clinic = g.clinic.clone();
            incidents::usecases::close(
                &mut *g.conn,
                profiles,
                &owner,
                &clinic,
                &id,
                input(json!({"summary": "resolved with antihistamines; no infection"}))?,
            )
        })?;
    }
    // A needle-stick two days before today, evaluated the next day, still open: the written
    // opinion is due within 15 days of the evaluation.
    if d == days - 2 {
        let at = g.at(day, 15, 10);
        let tech = staff[1].clone();
        let id = g.incident(at, json!({"kind": "sharps_injury", "occurred_at": db::to_utc(at).to_rfc3339(),
            "location": "Chair 1", "people": [{"user_id": tech, "role": "injured"}],
            "description": "needle-stick while breaking down the station", "immediate_actions": "washed, reported, sent to occupational health",
            "sharps": {"device_type": "tattoo cartridge needle", "device_brand": "Cheyenne Craft", "work_area": "Chair 1", "how_it_happened": "recapping a used cartridge"}}))?;
        g.follow_up(
            at + Duration::hours(1),
            &id,
            "evaluation_offered",
            "occupational health appointment booked",
        )?;
        g.follow_up(
            g.at(day + Duration::days(1), 11, 0),
            &id,
            "evaluation_completed",
            "seen at occupational health; bloods taken",
        )?;
        milestones.open_incident = id;
    }
    g.counts.days += 1;
    Ok(())
}
