//! Load generator for the everyday traffic: workers' phones and leaders' live boards against the real
//! `homeward` binary (release) on a fresh SQLite file or a fresh PostgreSQL database.
//!
//! - `ingest`: location-ping ingest as fast as `--concurrency` requests in flight allow, at `--sessions`
//!   active visits, against two baselines measured in the same run: a bare actix-web endpoint that only
//!   decodes the same request (the HTTP ceiling, `bare-endpoint`, a child process like the server) hit
//!   by the same client code, and a raw insert loop of the same rows into the same database with the
//!   same durability settings (the storage ceiling).
//! - `mixed`: N workers' visits (a ping every P seconds, a check-in every Q seconds, an end) and M
//!   leaders holding the live board's event stream open and fetching the board; latency percentiles and
//!   errors per endpoint, and the server's resident memory over time. With `--lapse` a share of the
//!   visits miss their deadline, spread over the run, under a two-step plan: afterwards every
//!   acknowledged ping and event must be stored and every step must have reached the leader's device
//!   exactly once (the soak).
//!
//! ```text
//! cargo build --release -p homeward-tests --bins -p homeward-server --bin homeward
//! target/release/workload ingest --database sqlite --sessions 10000
//! target/release/workload mixed --database sqlite --sessions 10000 --leaders 5 --seconds 120
//! target/release/workload mixed --database sqlite --sessions 10000 --seconds 600 --lapse 0.5   # soak
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Duration, Utc};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use futures::{StreamExt, stream};
use homeward_shared::api::{
    ClientEvent, ClientEventKind, CreateUserRequest, EscalationPlanRequest, LocationPing, PingBatch, PingBatchResponse,
    PushSubscriptionKeys, PushSubscriptionRequest,
};
use homeward_shared::client::ApiClient;
use homeward_shared::{Coordinates, EscalationStep, Recipient, Role};
use homeward_tests::bench::{Memory, ServerProcess, Stats, load_average, ms, run_cli, server_binary, stats};
use homeward_tests::push_service::PushService;
use homeward_tests::{Backend, PASSWORD, TestDatabase, low_risk_visit, now_ms};
use sqlx::{Connection, Row};
use uuid::Uuid;

/// A visit cannot be shorter than this; the server accepts a start dated this long ago.
const VISIT_MINUTES: i64 = 5;
const PLACE: Coordinates = Coordinates { latitude: 51.5, longitude: -0.12 };
/// Where the bare endpoint learns its address, as the server does from `HOMEWARD_BIND`.
const BARE_BIND: &str = "HOMEWARD_BENCH_BIND";

#[derive(Debug, Parser)]
#[command(about = "Workers' and leaders' traffic against a real homeward server, with baselines.")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Ping ingest at full speed against the bare-endpoint and raw-insert baselines.
    Ingest(IngestArgs),
    /// Workers and leaders over time; with `--lapse`, deadlines lapsing throughout (the soak).
    Mixed(MixedArgs),
    /// The HTTP baseline: an actix-web server whose ping endpoint decodes the request and answers.
    #[command(hide = true)]
    BareEndpoint,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Database {
    Sqlite,
    Postgres,
}

#[derive(Debug, ClapArgs)]
struct Common {
    /// The `homeward` binary. Default: `homeward` next to this program (target/release/homeward).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "sqlite")]
    database: Database,
    /// Active visits.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Staff members sharing the visits.
    #[arg(long, default_value_t = 100)]
    staff: usize,
    /// Setup requests in flight at once.
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    /// `RUST_LOG` for the server (its log goes to a file). Default: the server's own (info).
    #[arg(long)]
    server_log_level: Option<String>,
}

#[derive(Debug, ClapArgs)]
struct IngestArgs {
    #[command(flatten)]
    common: Common,
    /// Ping requests in flight at once (closed loop).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds measured for each of the server and the bare endpoint (after 3 s of warm-up).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Pings in each request (a phone sends what it queued; 1 is the hardest case).
    #[arg(long, default_value_t = 1)]
    pings_per_request: usize,
    /// Random (version-4) ping ids, as the client sent before stop 16, instead of the client's ids that
    /// begin with the ping's time (`LocationPing::new_id`).
    #[arg(long)]
    random_ping_ids: bool,
}

