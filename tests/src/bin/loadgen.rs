//! Load generator for the escalation engine: it starts the real `homeward` binary on a fresh SQLite file
//! or a fresh PostgreSQL database with a local Web Push service, and measures
//!
//! 1. deadline to push: N active visits whose deadlines are spread over a window W (each visit's start
//!    is dated five minutes before the deadline wanted, within the server's clock-skew allowance), a
//!    one-step plan (+0 s to the leaders) and one leader device; for each visit, the time from its
//!    deadline to the push service accepting the leader's message;
//! 2. panic to push: panics on active visits while a background task sends location pings; for each,
//!    the time from sending the panic to the push service accepting the leader's first message.
//!
//! Build both binaries first, then run, e.g.
//!
//! ```text
//! cargo build --release -p homeward-tests --bin loadgen -p homeward-server --bin homeward
//! target/release/loadgen --database sqlite --sessions 1000 --window 30
//! target/release/loadgen --database postgres --sessions 10000 --window 60
//! ```
//!
//! PostgreSQL is reached at `HOMEWARD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! where a database with a random name is created and dropped again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Duration, Utc};
use clap::{Parser, ValueEnum};
use futures::{StreamExt, stream};
use homeward_shared::api::{
    ClientEvent, ClientEventKind, CreateUserRequest, EscalationPlanRequest, LocationPing, PushSubscriptionKeys,
    PushSubscriptionRequest,
};
use homeward_shared::client::ApiClient;
use homeward_shared::{Coordinates, EscalationStep, Recipient, Role};
use homeward_tests::bench::{ServerProcess, Stats, ms, run_cli, server_binary, stats};
use homeward_tests::push_service::{PushService, Received};
use homeward_tests::{Backend, PASSWORD, TestDatabase, low_risk_visit, now_ms};
use sqlx::{Connection, Row};
use uuid::Uuid;

/// A visit cannot be shorter than this; a start dated this long before a moment makes that moment the deadline.
const VISIT_MINUTES: i64 = 5;
const PLACE: Coordinates = Coordinates { latitude: 51.5, longitude: -0.12 };

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Database {
    Sqlite,
    Postgres,
}

#[derive(Debug, Parser)]
#[command(about = "Measure deadline-to-push and panic-to-push latency against a real homeward server.")]
struct Args {
    /// The `homeward` binary. Default: `homeward` next to this program (target/release/homeward).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "sqlite")]
    database: Database,
    /// Active visits whose deadlines lapse.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Seconds over which the deadlines are spread.
    #[arg(long, default_value_t = 30)]
    window: u64,
    /// Staff members sharing the visits.
    #[arg(long, default_value_t = 20)]
    workers: usize,
    /// Setup requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Panics to measure (0 skips the panic measurement).
    #[arg(long, default_value_t = 200)]
    panics: usize,
    /// Milliseconds between panics.
    #[arg(long, default_value_t = 100)]
    panic_interval_ms: u64,
    /// Location pings per second sent in the background during the panic measurement.
    #[arg(long, default_value_t = 50.0)]
    ping_rate: f64,
    /// `RUST_LOG` for the server (its log goes to a file). Default: the server's own (info).
    #[arg(long)]
    server_log_level: Option<String>,
    /// Run `ANALYZE` once the visits are planned and again once they are started, as autovacuum would
    /// have in a database that grew over days rather than in a minute. Without it PostgreSQL plans some
    /// statements on a fresh database as if the tables were empty.
    #[arg(long)]
    analyze: bool,
    /// Longest wait for the pushes after the last deadline or panic, in seconds.
    #[arg(long, default_value_t = 180)]
    settle_timeout: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    sqlx::any::install_default_drivers();
    // On Ctrl-C or SIGTERM the benchmark is dropped: the server is killed and the database dropped.
    tokio::select! {
        result = bench(args) => result,
        _ = stop_signal() => bail!("interrupted"),
    }
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    ensure!(args.sessions > 0 && args.workers > 0 && args.concurrency > 0, "sessions, workers and concurrency > 0");
    let bin = server_binary(args.server_bin.clone())?;
    let backend = match args.database {
        Database::Sqlite => Backend::Sqlite,
        Database::Postgres => Backend::Postgres,
    };
    let db = TestDatabase::new(backend).await;
    let log_path = std::env::temp_dir().join(format!("homeward-loadgen-{}.log", Uuid::new_v4().simple()));
    println!("server: {}  database: {backend:?}  server log: {}", bin.display(), log_path.display());

