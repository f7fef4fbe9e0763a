//! The crash tests: the real `homeward` binary is killed with SIGKILL while 200 missed deadlines fall
//! due, and started again on the same database; once a quarter of the way in, and 20 times at random
//! moments. The database is the timer and the outbox, so every visit must end up with exactly one
//! alert, the leader's device with exactly one step-1 message per alert and the DSL's with exactly one
//! step-2 message per alert: nothing lost, nothing repeated. Meanwhile phones keep sending check-ins,
//! resending whatever got no answer, as the client does: every event the server acknowledged is stored.
//!
//! The binary is found next to this test's directory (`target/debug/homeward`, built by
//! `cargo nextest run --workspace` or `cargo build -p homeward-server --bin homeward`), or at
//! `HOMEWARD_BIN`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, stream};
use homeward_shared::api::{
    AlertKind, ClientEvent, ClientEventKind, CreateUserRequest, EscalationPlanRequest, PushSubscriptionKeys,
    PushSubscriptionRequest,
};
use homeward_shared::client::{ApiClient, ClientError};
use homeward_shared::{EscalationStep, Recipient, Role};
use homeward_tests::private_postgres::PrivatePostgres;
use homeward_tests::push_service::{PushService, Received};
use homeward_tests::{Backend, PASSWORD, TestDatabase, free_port, low_risk_visit, now_ms, on_both_databases};
use sqlx::{Connection, Row};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

const VISITS: usize = 200;
/// Staff members sharing the visits between them.
const WORKERS: usize = 4;
/// Setup requests in flight at once.
const CONCURRENCY: usize = 16;
/// The first deadline falls this long after the visits are started, the last one `Kills::spread` later.
const FIRST_DEADLINE: Duration = Duration::seconds(15);
/// Long visits whose workers keep checking in throughout, across the kills.
const CHATTY_VISITS: usize = WORKERS;
/// A visit cannot be shorter than this; its start is dated this long before the deadline wanted.
const VISIT_MINUTES: i64 = 5;
const START_TIMEOUT: StdDuration = StdDuration::from_secs(30);
/// After the restart, everything due must have arrived within this (a delivery claimed by the killed
/// process is taken up again when its 30 s lease lapses).
const SETTLE_TIMEOUT: StdDuration = StdDuration::from_secs(60);
/// Settings the binary reads from the environment: cleared so the caller's shell cannot leak in.
const SETTINGS_ENV: [&str; 10] = [
    "HOMEWARD_BIND",
    "DATABASE_URL",
    "HOMEWARD_DATA_DIR",
    "HOMEWARD_ACCESS_TOKEN_TTL_SECS",
    "HOMEWARD_OWNERSHIP_TIMEOUT_SECS",
    "HOMEWARD_PUSH_TIMEOUT_SECS",
    "HOMEWARD_POLL_MS",
    "HOMEWARD_MAX_BODY_KB",
    "HOMEWARD_ADMIN_PASSWORD",
    "HOMEWARD_USER_PASSWORD",
];

on_both_databases!(
    a_crash_while_deadlines_fall_due_loses_nothing_and_repeats_nothing,
    twenty_kills_at_random_moments_lose_nothing_and_repeat_nothing
);

/// Scale-out: three processes on one PostgreSQL share the deadlines (each claims due timers with
/// `for update skip locked`); one is killed a quarter of the way in and not restarted: the other two
/// carry on, and every step still fires and arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_the_deadlines_and_losing_one_loses_nothing() {
    crash_run(Backend::Postgres, Kills::OneOfThree).await
}

/// PostgreSQL itself restarts a quarter of the way in (on a private server, since the shared one serves
/// every other test): the server reconnects on its own, no acknowledged check-in is lost, nothing
/// arrives twice, and every deadline that fell during the outage fires once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_run_loses_nothing_and_repeats_nothing() {
    crash_run(Backend::Postgres, Kills::DatabaseRestart).await
}

/// How long the database is down in the restart test.
const DATABASE_OUTAGE: StdDuration = StdDuration::from_secs(5);
/// A deadline that fell during the outage fires this soon after the database is back, at most: the
/// connection pool notices the restart, the scheduler catches up on what fell due meanwhile.
const CATCH_UP: Duration = Duration::seconds(10);

async fn a_crash_while_deadlines_fall_due_loses_nothing_and_repeats_nothing(backend: Backend) {
    crash_run(backend, Kills::OnceAQuarterIn).await
}