#[derive(Debug, ClapArgs)]
struct MixedArgs {
    #[command(flatten)]
    common: Common,
    /// Leaders, each holding the live board's event stream open and fetching the board.
    #[arg(long, default_value_t = 5)]
    leaders: usize,
    /// Seconds between a visit's pings.
    #[arg(long, default_value_t = 10.0)]
    ping_every: f64,
    /// Seconds between a visit's check-ins (visits that do not lapse).
    #[arg(long, default_value_t = 120.0)]
    check_in_every: f64,
    /// Seconds between a leader's fetches of the board.
    #[arg(long, default_value_t = 10.0)]
    board_every: f64,
    /// How long the load runs, in seconds.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// The share of the visits whose deadline lapses during the run (spread evenly over it).
    #[arg(long, default_value_t = 0.0)]
    lapse: f64,
    /// The plan's second step fires this many seconds after the first (+0 s).
    #[arg(long, default_value_t = 60)]
    second_step_after: i64,
    /// Requests in flight at once, at most (a phone waits for its answer; this caps the sockets).
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    /// Longest wait for the escalation messages after the run, in seconds.
    #[arg(long, default_value_t = 240)]
    settle_timeout: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    sqlx::any::install_default_drivers();
    let run = async move {
        match cli.mode {
            Mode::Ingest(args) => ingest(args).await,
            Mode::Mixed(args) => mixed(args).await,
            Mode::BareEndpoint => bare_endpoint().await,
        }
    };
    // On Ctrl-C or SIGTERM the run is dropped: the server is killed and the database dropped.
    tokio::select! {
        result = run => result,
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

// ---------------------------------------------------------------------------------------------------
// The bare endpoint

/// The server's HTTP stack without the server: the same actix-web defaults (one worker per core), the
/// same payload limit and headers, the same route, the same JSON decoding; no auth, no database.
async fn bare_endpoint() -> anyhow::Result<()> {
    use actix_web::middleware::DefaultHeaders;
    use actix_web::{App, HttpResponse, HttpServer, web};

    async fn pings(_path: web::Path<String>, body: web::Json<PingBatch>) -> HttpResponse {
        HttpResponse::Ok().json(PingBatchResponse { stored: body.pings.len(), duplicates: 0 })
    }

    let bind = std::env::var(BARE_BIND).context(BARE_BIND)?;
    let listener = std::net::TcpListener::bind(&bind)?;
    let server = HttpServer::new(|| {
        App::new()
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("X-Frame-Options", "DENY"))
                    .add(("Referrer-Policy", "no-referrer"))
                    .add(("Cache-Control", "no-store")),
            )
            .app_data(web::PayloadConfig::new(2 * 1024 * 1024))
            .route("/api/v1/sessions/{id}/pings", web::post().to(pings))
    })
    .disable_signals()
    .listen(listener)?
    .run();
    println!("listening on http://{bind}");
    server.await?;
    Ok(())
}

async fn start_bare_endpoint() -> anyhow::Result<ServerProcess> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command.arg("bare-endpoint").stdin(std::process::Stdio::null()).kill_on_drop(true);
    let log = std::env::temp_dir().join(format!("homeward-bare-{}.log", Uuid::new_v4().simple()));
    ServerProcess::spawn(command, &log, BARE_BIND).await
}

// ---------------------------------------------------------------------------------------------------
// The school

struct School {
    bin: PathBuf,
    db: TestDatabase,
    server: ServerProcess,
    log: PathBuf,
    staff: Vec<ApiClient>,
    leaders: Vec<ApiClient>,
    plan_id: Uuid,
    push: PushService,
}

/// A fresh database and server; a school with `staff` staff, `leaders` leaders (the first with one
/// device on a local push service), and a plan of two steps to the leaders: +0 s and +`second_step` s.
async fn school(common: &Common, leaders: usize, second_step: i64) -> anyhow::Result<School> {
    ensure!(common.sessions > 0 && common.staff > 0 && common.setup_concurrency > 0, "sessions, staff > 0");
    let bin = server_binary(common.server_bin.clone())?;
    let backend = match common.database {
        Database::Sqlite => Backend::Sqlite,
        Database::Postgres => Backend::Postgres,
    };
    let db = TestDatabase::new(backend).await;
    let log = std::env::temp_dir().join(format!("homeward-workload-{}.log", Uuid::new_v4().simple()));
    println!("server: {}  database: {backend:?}  server log: {}", bin.display(), log.display());
    println!("load average at the start: {}", load_average());
    run_cli(
        &bin,
        &db,
        &[
            "create-school",
            "--name",
            "Load School",
            "--admin-email",
            "admin@workload.test",
            "--admin-name",
            "Load Admin",
            "--admin-password",
            PASSWORD,
        ],
    )
    .await?;
    // The push service below runs on loopback: allowed only through this setting, meant for tests.
    let push_on_loopback = [("HOMEWARD_PUSH_ALLOW_HOSTS", "127.0.0.1")];
    let server = ServerProcess::start(&bin, &db, &log, common.server_log_level.as_deref(), &push_on_loopback).await?;
    let anonymous = ApiClient::new(&server.base);
    let (admin, _) = anonymous.login("admin@workload.test", PASSWORD).await.context("the admin signs in")?;
    let mut leader_clients = Vec::new();
    let mut first_leader = None;
    for n in 0..leaders.max(1) {
        let email = format!("leader{n}@workload.test");
        let user = admin
            .create_user(&CreateUserRequest {
                email: email.clone(),
                name: format!("Leader {n}"),
                password: PASSWORD.into(),
                roles: vec![Role::Leader],
                line_manager_id: None,
                phone: None,
            })
            .await?;
        first_leader.get_or_insert(user.id);
        leader_clients.push(anonymous.login(&email, PASSWORD).await?.0);
    }
    let mut staff = Vec::with_capacity(common.staff);
    for n in 0..common.staff {
        let email = format!("staff{n}@workload.test");
        admin
            .create_user(&CreateUserRequest {
                email: email.clone(),
                name: format!("Staff {n}"),
                password: PASSWORD.into(),
                roles: vec![Role::Staff],
                line_manager_id: first_leader,
                phone: None,
            })
            .await?;
        staff.push(anonymous.login(&email, PASSWORD).await?.0);
    }
    let key = leader_clients[0].vapid_public_key().await?.public_key;
    let push = PushService::start(key).await;
    let device = push.subscribe();
    leader_clients[0]
        .subscribe_push(&PushSubscriptionRequest {
            endpoint: device.endpoint.clone(),
            keys: PushSubscriptionKeys { p256dh: device.p256dh.clone(), auth: device.auth.clone() },
        })
        .await?;
    let step = |delay_seconds: i64| EscalationStep {
        delay_seconds,
        recipients: vec![Recipient::Role { role: Role::Leader }],
        channels: vec![],
        instruction: "Phone the worker now.".into(),
    };
    let plan = admin
        .create_escalation_plan(&EscalationPlanRequest {
            name: "Leaders, then leaders again".into(),
            steps: vec![step(0), step(second_step)],
            repeat_every_seconds: Some(3600),
            is_default: false,
        })
        .await?;
    leader_clients.truncate(leaders);
    Ok(School { bin, db, server, log, staff, leaders: leader_clients, plan_id: plan.id, push })
}