    let admin_email = "admin@loadgen.test";
    run_cli(
        &bin,
        &db,
        &[
            "create-school",
            "--name",
            "Load School",
            "--admin-email",
            admin_email,
            "--admin-name",
            "Load Admin",
            "--admin-password",
            PASSWORD,
        ],
    )
    .await?;
    let level = args.server_log_level.as_deref();
    // The push service below runs on loopback: allowed only through this setting, meant for tests.
    let push_on_loopback = [("HOMEWARD_PUSH_ALLOW_HOSTS", "127.0.0.1")];
    let mut server = ServerProcess::start(&bin, &db, &log_path, level, &push_on_loopback).await?;
    let school = setup(&args, &server.base).await?;
    let deadlines = deadline_phase(&args, &school.workers, school.plan_id, &school.push, &db).await?;
    let panics = if args.panics > 0 {
        // A fresh process for the second measurement, on the same database (the visits and alerts of the
        // first stay): nothing left in flight from the first. It also keeps the panic measurement clear of a
        // PostgreSQL bug: through sqlx's `Any` driver (0.8.6) a NULL f64 is bound as float4, so once a
        // connection has prepared the alert insert for an alert without a position (every missed deadline
        // above), inserting one with a position (a panic) on that connection fails.
        server.stop().await;
        server = ServerProcess::start(&bin, &db, &log_path.with_extension("2.log"), level, &push_on_loopback).await?;
        let workers: Vec<ApiClient> = school
            .workers
            .iter()
            .map(|w| ApiClient::new(&server.base).with_token(w.token().unwrap_or_default()))
            .collect();
        Some(panic_phase(&args, &workers, school.plan_id, &school.push, &db).await?)
    } else {
        None
    };
    server.stop().await;

    println!();
    println!("| database | active sessions | window | deadline→push p50 | p99 | max | arrived |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {backend:?} | {} | {} s | {} | {} | {} | {}/{}{} |",
        args.sessions,
        args.window,
        ms(deadlines.stats.p50),
        ms(deadlines.stats.p99),
        ms(deadlines.stats.max),
        deadlines.stats.n,
        args.sessions,
        if deadlines.duplicates > 0 { format!(" ({} duplicates)", deadlines.duplicates) } else { String::new() }
    );
    if let Some(p) = panics {
        println!();
        println!("| database | panics | pings sent (rate) | panic→push p50 | p99 | max | arrived | POST p50 / p99 |");
        println!("|---|---|---|---|---|---|---|---|");
        println!(
            "| {backend:?} | {} | {} ({:.0}/s) | {} | {} | {} | {}/{} | {} / {} |",
            args.panics,
            p.pings,
            p.ping_rate,
            ms(p.stats.p50),
            ms(p.stats.p99),
            ms(p.stats.max),
            p.stats.n,
            args.panics,
            ms(p.post.p50),
            ms(p.post.p99)
        );
    }
    ensure!(deadlines.stats.n == args.sessions, "{} deadline pushes are missing", args.sessions - deadlines.stats.n);
    Ok(())
}

struct DeadlineResult {
    stats: Stats,
    duplicates: usize,
}

struct PanicResult {
    stats: Stats,
    post: Stats,
    pings: u64,
    ping_rate: f64,
}

struct SchoolSetUp {
    workers: Vec<ApiClient>,
    plan_id: Uuid,
    push: PushService,
}