async fn twenty_kills_at_random_moments_lose_nothing_and_repeat_nothing(backend: Backend) {
    crash_run(backend, Kills::AtRandom(20)).await
}

#[derive(Debug, Clone, Copy)]
enum Kills {
    /// Once a quarter of the leader's step-1 messages have arrived (mid-run, however busy the machine).
    OnceAQuarterIn,
    /// This many times, each 0.3 to 2.3 s after the server came back.
    AtRandom(usize),
    /// Three processes serve at once; one of them is killed once a quarter of the leader's step-1
    /// messages have arrived, and stays down.
    OneOfThree,
    /// Nothing is killed: the database stops for `DATABASE_OUTAGE` once a quarter of the leader's
    /// step-1 messages have arrived, then starts again.
    DatabaseRestart,
}

impl Kills {
    /// Deadlines fall over this long: through all the kills.
    fn spread(self) -> Duration {
        match self {
            Kills::OnceAQuarterIn | Kills::OneOfThree => Duration::seconds(8),
            // Some deadlines fall before the outage, some during it and some after.
            Kills::DatabaseRestart => Duration::seconds(16),
            Kills::AtRandom(_) => Duration::seconds(24),
        }
    }
}

async fn crash_run(backend: Backend, kills: Kills) {
    let private = matches!(kills, Kills::DatabaseRestart).then(PrivatePostgres::start);
    let db = match &private {
        Some(server) => TestDatabase::on_postgres_server(server.url("postgres")).await,
        None => TestDatabase::new(backend).await,
    };
    let bin = server_binary();
    let tag = Uuid::new_v4().simple().to_string()[..8].to_string();

    // A school made with the admin command line, then served.
    let admin_email = format!("admin-{tag}@crash.test");
    let out = run_cli(
        &bin,
        &db,
        &[
            "create-school",
            "--name",
            "Crash School",
            "--admin-email",
            &admin_email,
            "--admin-name",
            "Ada Admin",
            "--admin-password",
            PASSWORD,
        ],
    )
    .await;
    assert!(out.contains("created school Crash School with id "), "{out}");
    let server = ServerProcess::start(&bin, &db).await;
    // With several processes, the visits are planned and started through each in turn, as behind a
    // load balancer; each process's scheduler claims due timers from the shared database.
    let mut others = Vec::new();
    if matches!(kills, Kills::OneOfThree) {
        others.push(ServerProcess::start(&bin, &db).await);
        others.push(ServerProcess::start(&bin, &db).await);
    }
    let bases: Vec<String> = std::iter::once(&server).chain(&others).map(|p| p.base.clone()).collect();
    let through =
        |api: &ApiClient, i: usize| ApiClient::new(&bases[i % bases.len()]).with_token(api.token().expect("signed in"));
    let anonymous = ApiClient::new(&server.base);
    let (admin, _) = anonymous.login(&admin_email, PASSWORD).await.expect("the admin signs in");

    // A leader, a DSL and a few staff, created by the admin over the API.
    let add = |local: String, roles: Vec<Role>, line_manager_id: Option<Uuid>| {
        let admin = admin.clone();
        let anonymous = anonymous.clone();
        async move {
            let email = format!("{local}@crash.test");
            let user = admin
                .create_user(&CreateUserRequest {
                    email: email.clone(),
                    name: local.clone(),
                    password: PASSWORD.into(),
                    roles,
                    line_manager_id,
                    phone: None,
                })
                .await
                .unwrap_or_else(|e| panic!("create {email}: {e}"));
            let (api, _) = anonymous.login(&email, PASSWORD).await.unwrap_or_else(|e| panic!("sign in {email}: {e}"));
            (user.id, api)
        }
    };
    let (leader_id, leader) = add(format!("leader-{tag}"), vec![Role::Leader], None).await;
    let (_, dsl) = add(format!("dsl-{tag}"), vec![Role::Dsl], None).await;
    let mut workers = Vec::new();
    for n in 0..WORKERS {
        workers.push(add(format!("staff{n}-{tag}"), vec![Role::Staff], Some(leader_id)).await.1);
    }

    // A push service that checks the server's VAPID signatures; the leader's and the DSL's browsers.
    let key = leader.vapid_public_key().await.expect("the VAPID public key").public_key;
    let push = PushService::start(key).await;
    let leader_device = push.subscribe();
    let dsl_device = push.subscribe();
    for (api, device) in [(&leader, &leader_device), (&dsl, &dsl_device)] {
        api.subscribe_push(&PushSubscriptionRequest {
            endpoint: device.endpoint.clone(),
            keys: PushSubscriptionKeys { p256dh: device.p256dh.clone(), auth: device.auth.clone() },
        })
        .await
        .expect("subscribe a browser");
    }

    // +0 s the leaders, +2 s the DSL; the repeat is an hour away, out of the test's reach.
    let plan = admin
        .create_escalation_plan(&EscalationPlanRequest {
            name: "Crash plan".into(),
            steps: vec![
                EscalationStep {
                    delay_seconds: 0,
                    recipients: vec![Recipient::Role { role: Role::Leader }],
                    channels: vec![],
                    instruction: "Phone the worker now.".into(),
                },
                EscalationStep {
                    delay_seconds: 2,
                    recipients: vec![Recipient::Role { role: Role::Dsl }],
                    channels: vec![],
                    instruction: "Call 999 and give the visit details.".into(),
                },
            ],
            repeat_every_seconds: Some(3600),
            is_default: false,
        })
        .await
        .expect("create the plan");

    // 200 five-minute visits, planned now.
    let planned: Vec<(usize, Result<Uuid, _>)> = stream::iter(0..VISITS)
        .map(|i| {
            let api = through(&workers[i % WORKERS], i);
            let mut visit = low_risk_visit();
            visit.escalation_plan_id = Some(plan.id);
            visit.check_in_interval_minutes = None;
            visit.expected_duration_minutes = VISIT_MINUTES;
            visit.planned_start = Utc::now();
            async move { (i, api.plan_session(&visit).await.map(|s| s.id)) }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut sessions = vec![Uuid::nil(); VISITS];
    for (i, id) in planned {
        sessions[i] = id.unwrap_or_else(|e| panic!("plan visit {i}: {e}; server log:\n{}", tail(&server.stderr())));
    }

    // Each started so that its deadline falls FIRST_DEADLINE..FIRST_DEADLINE + SPREAD from now: the
    // start is dated five minutes before the deadline (the server allows for phones' clock skew).
    let t0 = now_ms();
    let deadline_of = |i: usize| {
        t0 + FIRST_DEADLINE + Duration::milliseconds(kills.spread().num_milliseconds() * i as i64 / (VISITS as i64 - 1))
    };
    let started = stream::iter(0..VISITS)
        .map(|i| {
            let api = through(&workers[i % WORKERS], i + 1);
            let start = ClientEvent {
                id: Uuid::new_v4(),
                at: deadline_of(i) - Duration::minutes(VISIT_MINUTES),
                kind: ClientEventKind::Start { location: None },
            };
            let session = sessions[i];
            async move { (i, api.send_events(session, &[start]).await) }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for (i, outcome) in started {
        outcome.unwrap_or_else(|e| panic!("start visit {i}: {e}; server log:\n{}", tail(&server.stderr())));
    }
    let started = Utc::now();
    println!("{backend:?}: 200 visits started in {} ms", (started - t0).num_milliseconds());
    assert!(
        started < deadline_of(0),
        "starting the visits took {} ms, past the first deadline: the test's timing assumptions fail",
        (started - t0).num_milliseconds()
    );

    // Phones checking in throughout; the server's address changes with each restart. With several
    // processes they talk to one that stays up (a load balancer stops sending to a dead one).
    let base = Arc::new(Mutex::new(others.first().map_or(&server, |p| p).base.clone()));
    let chatter = Chatter::start(&plan_long_visits(&workers, plan.id).await, base.clone());

    let mut server = server;
    let mut kill_log = Vec::new();
    match kills {
        Kills::OnceAQuarterIn => {
            let leader_id = leader_device.id.clone();
            push.wait_for(StdDuration::from_secs(60), |r| distinct_steps(r, &leader_id, 1).len() >= VISITS / 4).await;
            let (restarted, kill, old_stderr) = kill_and_restart(server, &bin, &db, &base).await;
            let leader_before = distinct_steps(&push.received(), &leader_device.id, 1).len();
            println!(
                "{backend:?}: killed {} ms after the first deadline, when the push service had {leader_before} of \
                 {VISITS} step-1 messages (leader)",
                (kill.killed_at - deadline_of(0)).num_milliseconds()
            );
            assert!(
                0 < leader_before && leader_before < VISITS,
                "the kill should come while the leader's messages arrive ({leader_before} of {VISITS} had); server log:\n{}",
                tail(&old_stderr)
            );
            server = restarted;
            kill_log.push(kill);
        }
        Kills::DatabaseRestart => {
            let database = private.as_ref().expect("a private PostgreSQL");
            let leader_id = leader_device.id.clone();
            push.wait_for(StdDuration::from_secs(60), |r| distinct_steps(r, &leader_id, 1).len() >= VISITS / 4).await;
            let stopped_at = Utc::now();
            tokio::task::block_in_place(|| database.stop());
            let leader_before = distinct_steps(&push.received(), &leader_device.id, 1).len();
            tokio::time::sleep(DATABASE_OUTAGE).await;
            tokio::task::block_in_place(|| database.start_again());
            let back_at = Utc::now();
            println!(
                "{backend:?}: the database was down from {} ms to {} ms after the first deadline; the push service \
                 had {leader_before} of {VISITS} step-1 messages (leader) when it stopped",
                (stopped_at - deadline_of(0)).num_milliseconds(),
                (back_at - deadline_of(0)).num_milliseconds()
            );
            assert!(
                0 < leader_before && leader_before < VISITS,
                "the database should stop while the leader's messages arrive ({leader_before} of {VISITS} had)"
            );
            assert!(
                back_at < deadline_of(VISITS - 1),
                "deadlines should still be falling when the database is back, so some fall during the outage"
            );
            kill_log.push(Kill { killed_at: stopped_at, restarted_at: back_at });
        }
        Kills::OneOfThree => {
            let leader_id = leader_device.id.clone();
            push.wait_for(StdDuration::from_secs(60), |r| distinct_steps(r, &leader_id, 1).len() >= VISITS / 4).await;
            let killed_at = Utc::now();
            let old_stderr = server.kill9().await;
            let leader_before = distinct_steps(&push.received(), &leader_device.id, 1).len();
            println!(
                "{backend:?}: one of three processes killed {} ms after the first deadline, when the push service \
                 had {leader_before} of {VISITS} step-1 messages (leader); the other two carry on",
                (killed_at - deadline_of(0)).num_milliseconds()
            );
            assert!(
                0 < leader_before && leader_before < VISITS,
                "the kill should come while the leader's messages arrive ({leader_before} of {VISITS} had); server log:\n{}",
                tail(&old_stderr)
            );
            server = others.remove(0);
            // Nothing restarts: the survivors were running all along.
            kill_log.push(Kill { killed_at, restarted_at: killed_at });
        }
        Kills::AtRandom(times) => {
            for _ in 0..times {
                let pause = 300 + (Uuid::new_v4().as_u128() % 2000) as u64;
                tokio::time::sleep(StdDuration::from_millis(pause)).await;
                let (restarted, kill, _) = kill_and_restart(server, &bin, &db, &base).await;
                server = restarted;
                kill_log.push(kill);
            }
            let leader_at_last = distinct_steps(&push.received(), &leader_device.id, 1).len();
            println!(
                "{backend:?}: {times} kills from {} ms to {} ms after the first deadline; the leader had {leader_at_last} \
                 of {VISITS} step-1 messages after the last",
                (kill_log[0].killed_at - deadline_of(0)).num_milliseconds(),
                (kill_log[times - 1].killed_at - deadline_of(0)).num_milliseconds(),
            );
        }
    }
    let last_kill = kill_log.last().expect("killed at least once");
    let (killed_at, restarted_at) = (last_kill.killed_at, last_kill.restarted_at);
    let leader = ApiClient::new(&server.base).with_token(leader.token().expect("a token"));

    // Wait until every message has arrived and the outbox holds nothing in flight or waiting.
    let wait_until = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    let mut outstanding = i64::MAX;
    loop {
        let received = push.received();
        let leader_got = distinct_steps(&received, &leader_device.id, 1).len();
        let dsl_got = distinct_steps(&received, &dsl_device.id, 2).len();
        if leader_got == VISITS && dsl_got == VISITS {
            outstanding = outbox_outstanding(&db.url).await;
            if outstanding == 0 {
                break;
            }
        }
        if tokio::time::Instant::now() >= wait_until {
            let refused: Vec<_> = push.attempts().into_iter().filter(|a| a.status != 201).collect();
            panic!(
                "{SETTLE_TIMEOUT:?} after the restart: the leader has {leader_got} and the DSL {dsl_got} of {VISITS} \
                 alerts; {outstanding} deliveries outstanding; the outbox: {}; refused by the push service: \
                 {refused:?}; server log:\n{}",
                outbox_by_status(&db.url).await,
                tail(&server.stderr())
            );
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let settled = Utc::now();
    println!(
        "{backend:?}: after the restart everything had arrived and the outbox was empty in {} ms",
        (settled - restarted_at).num_milliseconds()
    );

    // Every visit has exactly one alert, which fired both steps and recorded both deliveries as sent.
    let alerts = leader.alerts("all").await.expect("the alerts");
    let session_set: BTreeSet<Uuid> = sessions.iter().copied().collect();
    let mut alerts_per_session: BTreeMap<Uuid, usize> = BTreeMap::new();
    for alert in &alerts {
        *alerts_per_session.entry(alert.session_id).or_default() += 1;
    }
    let without: Vec<_> = session_set.iter().filter(|s| !alerts_per_session.contains_key(s)).collect();
    let doubled: Vec<_> = alerts_per_session.iter().filter(|(_, n)| **n > 1).collect();
    assert!(without.is_empty(), "{} visits have no alert: {without:?}", without.len());
    assert!(doubled.is_empty(), "visits with more than one alert: {doubled:?}");
    assert_eq!(alerts.len(), VISITS, "one alert per visit and no other");
    assert_eq!(count(&db.url, "select count(*) from alerts").await, VISITS as i64, "alerts in the database");
    if matches!(kills, Kills::DatabaseRestart) {
        // Each alert was raised when its deadline fell, or, for those that fell while the database was
        // down, soon after it came back: late by no more than the outage.
        let index: BTreeMap<Uuid, usize> = sessions.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        let outage = restarted_at - killed_at;
        let mut latest = Duration::zero();
        let mut during = 0;
        for alert in &alerts {
            let deadline = deadline_of(index[&alert.session_id]);
            let late_by = alert.raised_at - deadline;
            latest = latest.max(late_by);
            if deadline >= killed_at && deadline < restarted_at {
                during += 1;
            }
            assert!(
                late_by <= outage + CATCH_UP,
                "alert {} was raised {} ms after its deadline; the database was down for {} ms",
                alert.id,
                late_by.num_milliseconds(),
                outage.num_milliseconds()
            );
        }
        assert!(during > 0, "no deadline fell while the database was down");
        println!(
            "{backend:?}: {during} deadlines fell while the database was down for {} ms; the latest alert was raised \
             {} ms after its deadline",
            outage.num_milliseconds(),
            latest.num_milliseconds()
        );
    }
    let mut late = 0;
    let mut after_lease = 0;
    for alert in &alerts {
        assert_eq!(alert.kind, AlertKind::MissedDeadline);
        assert_eq!(alert.steps_fired, 2, "alert {} fired {} steps", alert.id, alert.steps_fired);
        let steps: Vec<_> = alert.deliveries.iter().filter(|d| d.purpose == "step").collect();
        assert_eq!(steps.len(), 2, "alert {}: one delivery per step: {:#?}", alert.id, alert.deliveries);
        assert!(steps.iter().all(|d| d.status == "sent"), "alert {}: {:#?}", alert.id, alert.deliveries);
        for d in steps.iter().filter(|d| d.created_at < killed_at && d.sent_at.is_some_and(|t| t > restarted_at)) {
            late += 1;
            // Claimed by the killed process: taken up again only when its lease lapsed.
            if d.sent_at.is_some_and(|t| t - killed_at > Duration::seconds(20)) {
                after_lease += 1;
            }
        }
    }
    println!(
        "{backend:?}: {late} deliveries due before the kill were sent after the restart, {after_lease} of them only \
         after the killed process's claim (lease) lapsed"
    );

    // Each device got exactly one message per alert for its step, and nothing else, except for what the
    // deliverer promises a crash can repeat: a message in flight at the kill (accepted by the push
    // service, not yet recorded as sent), sent once more after the restart.
    let received = push.received();
    let alert_ids: BTreeSet<Uuid> = alerts.iter().map(|a| a.id).collect();
    // Stopping the database kills no server process: nothing can be in flight in a dead process, so
    // no repeat is excused.
    let excusing = if matches!(kills, Kills::DatabaseRestart) { &[][..] } else { &kill_log[..] };
    let leader_check = exactly_once(&received, &leader_device.id, 1, &alert_ids, excusing);
    let dsl_check = exactly_once(&received, &dsl_device.id, 2, &alert_ids, excusing);
    let refused: Vec<_> = push.attempts().into_iter().filter(|a| a.status != 201).collect();
    assert!(refused.is_empty(), "the push service refused some messages: {refused:#?}");
    assert!(
        leader_check.problems.is_empty() && dsl_check.problems.is_empty(),
        "not exactly once:\nleader (step 1): {:#?}\nDSL (step 2): {:#?}",
        leader_check.problems,
        dsl_check.problems
    );
    let repeated = leader_check.extra_copies + dsl_check.extra_copies;
    println!(
        "{backend:?}: repeated because they were in flight at the kill: {repeated} message(s) {:?}",
        leader_check.in_flight.iter().chain(&dsl_check.in_flight).collect::<Vec<_>>()
    );
    let others: Vec<_> = received.iter().filter(|m| m.payload["purpose"] != "step").collect();
    assert!(others.is_empty(), "only step messages were due: {others:#?}");
    assert_eq!(received.len(), 2 * VISITS + repeated, "one message per alert to each of the two devices");

    // Every check-in the server acknowledged, across all the kills, is stored.
    let acknowledged = chatter.stop().await;
    assert!(acknowledged.len() >= 20, "the phones got only {} check-ins through", acknowledged.len());
    let stored = stored_events(&db.url, &acknowledged).await;
    let lost: Vec<_> = acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged check-ins are not stored: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    println!("{backend:?}: {} acknowledged check-ins, all stored", acknowledged.len());
}

/// SIGKILL the server and start it again on the same database; the phones are told its new address.
async fn kill_and_restart(
    server: ServerProcess,
    bin: &PathBuf,
    db: &TestDatabase,
    base: &Mutex<String>,
) -> (ServerProcess, Kill, String) {
    let killed_at = Utc::now();
    let old_stderr = server.kill9().await;
    let server = ServerProcess::start(bin, db).await;
    let restarted_at = Utc::now();
    *base.lock().unwrap_or_else(|e| e.into_inner()) = server.base.clone();
    (server, Kill { killed_at, restarted_at }, old_stderr)
}

/// One hour-long visit per worker, started now: its deadline is far away, so it raises no alert.
async fn plan_long_visits(workers: &[ApiClient], plan: Uuid) -> Vec<(ApiClient, Uuid)> {
    let mut visits = Vec::new();
    for api in workers.iter().take(CHATTY_VISITS) {
        let mut visit = low_risk_visit();
        // The crash plan reaches the subscribed leader and DSL: no safety-net notice either.
        visit.escalation_plan_id = Some(plan);
        visit.check_in_interval_minutes = None;
        visit.planned_start = Utc::now();
        let id = api.plan_session(&visit).await.expect("plan a long visit").id;
        let start = ClientEvent { id: Uuid::new_v4(), at: now_ms(), kind: ClientEventKind::Start { location: None } };
        api.send_events(id, &[start]).await.expect("start a long visit");
        visits.push((api.clone(), id));
    }
    visits
}

/// Phones sending a check-in every 50 ms to the current server, each resent until it is answered.
struct Chatter {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Uuid>>,
}

impl Chatter {
    fn start(visits: &[(ApiClient, Uuid)], base: Arc<Mutex<String>>) -> Chatter {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let visits = visits.to_vec();
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut unanswered: Option<(usize, ClientEvent)> = None;
            let mut n = 0;
            while !stopping.load(std::sync::atomic::Ordering::SeqCst) || unanswered.is_some() {
                let (i, event) = unanswered.take().unwrap_or_else(|| {
                    n += 1;
                    (n % visits.len(), ClientEvent { id: Uuid::new_v4(), at: now_ms(), kind: ClientEventKind::CheckIn })
                });
                let (api, session) = &visits[i];
                let current = base.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let api = ApiClient::new(&current).with_token(api.token().expect("a token"));
                match api.send_events(*session, std::slice::from_ref(&event)).await {
                    Ok(_) => acknowledged.push(event.id),
                    // The database is down: the server says so (503), and the phone keeps the event.
                    Err(ClientError::Api { status, .. }) if status.as_u16() == 503 => unanswered = Some((i, event)),
                    Err(ClientError::Api { status, body }) => panic!("a check-in was refused: {status} {body:?}"),
                    // The server is down: the phone keeps the event and sends it again.
                    Err(ClientError::Transport(_)) => unanswered = Some((i, event)),
                }
                tokio::time::sleep(StdDuration::from_millis(50)).await;
            }
            acknowledged
        });
        Chatter { stop, task }
    }

    /// Stop once the last unanswered check-in got through; the ids the server acknowledged.
    async fn stop(self) -> Vec<Uuid> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.task.await.expect("the phones' task")
    }
}

async fn stored_events(url: &str, ids: &[Uuid]) -> BTreeSet<Uuid> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect to the test database");
    let rows = sqlx::query("select event_id from session_events").fetch_all(&mut conn).await.expect("read events");
    let _ = conn.close().await;
    let wanted: BTreeSet<Uuid> = ids.iter().copied().collect();
    rows.iter().filter_map(|r| r.get::<String, _>(0).parse().ok()).filter(|id| wanted.contains(id)).collect()
}

/// When the server was killed (just before the signal), seen dead, and started again.
struct Kill {
    killed_at: DateTime<Utc>,
    restarted_at: DateTime<Utc>,
}

/// A message the push service accepted this long before the kill may still have been unrecorded when
/// the process died: the deliverer records each result right after its send returns.
const IN_FLIGHT: Duration = Duration::milliseconds(500);
/// A request the killed process sent before it died, recorded by the push service this long after.
const RECORDED_AFTER_KILL: Duration = Duration::seconds(1);

#[derive(Default)]
struct Check {
    /// Anything other than one message per alert (or a repeat of one in flight at the kill).
    problems: Vec<String>,
    /// Messages accepted at a kill and sent once more after the restart, with when (ms from the kill).
    in_flight: Vec<String>,
    /// How many copies those are beyond the first.
    extra_copies: usize,
}

/// The alert ids of the messages to `subscription` for `step` (1-based), each once.
fn distinct_steps(received: &[Received], subscription: &str, step: i64) -> BTreeSet<String> {
    received
        .iter()
        .filter(|m| m.subscription_id == subscription && m.payload["purpose"] == "step" && m.payload["step"] == step)
        .map(|m| m.payload["alert_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Check "exactly one message for `step` per alert" on this device.
fn exactly_once(
    received: &[Received],
    subscription: &str,
    step: i64,
    alerts: &BTreeSet<Uuid>,
    kills: &[Kill],
) -> Check {
    let mut times: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    let mut check = Check::default();
    for m in received.iter().filter(|m| m.subscription_id == subscription) {
        if m.payload["purpose"] != "step" || m.payload["step"] != step {
            check.problems.push(format!("unexpected message {}", m.payload));
            continue;
        }
        times.entry(m.payload["alert_id"].as_str().unwrap_or_default().to_string()).or_default().push(m.at);
    }
    let first_kill = kills.first().map_or_else(Utc::now, |k| k.killed_at);
    let from_kill = |t: &DateTime<Utc>| format!("{:+} ms", (*t - first_kill).num_milliseconds());
    // A copy is excused only when the one before it reached the push service from a process that was
    // being killed (from just before the kill until its successor started, no other server runs; a
    // request the dying process had already sent can be recorded by the push service, busy decrypting,
    // up to RECORDED_AFTER_KILL after the kill, even when the successor started faster than that) and
    // the copy came from the successor.
    let repeated_by_a_kill = |first: &DateTime<Utc>, again: &DateTime<Utc>| {
        kills.iter().any(|k| {
            *first >= k.killed_at - IN_FLIGHT
                && *first <= k.restarted_at.max(k.killed_at + RECORDED_AFTER_KILL)
                && *again >= k.restarted_at
        })
    };
    for alert in alerts {
        let mut copies = times.get(&alert.to_string()).cloned().unwrap_or_default();
        copies.sort();
        match copies.as_slice() {
            [] => check.problems.push(format!("alert {alert}: no message")),
            [_] => {}
            copies if copies.windows(2).all(|w| repeated_by_a_kill(&w[0], &w[1])) => {
                let at: Vec<_> = copies.iter().map(from_kill).collect();
                check.in_flight.push(format!("alert {alert} at {}", at.join(" and ")));
                check.extra_copies += copies.len() - 1;
            }
            copies => check.problems.push(format!(
                "alert {alert}: {} messages, at {} from the first kill (kills at {})",
                copies.len(),
                copies.iter().map(from_kill).collect::<Vec<_>>().join(", "),
                kills.iter().map(|k| from_kill(&k.killed_at)).collect::<Vec<_>>().join(", ")
            )),
        }
    }
    for alert in times.keys() {
        if !alerts.iter().any(|a| a.to_string() == *alert) {
            check.problems.push(format!("a message for alert {alert}, which does not exist"));
        }
    }
    check
}

/// Deliveries the server still has to send (waiting, or claimed and not yet recorded).
async fn outbox_outstanding(url: &str) -> i64 {
    count(url, "select count(*) from deliveries where status in ('pending', 'sending')").await
}

/// Deliveries counted by step, status and the last answer, for failure messages.
async fn outbox_by_status(url: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect to the test database");
    let rows = sqlx::query(
        "select coalesce(step_index, -1), status, coalesce(last_status_code, 0), coalesce(last_error, ''), count(*) \
         from deliveries group by step_index, status, last_status_code, last_error",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read the outbox");
    let _ = conn.close().await;
    rows.iter()
        .map(|r| {
            let (step, status, code, error, n): (i64, String, i64, String, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            format!("step {step} {status} {code} {error}: {n}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn count(url: &str, sql: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect to the test database");
    let n: i64 = sqlx::query(sql).fetch_one(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0);
    let _ = conn.close().await;
    n
}

/// The last lines of a server log, for failure messages.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The `homeward` binary: `HOMEWARD_BIN`, or `target/<profile>/homeward` next to this test's `deps`.
fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HOMEWARD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(format!("homeward{}", std::env::consts::EXE_SUFFIX)))
        .expect("the test runs from target/<profile>/deps");
    if !bin.is_file() {
        panic!(
            "the homeward binary is not at {}: build it first with `cargo build -p homeward-server --bin homeward` \
             (`cargo nextest run --workspace` builds it), or point HOMEWARD_BIN at it",
            bin.display()
        );
    }
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(bin_time), Some(exe_time)) = (modified(&bin), modified(&exe))
        && bin_time < exe_time
    {
        println!("note: {} is older than this test; rebuild it if the server changed", bin.display());
    }
    bin
}

fn command(bin: &PathBuf, db: &TestDatabase) -> Command {
    let mut command = Command::new(bin);
    for var in SETTINGS_ENV {
        command.env_remove(var);
    }
    command
        .env("DATABASE_URL", &db.url)
        .env("HOMEWARD_DATA_DIR", &db.data_dir)
        // The tests' push service runs on loopback: allowed only through this setting, meant for tests.
        .env("HOMEWARD_PUSH_ALLOW_HOSTS", "127.0.0.1")
        .current_dir(&db.data_dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Run an admin command to its end; its standard output.
async fn run_cli(bin: &PathBuf, db: &TestDatabase, args: &[&str]) -> String {
    let output = tokio::time::timeout(StdDuration::from_secs(120), command(bin, db).args(args).output())
        .await
        .unwrap_or_else(|_| panic!("homeward {args:?} did not finish in two minutes"))
        .expect("run the homeward binary");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "homeward {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `homeward serve` as a child process. Dropping it kills it (SIGKILL), so a failing test leaves
/// nothing running.
struct ServerProcess {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Start on a free port and wait until it says it listens.
    async fn start(bin: &PathBuf, db: &TestDatabase) -> ServerProcess {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut command = command(bin, db);
            command.env("HOMEWARD_BIND", format!("127.0.0.1:{port}")).stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = command.spawn().expect("start the homeward binary");
            let stderr = Arc::new(Mutex::new(String::new()));
            let mut err_pipe = child.stderr.take().expect("stderr");
            let sink = stderr.clone();
            tokio::spawn(async move {
                let mut chunk = vec![0u8; 8192];
                while let Ok(n) = err_pipe.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            });
            let (ready_tx, ready) = tokio::sync::oneshot::channel();
            let expected = format!("listening on http://127.0.0.1:{port}");
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            tokio::spawn(async move {
                let mut ready_tx = Some(ready_tx);
                // Keep reading after the banner so the server never blocks on a full pipe.
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains(&expected)
                        && let Some(tx) = ready_tx.take()
                    {
                        let _ = tx.send(());
                    }
                }
            });
            match tokio::time::timeout(START_TIMEOUT, ready).await {
                Ok(Ok(())) => return ServerProcess { child, base: format!("http://127.0.0.1:{port}"), stderr },
                _ => {
                    let _ = child.kill().await;
                    tokio::time::sleep(StdDuration::from_millis(100)).await;
                    last = stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    if !last.contains("in use") {
                        break;
                    }
                }
            }
        }
        panic!("the server did not start:\n{last}");
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `kill -9` and wait for the process to be gone; what it had logged.
    async fn kill9(mut self) -> String {
        // tokio's `Child::kill` is SIGKILL on Unix.
        self.child.kill().await.expect("SIGKILL the server");
        self.stderr()
    }
}