/// One visit of the load: who runs it and its id.
#[derive(Clone)]
struct Visit {
    api: ApiClient,
    id: Uuid,
}

/// Plan `count` visits, the i-th `minutes(i)` long, on the plan of two steps.
async fn plan(
    school: &School,
    count: usize,
    concurrency: usize,
    minutes: impl Fn(usize) -> i64,
) -> anyhow::Result<Vec<Visit>> {
    let clock = Instant::now();
    let planned: Vec<(usize, anyhow::Result<Uuid>)> = stream::iter(0..count)
        .map(|i| {
            let api = school.staff[i % school.staff.len()].clone();
            let mut visit = low_risk_visit();
            visit.escalation_plan_id = Some(school.plan_id);
            visit.check_in_interval_minutes = None;
            visit.expected_duration_minutes = minutes(i);
            visit.planned_start = Utc::now();
            async move { (i, api.plan_session(&visit).await.map(|s| s.id).with_context(|| format!("plan visit {i}"))) }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut visits: Vec<Option<Visit>> = vec![None; count];
    for (i, id) in planned {
        visits[i] = Some(Visit { api: school.staff[i % school.staff.len()].clone(), id: id? });
    }
    let visits: Vec<Visit> =
        visits.into_iter().map(|v| v.context("every visit is planned")).collect::<Result<_, _>>()?;
    let plan_secs = clock.elapsed().as_secs_f64();
    println!("planned {count} visits in {plan_secs:.1} s ({:.0}/s)", count as f64 / plan_secs);
    Ok(visits)
}

async fn start_all(
    visits: &[Visit],
    concurrency: usize,
    at: impl Fn(usize) -> DateTime<Utc>,
) -> anyhow::Result<Vec<Uuid>> {
    let clock = Instant::now();
    let started: Vec<(usize, Uuid, anyhow::Result<()>)> = stream::iter(0..visits.len())
        .map(|i| {
            let visit = visits[i].clone();
            let start =
                ClientEvent { id: Uuid::new_v4(), at: at(i), kind: ClientEventKind::Start { location: Some(PLACE) } };
            async move {
                let id = start.id;
                (i, id, visit.api.send_events(visit.id, &[start]).await.map(|_| ()).context("start a visit"))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut ids = Vec::with_capacity(visits.len());
    for (i, id, outcome) in started {
        outcome.with_context(|| format!("start visit {i}"))?;
        ids.push(id);
    }
    let secs = clock.elapsed().as_secs_f64();
    println!("started {} visits in {secs:.1} s ({:.0}/s)", visits.len(), visits.len() as f64 / secs);
    Ok(ids)
}

/// A ping as the phone sends it: its id begins with its time, unless `random_id` asks for a random one.
fn ping(at: DateTime<Utc>, random_id: bool) -> LocationPing {
    LocationPing {
        id: if random_id { Uuid::new_v4() } else { LocationPing::new_id(at) },
        at,
        latitude: PLACE.latitude,
        longitude: PLACE.longitude,
        accuracy_m: 12.0,
        battery_percent: Some(80),
    }
}

fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------------
// Ingest

struct Rate {
    pings: u64,
    requests: u64,
    errors: u64,
    secs: f64,
    latency: Stats,
}

impl Rate {
    fn per_sec(&self) -> f64 {
        self.pings as f64 / self.secs
    }
}

/// Send pings round the visits as fast as `concurrency` requests in flight allow; measured after a
/// 3 s warm-up for `seconds`.
async fn ping_flood(visits: &[Visit], concurrency: usize, seconds: u64, per_request: usize, random_ids: bool) -> Rate {
    let next = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let visits = Arc::new(visits.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, measuring, stop, visits) = (next.clone(), measuring.clone(), stop.clone(), visits.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut requests, mut pings, mut errors) = (Vec::new(), 0u64, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                let visit = &visits[k % visits.len()];
                let batch: Vec<LocationPing> = (0..per_request).map(|_| ping(now_ms(), random_ids)).collect();
                let sent = Instant::now();
                let outcome = visit.api.send_pings(visit.id, &batch).await;
                if measuring.load(Ordering::Relaxed) {
                    latencies.push(elapsed_ms(sent));
                    requests += 1;
                    match outcome {
                        Ok(r) if r.stored == per_request => pings += per_request as u64,
                        _ => errors += 1,
                    }
                }
            }
            (latencies, requests, pings, errors)
        }));
    }
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    measuring.store(true, Ordering::Relaxed);
    let clock = Instant::now();
    tokio::time::sleep(StdDuration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let secs = clock.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut requests, mut pings, mut errors) = (Vec::new(), 0, 0, 0);
    for task in tasks {
        if let Ok((l, r, p, e)) = task.await {
            latencies.extend(l);
            requests += r;
            pings += p;
            errors += e;
        }
    }
    Rate { pings, requests, errors, secs, latency: stats(latencies) }
}

/// The storage ceiling: the same rows as the server writes, inserted with sqlx, `per_tx` to a
/// transaction, by `writers` connections (one on SQLite, which has one writer), for `seconds`.
async fn raw_inserts(
    db: &TestDatabase,
    school_id: &str,
    user_of: &[(String, String)],
    per_tx: usize,
    writers: usize,
    seconds: u64,
    random_ids: bool,
) -> anyhow::Result<Rate> {
    let pool = match db.backend {
        // The server's own connection settings (server/src/db/mod.rs).
        Backend::Sqlite => {
            sqlx::any::AnyPoolOptions::new()
                .max_connections(writers as u32)
                .after_connect(|conn, _| Box::pin(homeward_server::db::sqlite_pragmas(conn)))
                .connect(&db.url)
                .await?
        }
        Backend::Postgres => sqlx::any::AnyPoolOptions::new().max_connections(writers as u32).connect(&db.url).await?,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let user_of = Arc::new(user_of.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (pool, stop, next, user_of, school_id) =
            (pool.clone(), stop.clone(), next.clone(), user_of.clone(), school_id.to_string());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut pings, mut errors) = (Vec::new(), 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let outcome: Result<(), sqlx::Error> = async {
                    let mut tx = pool.begin().await?;
                    for _ in 0..per_tx {
                        let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let (session, user) = &user_of[k % user_of.len()];
                        let at = now_ms();
                        let now = at.timestamp_millis();
                        let ping_id = ping(at, random_ids).id;
                        sqlx::query(
                            "insert into location_pings (ping_id, session_id, school_id, user_id, at, latitude, longitude, accuracy_m, battery_percent, received_at) \
                             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) on conflict (ping_id) do nothing",
                        )
                        .bind(ping_id.to_string())
                        .bind(session)
                        .bind(&school_id)
                        .bind(user)
                        .bind(now)
                        .bind(PLACE.latitude)
                        .bind(PLACE.longitude)
                        .bind(12.0f64)
                        .bind(80i64)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await
                }
                .await;
                latencies.push(elapsed_ms(sent));
                match outcome {
                    Ok(()) => pings += per_tx as u64,
                    Err(_) => errors += 1,
                }
            }
            (latencies, pings, errors)
        }));
    }
    let clock = Instant::now();
    tokio::time::sleep(StdDuration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut pings, mut errors) = (Vec::new(), 0, 0);
    for task in tasks {
        let (l, p, e) = task.await?;
        latencies.extend(l);
        pings += p;
        errors += e;
    }
    let secs = clock.elapsed().as_secs_f64();
    pool.close().await;
    Ok(Rate { pings, requests: latencies.len() as u64, errors, secs, latency: stats(latencies) })
}