/// A leader with one device on a local push service, `--workers` staff, and a one-step plan.
async fn setup(args: &Args, base: &str) -> anyhow::Result<SchoolSetUp> {
    let anonymous = ApiClient::new(base);
    let (admin, _) = anonymous.login("admin@loadgen.test", PASSWORD).await.context("the admin signs in")?;
    let leader_user = admin
        .create_user(&CreateUserRequest {
            email: "leader@loadgen.test".into(),
            name: "Lee Leader".into(),
            password: PASSWORD.into(),
            roles: vec![Role::Leader],
            line_manager_id: None,
            phone: None,
        })
        .await?;
    let (leader, _) = anonymous.login("leader@loadgen.test", PASSWORD).await?;
    let mut workers = Vec::with_capacity(args.workers);
    for n in 0..args.workers {
        let email = format!("staff{n}@loadgen.test");
        admin
            .create_user(&CreateUserRequest {
                email: email.clone(),
                name: format!("Staff {n}"),
                password: PASSWORD.into(),
                roles: vec![Role::Staff],
                line_manager_id: Some(leader_user.id),
                phone: None,
            })
            .await?;
        workers.push(anonymous.login(&email, PASSWORD).await?.0);
    }
    let key = leader.vapid_public_key().await?.public_key;
    let push = PushService::start(key).await;
    let device = push.subscribe();
    leader
        .subscribe_push(&PushSubscriptionRequest {
            endpoint: device.endpoint.clone(),
            keys: PushSubscriptionKeys { p256dh: device.p256dh.clone(), auth: device.auth.clone() },
        })
        .await?;
    let plan = admin
        .create_escalation_plan(&EscalationPlanRequest {
            name: "Leaders at once".into(),
            steps: vec![EscalationStep {
                delay_seconds: 0,
                recipients: vec![Recipient::Role { role: Role::Leader }],
                channels: vec![],
                instruction: "Phone the worker now.".into(),
            }],
            repeat_every_seconds: Some(3600),
            is_default: false,
        })
        .await?;

    Ok(SchoolSetUp { workers, plan_id: plan.id, push })
}