async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let n = args.common.sessions;
    let mut school = school(&args.common, 0, 60).await?;
    // Hour-long visits started now: active throughout, no deadline in reach.
    let visits = plan(&school, n, args.common.setup_concurrency, |_| 60).await?;
    start_all(&visits, args.common.setup_concurrency, |_| now_ms()).await?;
    let idle = school.server.memory().unwrap_or_default();
    println!("server at {n} active visits, idle: {idle}");

    println!("load average before the server's run: {}", load_average());
    let server =
        ping_flood(&visits, args.concurrency, args.seconds, args.pings_per_request, args.random_ping_ids).await;
    let loaded = school.server.memory().unwrap_or_default();
    println!("server after the run: {loaded}");
    school.server.stop().await;

    println!("load average before the bare endpoint's run: {}", load_average());
    let mut bare = start_bare_endpoint().await?;
    let bare_visits: Vec<Visit> = visits
        .iter()
        .map(|v| Visit { api: ApiClient::new(&bare.base).with_token(v.api.token().unwrap_or_default()), id: v.id })
        .collect();
    let http =
        ping_flood(&bare_visits, args.concurrency, args.seconds, args.pings_per_request, args.random_ping_ids).await;
    bare.stop().await;

    println!("load average before the raw inserts: {}", load_average());
    let (school_id, user_of) = session_owners(&school.db.url).await?;
    let writers = match school.db.backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 16,
    };
    let one = raw_inserts(&school.db, &school_id, &user_of, 1, writers, args.seconds, args.random_ping_ids).await?;
    let batched =
        raw_inserts(&school.db, &school_id, &user_of, 64, writers, args.seconds, args.random_ping_ids).await?;
    println!("load average at the end: {}", load_average());

    println!();
    println!(
        "| {:?}, {n} active visits, {} ping(s) a request, {} ids | pings/s | requests/s | p50 | p99 | max | errors |",
        school.db.backend,
        args.pings_per_request,
        if args.random_ping_ids { "random" } else { "time-ordered" }
    );
    println!("|---|---|---|---|---|---|---|");
    let row = |name: String, r: &Rate| {
        println!(
            "| {name} | {:.0} | {:.0} | {} | {} | {} | {} |",
            r.per_sec(),
            r.requests as f64 / r.secs,
            ms(r.latency.p50),
            ms(r.latency.p99),
            ms(r.latency.max),
            r.errors
        )
    };
    row(format!("bare actix-web endpoint ({} in flight)", args.concurrency), &http);
    row(format!("homeward ({} in flight)", args.concurrency), &server);
    row(format!("raw insert, 1 ping a transaction ({writers} writer(s))"), &one);
    row(format!("raw insert, 64 pings a transaction ({writers} writer(s))"), &batched);
    println!();
    println!(
        "homeward / bare endpoint: {:.1}%; homeward / raw insert (1 a transaction): {:.1}%; \
         homeward / raw insert (64 a transaction): {:.1}%",
        100.0 * server.per_sec() / http.per_sec(),
        100.0 * server.per_sec() / one.per_sec(),
        100.0 * server.per_sec() / batched.per_sec()
    );
    println!("server resident memory at {n} active visits: idle {idle}; after the run {loaded}");
    ensure!(server.errors == 0, "{} ping requests failed", server.errors);
    Ok(())
}