/// Plan `count` visits of `minutes` minutes with `concurrency` requests in flight; (worker, session) in order.
async fn plan_visits(
    workers: &[ApiClient],
    plan_id: Uuid,
    count: usize,
    minutes: i64,
    concurrency: usize,
) -> anyhow::Result<Vec<(usize, Uuid)>> {
    let planned: Vec<(usize, anyhow::Result<Uuid>)> = stream::iter(0..count)
        .map(|i| {
            let worker = i % workers.len();
            let api = workers[worker].clone();
            let mut visit = low_risk_visit();
            visit.escalation_plan_id = Some(plan_id);
            visit.check_in_interval_minutes = None;
            visit.expected_duration_minutes = minutes;
            visit.planned_start = Utc::now();
            async move { (i, api.plan_session(&visit).await.map(|s| s.id).with_context(|| format!("plan visit {i}"))) }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut sessions = vec![(0, Uuid::nil()); count];
    for (i, id) in planned {
        sessions[i] = (i % workers.len(), id?);
    }
    Ok(sessions)
}

async fn deadline_phase(
    args: &Args,
    workers: &[ApiClient],
    plan_id: Uuid,
    push: &PushService,
    db: &TestDatabase,
) -> anyhow::Result<DeadlineResult> {
    let n = args.sessions;
    let clock = Instant::now();
    let sessions = plan_visits(workers, plan_id, n, VISIT_MINUTES, args.concurrency).await?;
    let plan_secs = clock.elapsed().as_secs_f64();
    println!("planned {n} visits in {plan_secs:.1} s ({:.0}/s)", n as f64 / plan_secs);
    if args.analyze {
        analyze(&db.url).await?;
    }

    // Starting takes two to three times as long as planning: the first deadline is set to fall after the
    // last start, so the deadlines lapse with every visit active and no other requests coming in.
    let lead = Duration::milliseconds((plan_secs * 4000.0) as i64 + 5000);
    let window = Duration::seconds(args.window as i64);
    let t0 = now_ms() + lead;
    ensure!(lead + window < Duration::minutes(9), "the deadlines must fall within nine minutes of planning");
    // To the millisecond, as the server keeps times.
    let deadline = |i: usize| t0 + Duration::milliseconds(window.num_milliseconds() * i as i64 / (n.max(2) as i64 - 1));
    let clock = Instant::now();
    let started: Vec<(usize, anyhow::Result<()>, DateTime<Utc>)> = stream::iter(0..n)
        .map(|i| {
            let (worker, session) = sessions[i];
            let api = workers[worker].clone();
            let start = ClientEvent {
                id: Uuid::new_v4(),
                at: deadline(i) - Duration::minutes(VISIT_MINUTES),
                kind: ClientEventKind::Start { location: Some(PLACE) },
            };
            async move {
                let outcome = api.send_events(session, &[start]).await.map(|_| ()).context("start a visit");
                (i, outcome, Utc::now())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let start_secs = clock.elapsed().as_secs_f64();
    let mut late_starts = 0;
    for (i, outcome, at) in started {
        outcome.with_context(|| format!("start visit {i}"))?;
        if at > deadline(i) {
            late_starts += 1;
        }
    }
    println!(
        "started {n} visits in {start_secs:.1} s ({:.0}/s), the last {:.1} s before the first deadline; deadlines \
         from {} to {} ({:.0}/s){}",
        n as f64 / start_secs,
        (t0 - Utc::now()).num_milliseconds() as f64 / 1000.0,
        t0.format("%H:%M:%S%.3f"),
        deadline(n - 1).format("%H:%M:%S%.3f"),
        n as f64 / args.window as f64,
        if late_starts > 0 { format!("; {late_starts} started after their deadline") } else { String::new() }
    );

    if args.analyze {
        analyze(&db.url).await?;
    }

    // Wait for the leader's messages.
    let last = deadline(n - 1);
    let give_up = last + Duration::seconds(args.settle_timeout as i64);
    let mut reported = Utc::now();
    loop {
        // Only missed-deadline alerts count: lost-signal notices (no pings) may come too.
        let got = alerts_notified(push, "missed_deadline");
        let now = Utc::now();
        if got >= n || now > give_up {
            break;
        }
        if now - reported > Duration::seconds(5) {
            let (timers, deliveries) = backlog(&db.url, now).await?;
            let due = (0..n).filter(|i| deadline(*i) <= now).count();
            println!(
                "  {}: {due} deadlines passed, {got} pushes arrived; backlog: {timers} timers due and not fired, \
                 {deliveries} deliveries waiting or in flight",
                now.format("%H:%M:%S")
            );
            reported = now;
        }
        tokio::time::sleep(StdDuration::from_millis(250)).await;
    }
    // Anything else (a repeat) would come much later; a short grace catches duplicates.
    tokio::time::sleep(StdDuration::from_secs(2)).await;

    let alerts = alerts_by_id(&db.url, "missed_deadline").await?;
    let by_session: HashMap<Uuid, usize> = sessions.iter().enumerate().map(|(i, (_, s))| (*s, i)).collect();
    let mut first: BTreeMap<usize, DateTime<Utc>> = BTreeMap::new();
    let mut duplicates = 0;
    let mut trigger_mismatch = 0;
    for m in push.received().iter().filter(|m| m.payload["kind"] == "missed_deadline") {
        let Some((session, trigger)) = alert_of(m).and_then(|a| alerts.get(&a)) else { continue };
        let Some(&i) = by_session.get(session) else { continue };
        if *trigger != deadline(i) {
            trigger_mismatch += 1;
        }
        match first.get(&i) {
            Some(_) => duplicates += 1,
            None => {
                first.insert(i, m.at);
            }
        }
    }
    ensure!(trigger_mismatch == 0, "{trigger_mismatch} alerts' trigger times differ from the deadlines set");
    let refused = push.attempts().iter().filter(|a| a.status != 201).count();
    ensure!(refused == 0, "the push service refused {refused} messages");
    let latencies: Vec<f64> = first
        .iter()
        .map(|(i, at)| (*at - deadline(*i)).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0)
        .collect();
    let stats = stats(latencies);
    println!(
        "deadline→push: {}/{n} arrived, {} missing, {duplicates} duplicates; p50 {} p99 {} max {}",
        stats.n,
        n - stats.n,
        ms(stats.p50),
        ms(stats.p99),
        ms(stats.max)
    );
    Ok(DeadlineResult { stats, duplicates })
}

async fn panic_phase(
    args: &Args,
    workers: &[ApiClient],
    plan_id: Uuid,
    push: &PushService,
    db: &TestDatabase,
) -> anyhow::Result<PanicResult> {
    let n = args.panics;
    // Hour-long visits, started now: active, with no deadline in reach.
    let sessions = plan_visits(workers, plan_id, n, 60, args.concurrency).await?;
    let started: Vec<anyhow::Result<()>> = stream::iter(sessions.iter().copied())
        .map(|(worker, session)| {
            let api = workers[worker].clone();
            let start = ClientEvent {
                id: Uuid::new_v4(),
                at: now_ms(),
                kind: ClientEventKind::Start { location: Some(PLACE) },
            };
            async move { api.send_events(session, &[start]).await.map(|_| ()).context("start a visit") }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    started.into_iter().collect::<anyhow::Result<Vec<()>>>()?;

    // Location pings for the active visits, at a steady rate, in the background.
    let stop = Arc::new(AtomicBool::new(false));
    let sent_pings = Arc::new(AtomicU64::new(0));
    let failed_pings = Arc::new(AtomicU64::new(0));
    let pinger = {
        let stop = stop.clone();
        let sent_pings = sent_pings.clone();
        let failed_pings = failed_pings.clone();
        let targets: Vec<(ApiClient, Uuid)> = sessions.iter().map(|(w, s)| (workers[*w].clone(), *s)).collect();
        let rate = args.ping_rate;
        tokio::spawn(async move {
            if rate <= 0.0 {
                return;
            }
            let in_flight = Arc::new(tokio::sync::Semaphore::new(32));
            let mut tick = tokio::time::interval(StdDuration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
                let (api, session) = targets[k % targets.len()].clone();
                k += 1;
                let (sent_pings, failed_pings) = (sent_pings.clone(), failed_pings.clone());
                tokio::spawn(async move {
                    let at = now_ms();
                    let ping = LocationPing {
                        id: LocationPing::new_id(at),
                        at,
                        latitude: PLACE.latitude,
                        longitude: PLACE.longitude,
                        accuracy_m: 12.0,
                        battery_percent: Some(80),
                    };
                    match api.send_pings(session, &[ping]).await {
                        Ok(_) => sent_pings.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed_pings.fetch_add(1, Ordering::Relaxed),
                    };
                    drop(permit);
                });
            }
        })
    };
    // Let the pings settle into their rate before the first panic.
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    let ping_clock = Instant::now();
    let pings_at_start = sent_pings.load(Ordering::Relaxed);

    let mut tick = tokio::time::interval(StdDuration::from_millis(args.panic_interval_ms.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for (worker, session) in sessions.iter().copied() {
        tick.tick().await;
        let api = workers[worker].clone();
        tasks.push(tokio::spawn(async move {
            let event = ClientEvent {
                id: Uuid::new_v4(),
                at: now_ms(),
                kind: ClientEventKind::Panic { location: Some(PLACE) },
            };
            let sent = Utc::now();
            let outcome = api.send_events(session, &[event]).await.map(|_| ());
            (session, sent, Utc::now(), outcome)
        }));
    }
    let mut sent_at: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    let mut post = Vec::new();
    for task in tasks {
        let (session, sent, answered, outcome) = task.await?;
        outcome.with_context(|| format!("panic on {session}"))?;
        sent_at.insert(session, sent);
        post.push((answered - sent).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
    }
    let give_up = Utc::now() + Duration::seconds(args.settle_timeout as i64);
    while alerts_notified(push, "panic") < n && Utc::now() < give_up {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let pings = sent_pings.load(Ordering::Relaxed) - pings_at_start;
    let ping_rate = pings as f64 / ping_clock.elapsed().as_secs_f64();
    let _ = pinger.await;
    let failed = failed_pings.load(Ordering::Relaxed);
    ensure!(failed == 0, "{failed} location pings were refused");

    let alerts = alerts_by_id(&db.url, "panic").await?;
    let mut first: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for m in push.received().iter().filter(|m| m.payload["kind"] == "panic") {
        let Some((session, _)) = alert_of(m).and_then(|a| alerts.get(&a)) else { continue };
        first.entry(*session).or_insert(m.at);
    }
    let latencies: Vec<f64> = first
        .iter()
        .filter_map(|(s, at)| {
            sent_at.get(s).map(|sent| (*at - *sent).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0)
        })
        .collect();
    let post = stats(post);
    let stats = stats(latencies);
    println!(
        "panic→push: {}/{n} arrived; p50 {} p99 {} max {}; panic POST answered p50 {} p99 {}; {pings} pings ({ping_rate:.0}/s)",
        stats.n,
        ms(stats.p50),
        ms(stats.p99),
        ms(stats.max),
        ms(post.p50),
        ms(post.p99)
    );
    Ok(PanicResult { stats, post, pings, ping_rate })
}

/// How many alerts of `kind` the leader's device has heard of.
fn alerts_notified(push: &PushService, kind: &str) -> usize {
    push.received().iter().filter(|m| m.payload["kind"] == kind).filter_map(alert_of).collect::<HashSet<_>>().len()
}

fn alert_of(m: &Received) -> Option<Uuid> {
    m.payload["alert_id"].as_str().and_then(|a| Uuid::parse_str(a).ok())
}

/// Refresh the query planner's statistics.
async fn analyze(url: &str) -> anyhow::Result<()> {
    let clock = Instant::now();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    sqlx::query("analyze").execute(&mut conn).await?;
    let _ = conn.close().await;
    println!("analyzed the database in {:.1} s", clock.elapsed().as_secs_f64());
    Ok(())
}

/// What the server has yet to do: timers due by `now` and not fired (the scheduler's backlog), and
/// deliveries waiting or being sent (the deliverer's).
async fn backlog(url: &str, now: DateTime<Utc>) -> anyhow::Result<(i64, i64)> {
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let timers: i64 =
        sqlx::query("select count(*) from timers where fired_at is null and cancelled_at is null and due_at <= $1")
            .bind(now.timestamp_millis())
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
    let deliveries: i64 = sqlx::query("select count(*) from deliveries where status in ('pending', 'sending')")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    let _ = conn.close().await;
    Ok((timers, deliveries))
}

/// The alerts of one kind: alert id to (session id, trigger time).
async fn alerts_by_id(url: &str, kind: &str) -> anyhow::Result<HashMap<Uuid, (Uuid, DateTime<Utc>)>> {
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let rows = sqlx::query("select alert_id, session_id, trigger_at from alerts where kind = $1")
        .bind(kind)
        .fetch_all(&mut conn)
        .await?;
    let mut alerts = HashMap::with_capacity(rows.len());
    for row in rows {
        let alert: String = row.try_get(0)?;
        let session: String = row.try_get(1)?;
        let trigger: i64 = row.try_get(2)?;
        let trigger = DateTime::from_timestamp_millis(trigger).context("a trigger time")?;
        alerts.insert(Uuid::parse_str(&alert)?, (Uuid::parse_str(&session)?, trigger));
    }
    let _ = conn.close().await;
    Ok(alerts)
}