/// The school's id and each live session's (session id, worker id), for the raw inserts.
async fn session_owners(url: &str) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let rows = sqlx::query("select session_id, worker_id, school_id from sessions where status = 'active'")
        .fetch_all(&mut conn)
        .await?;
    ensure!(!rows.is_empty(), "no active sessions");
    let school: String = rows[0].try_get(2)?;
    let owners = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect::<anyhow::Result<_>>()?;
    let _ = conn.close().await;
    Ok((school, owners))
}

// ---------------------------------------------------------------------------------------------------
// Mixed: workers and leaders over time, and the soak

/// Latencies and failures per endpoint, shared by every task.
#[derive(Default)]
struct Endpoints {
    by_name: Mutex<BTreeMap<&'static str, (Vec<f64>, u64)>>,
    /// What went wrong, by kind (an HTTP status, or the transport error), with a count.
    failures: Mutex<BTreeMap<String, u64>>,
}

impl Endpoints {
    fn record(&self, name: &'static str, ms: f64, ok: bool) {
        let mut all = self.by_name.lock().expect("endpoint stats");
        let entry = all.entry(name).or_default();
        entry.0.push(ms);
        if !ok {
            entry.1 += 1;
        }
    }

    fn failure(&self, name: &'static str, error: &homeward_shared::client::ClientError) {
        let kind = match error.status() {
            Some(status) => format!("{name}: {status}"),
            None => format!("{name}: {error}"),
        };
        *self.failures.lock().expect("failures").entry(kind).or_default() += 1;
    }
}

/// What the phones were told was stored: every ping id and event id answered 200.
#[derive(Default)]
struct Acknowledged {
    pings: Mutex<Vec<Uuid>>,
    events: Mutex<Vec<Uuid>>,
}

async fn mixed(args: MixedArgs) -> anyhow::Result<()> {
    let n = args.common.sessions;
    let lapsing = ((n as f64) * args.lapse.clamp(0.0, 1.0)).round() as usize;
    let run = Duration::seconds(args.seconds as i64);
    ensure!(args.ping_every > 0.0 && args.check_in_every > 0.0 && args.board_every > 0.0, "periods > 0");
    let mut school = school(&args.common, args.leaders, args.second_step_after).await?;

    // The first `lapsing` visits miss their deadline during the run, evenly spread: the i-th at
    // `offset(i)` after the load begins. A visit is at least five minutes long, so each is planned
    // 5 + whole minutes of its offset long and its start is dated back within the five minutes the
    // server allows; the others outlast the run by half an hour.
    let offset =
        |i: usize| Duration::milliseconds(run.num_milliseconds() * (2 * i as i64 + 1) / (2 * lapsing.max(1) as i64));
    let minutes = |i: usize| {
        if i < lapsing { VISIT_MINUTES + offset(i).num_minutes() } else { run.num_minutes() + 30 }
    };
    let visits = plan(&school, n, args.common.setup_concurrency, minutes).await?;
    // The load begins once every visit has started; starting runs at a few hundred a second.
    let lead = Duration::milliseconds((n as i64 * 1000 / 150).min(200_000) + 5_000);
    let t0 = now_ms() + lead;
    let deadline = |i: usize| t0 + offset(i);
    let start_ids = start_all(&visits, args.common.setup_concurrency, |i| {
        if i < lapsing { deadline(i) - Duration::minutes(minutes(i)) } else { now_ms() }
    })
    .await?;
    let late = Utc::now() - t0;
    ensure!(
        late < Duration::zero(),
        "starting ran past the first deadline by {} ms: lower --sessions",
        late.num_milliseconds()
    );
    println!("server with {n} active visits, idle: {}", school.server.memory().unwrap_or_default());
    tokio::time::sleep((t0 - Utc::now()).to_std().unwrap_or_default()).await;
    println!("load average as the load begins: {}", load_average());

    let endpoints = Arc::new(Endpoints::default());
    let acknowledged = Arc::new(Acknowledged::default());
    acknowledged.events.lock().expect("events").extend(start_ids);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(args.max_in_flight));
    let end_of_run = Instant::now() + run.to_std()?;
    let behind = Arc::new(AtomicU64::new(0));

    // Workers: pings every P s from a random phase, check-ins every Q s, and an end after the run (the
    // visits that lapse are left overdue: their alerts stay open).
    let mut workers = Vec::with_capacity(n);
    for (i, visit) in visits.iter().cloned().enumerate() {
        let (endpoints, acknowledged, in_flight, behind) =
            (endpoints.clone(), acknowledged.clone(), in_flight.clone(), behind.clone());
        let ping_every = StdDuration::from_secs_f64(args.ping_every);
        let check_in_every = StdDuration::from_secs_f64(args.check_in_every);
        let lapses = i < lapsing;
        let phase = ping_every.mul_f64(i as f64 / n as f64);
        workers.push(tokio::spawn(async move {
            let begin = tokio::time::Instant::now() + phase;
            let mut pings = tokio::time::interval_at(begin, ping_every);
            pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Check-ins spread over their own period, not bunched in the pings' first one.
            let check_in_phase = check_in_every.mul_f64(i as f64 / n as f64);
            let mut check_ins = tokio::time::interval_at(tokio::time::Instant::now() + check_in_phase, check_in_every);
            check_ins.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let due = tokio::select! {
                    at = pings.tick() => (at, true),
                    at = check_ins.tick(), if !lapses => (at, false),
                };
                if Instant::now() >= end_of_run {
                    break;
                }
                if due.0.elapsed() > ping_every {
                    behind.fetch_add(1, Ordering::Relaxed);
                }
                let Ok(_permit) = in_flight.acquire().await else { break };
                let sent = Instant::now();
                if due.1 {
                    let p = ping(now_ms(), false);
                    let outcome = visit.api.send_pings(visit.id, std::slice::from_ref(&p)).await;
                    let ok = matches!(&outcome, Ok(r) if r.stored + r.duplicates == 1);
                    endpoints.record("POST /sessions/{id}/pings", elapsed_ms(sent), ok);
                    if let Err(e) = &outcome {
                        endpoints.failure("pings", e);
                    }
                    if ok {
                        acknowledged.pings.lock().expect("pings").push(p.id);
                    }
                } else {
                    let e = ClientEvent { id: Uuid::new_v4(), at: now_ms(), kind: ClientEventKind::CheckIn };
                    let outcome = visit.api.send_events(visit.id, std::slice::from_ref(&e)).await;
                    endpoints.record("POST /sessions/{id}/events (check-in)", elapsed_ms(sent), outcome.is_ok());
                    if let Err(e) = &outcome {
                        endpoints.failure("check-in", e);
                    }
                    if outcome.is_ok() {
                        acknowledged.events.lock().expect("events").push(e.id);
                    }
                }
            }
            if !lapses {
                let Ok(_permit) = in_flight.acquire().await else { return };
                let e = ClientEvent { id: Uuid::new_v4(), at: now_ms(), kind: ClientEventKind::End };
                let sent = Instant::now();
                let outcome = visit.api.send_events(visit.id, std::slice::from_ref(&e)).await;
                endpoints.record("POST /sessions/{id}/events (end)", elapsed_ms(sent), outcome.is_ok());
                if outcome.is_ok() {
                    acknowledged.events.lock().expect("events").push(e.id);
                }
            }
        }));
    }

    // Leaders: the live board's event stream held open, and the board fetched every F s.
    let boards_streamed = Arc::new(AtomicU64::new(0));
    let stream_errors = Arc::new(AtomicU64::new(0));
    let mut leaders = Vec::new();
    for (k, leader) in school.leaders.iter().cloned().enumerate() {
        let (boards_streamed, stream_errors) = (boards_streamed.clone(), stream_errors.clone());
        leaders.push(tokio::spawn(async move {
            let opened = Instant::now();
            match leader.board_events().await {
                Ok(mut events) => loop {
                    let next = tokio::time::timeout_at(end_of_run.into(), events.next()).await;
                    match next {
                        Ok(Ok(Some(_))) => {
                            boards_streamed.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {
                            stream_errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(_) => break,
                    }
                },
                Err(e) => {
                    eprintln!(
                        "leader {k}: the board's event stream did not open after {:.0} ms: {e}",
                        elapsed_ms(opened)
                    );
                    stream_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        let endpoints = endpoints.clone();
        let board_every = StdDuration::from_secs_f64(args.board_every);
        let phase = board_every.mul_f64(k as f64 / args.leaders.max(1) as f64);
        let leader = school.leaders[k].clone();
        leaders.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, board_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if Instant::now() >= end_of_run {
                    break;
                }
                let sent = Instant::now();
                let outcome = leader.board().await;
                endpoints.record("GET /board", elapsed_ms(sent), outcome.is_ok());
            }
        }));
    }

    // Every 10 s: progress and the server's memory.
    let clock = Instant::now();
    let mut peak = Memory::default();
    let mut samples = Vec::new();
    while Instant::now() < end_of_run {
        tokio::time::sleep(StdDuration::from_secs(10).min(end_of_run.saturating_duration_since(Instant::now()))).await;
        let memory = school.server.memory().unwrap_or_default();
        peak.rss_kib = peak.rss_kib.max(memory.rss_kib);
        peak.peak_kib = peak.peak_kib.max(memory.peak_kib);
        let lapsed = (0..lapsing).filter(|i| deadline(*i) <= Utc::now()).count();
        let pushes = school.push.received().len();
        let pings = acknowledged.pings.lock().expect("pings").len();
        println!(
            "  {:>4.0} s: {memory}; {pings} pings acknowledged; {lapsed} deadlines lapsed, {pushes} pushes arrived; load {}",
            clock.elapsed().as_secs_f64(),
            load_average()
        );
        samples.push((clock.elapsed().as_secs_f64(), memory));
    }
    for task in workers.into_iter().chain(leaders) {
        let _ = task.await;
    }
    let run_secs = clock.elapsed().as_secs_f64();
    let end_memory = school.server.memory().unwrap_or_default();
    println!("load average at the end of the load: {}", load_average());

    // The escalation messages of the last deadlines are still on their way: the second step comes
    // `second_step_after` seconds after the first.
    let mut soak = None;
    if lapsing > 0 {
        let expected = 2 * lapsing;
        let give_up = Instant::now() + StdDuration::from_secs(args.settle_timeout);
        while step_messages(&school.push).len() < expected && Instant::now() < give_up {
            tokio::time::sleep(StdDuration::from_millis(500)).await;
        }
        // A duplicate would come right behind: a short grace to catch it.
        tokio::time::sleep(StdDuration::from_secs(5)).await;
        soak = Some(check_escalations(&school, &visits[..lapsing], &deadline).await?);
        let (timers, deliveries) = backlog(&school.db.url).await?;
        println!(
            "after waiting: {timers} timers due and not fired, {deliveries} deliveries waiting or in flight \
             (a missing step still in these is late, not lost)"
        );
    }
    school.server.stop().await;
    let lost = check_stored(&school.db.url, &acknowledged).await?;

    println!();
    println!(
        "| {:?}, {n} visits ({lapsing} lapsing), {} leaders, {} s, a ping every {} s | requests | per s | p50 | p99 | max | errors |",
        school.db.backend, args.leaders, args.seconds, args.ping_every
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, (latencies, errors)) in endpoints.by_name.lock().expect("endpoint stats").iter() {
        let s = stats(latencies.clone());
        println!(
            "| {name} | {} | {:.0} | {} | {} | {} | {errors} |",
            s.n,
            s.n as f64 / run_secs,
            ms(s.p50),
            ms(s.p99),
            ms(s.max)
        );
    }
    println!(
        "| GET /board/events (SSE) | {} boards streamed to {} leaders | {:.1} | | | | {} |",
        boards_streamed.load(Ordering::Relaxed),
        args.leaders,
        boards_streamed.load(Ordering::Relaxed) as f64 / run_secs,
        stream_errors.load(Ordering::Relaxed)
    );
    for (kind, count) in endpoints.failures.lock().expect("failures").iter() {
        println!("failed: {count} × {kind}");
    }
    println!(
        "{} ticks were sent more than a period late (the load generator or the server fell behind)",
        behind.load(Ordering::Relaxed)
    );
    println!(
        "server resident memory: at the end {end_memory}; highest sampled RSS {:.0} MiB",
        Memory::mib(peak.rss_kib)
    );
    println!(
        "RSS over time (s: MiB): {}",
        samples.iter().map(|(t, m)| format!("{t:.0}: {:.0}", Memory::mib(m.rss_kib))).collect::<Vec<_>>().join(", ")
    );
    println!(
        "stored: {} of {} acknowledged pings, {} of {} acknowledged events (lost: {} pings, {} events)",
        lost.pings_acked - lost.pings_lost,
        lost.pings_acked,
        lost.events_acked - lost.events_lost,
        lost.events_acked,
        lost.pings_lost,
        lost.events_lost
    );
    if let Some(s) = &soak {
        println!(
            "escalations: {lapsing} deadlines lapsed, {} alerts; step 1 delivered {}/{lapsing}, step 2 {}/{lapsing}; \
             {} missing, {} duplicated; deadline→step 1 p50 {} p99 {} max {}",
            s.alerts,
            s.step1,
            s.step2,
            s.missing,
            s.duplicated,
            ms(s.latency.p50),
            ms(s.latency.p99),
            ms(s.latency.max)
        );
    }
    println!("server log: {}", school.log.display());
    let _ = &school.bin;
    ensure!(lost.pings_lost == 0 && lost.events_lost == 0, "acknowledged pings or events were lost");
    if let Some(s) = soak {
        ensure!(s.missing == 0 && s.duplicated == 0, "escalation steps were missed or duplicated");
    }
    Ok(())
}

/// What the server has yet to do: timers due and not fired, deliveries waiting or being sent.
async fn backlog(url: &str) -> anyhow::Result<(i64, i64)> {
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let timers: i64 =
        sqlx::query("select count(*) from timers where fired_at is null and cancelled_at is null and due_at <= $1")
            .bind(Utc::now().timestamp_millis())
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

/// (alert, step) of every step message the leader's device received.
fn step_messages(push: &PushService) -> Vec<(Uuid, i64)> {
    push.received()
        .iter()
        .filter(|m| m.payload["purpose"] == "step" && m.payload["kind"] == "missed_deadline")
        .filter_map(|m| {
            let alert = m.payload["alert_id"].as_str().and_then(|a| Uuid::parse_str(a).ok())?;
            Some((alert, m.payload["step"].as_i64()?))
        })
        .collect()
}

struct SoakResult {
    alerts: usize,
    step1: usize,
    step2: usize,
    missing: usize,
    duplicated: usize,
    latency: Stats,
}

/// Each lapsing visit has one missed-deadline alert whose two steps each reached the device once.
async fn check_escalations(
    school: &School,
    lapsing: &[Visit],
    deadline: &impl Fn(usize) -> DateTime<Utc>,
) -> anyhow::Result<SoakResult> {
    let mut conn = sqlx::AnyConnection::connect(&school.db.url).await?;
    let rows = sqlx::query("select alert_id, session_id from alerts where kind = 'missed_deadline'")
        .fetch_all(&mut conn)
        .await?;
    let _ = conn.close().await;
    let mut alert_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for row in rows {
        let alert = Uuid::parse_str(&row.try_get::<String, _>(0)?)?;
        let session = Uuid::parse_str(&row.try_get::<String, _>(1)?)?;
        alert_of.entry(session).or_default().push(alert);
    }
    let mut count: HashMap<(Uuid, i64), usize> = HashMap::new();
    for key in step_messages(&school.push) {
        *count.entry(key).or_default() += 1;
    }
    let first_at: HashMap<Uuid, DateTime<Utc>> = {
        let mut first = HashMap::new();
        for m in school.push.received().iter().filter(|m| m.payload["purpose"] == "step" && m.payload["step"] == 1) {
            if let Some(a) = m.payload["alert_id"].as_str().and_then(|a| Uuid::parse_str(a).ok()) {
                first.entry(a).or_insert(m.at);
            }
        }
        first
    };
    let (mut alerts, mut step1, mut step2, mut missing, mut duplicated) = (0, 0, 0, 0, 0);
    let mut latencies = Vec::new();
    for (i, visit) in lapsing.iter().enumerate() {
        let ids = alert_of.get(&visit.id).cloned().unwrap_or_default();
        alerts += ids.len();
        if ids.len() != 1 {
            // No alert is a missed escalation; two would be a duplicated one.
            missing += usize::from(ids.is_empty()) * 2;
            duplicated += ids.len().saturating_sub(1);
            continue;
        }
        let alert = ids[0];
        for (step, delivered) in [(1, &mut step1), (2, &mut step2)] {
            match count.get(&(alert, step)).copied().unwrap_or(0) {
                0 => missing += 1,
                1 => *delivered += 1,
                more => {
                    *delivered += 1;
                    duplicated += more - 1;
                }
            }
        }
        if let Some(at) = first_at.get(&alert) {
            latencies.push((*at - deadline(i)).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
        }
    }
    let refused = school.push.attempts().iter().filter(|a| a.status != 201).count();
    ensure!(refused == 0, "the push service refused {refused} messages");
    Ok(SoakResult { alerts, step1, step2, missing, duplicated, latency: stats(latencies) })
}

struct Stored {
    pings_acked: usize,
    pings_lost: usize,
    events_acked: usize,
    events_lost: usize,
}

/// Every ping and event the server answered 200 for is in the database.
async fn check_stored(url: &str, acknowledged: &Acknowledged) -> anyhow::Result<Stored> {
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let ids = |rows: Vec<sqlx::any::AnyRow>| -> HashSet<String> {
        rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect()
    };
    let pings = ids(sqlx::query("select ping_id from location_pings").fetch_all(&mut conn).await?);
    let events = ids(sqlx::query("select event_id from session_events").fetch_all(&mut conn).await?);
    let _ = conn.close().await;
    let acked_pings = acknowledged.pings.lock().expect("pings").clone();
    let acked_events = acknowledged.events.lock().expect("events").clone();
    Ok(Stored {
        pings_acked: acked_pings.len(),
        pings_lost: acked_pings.iter().filter(|id| !pings.contains(&id.to_string())).count(),
        events_acked: acked_events.len(),
        events_lost: acked_events.iter().filter(|id| !events.contains(&id.to_string())).count(),
    })
}
