//! Storage that cannot take a write: the phone's event and ping batches are answered 503 with the
//! shared error body (never a 500, never a silent drop), nothing is half-written, and once the
//! storage mends the same batch, with the same client ids, is stored exactly once.
//!
//! SQLite: the server's files may not grow (the soft `RLIMIT_FSIZE` of this test's process set to 0),
//! so the next commit fails at `write()` as on a full disk (EFBIG instead of ENOSPC: SQLite's I/O
//! error 778 instead of "full", 13), with no privilege needed. nextest runs each test in a process of
//! its own, so the limit touches nothing else, except the test's own output when it goes to a file:
//! run it captured (nextest's default, through pipes), not `--no-capture` redirected to a file. With `HOMEWARD_TEST_TINY_FS` the database lives on a
//! small filesystem that a file fills for real (SQLite's 13). PostgreSQL: the test database made read-only (`default_transaction_read_only`) and the
//! server's sessions terminated (`pg_terminate_backend`), as after a failover to a standby; the
//! PostgreSQL server itself is shared and keeps running.

use homeward_shared::api::{ClientEvent, ClientEventKind, LocationPing};
use homeward_shared::client::RawBody;
use std::io::Write as _;

use homeward_tests::{
    Backend, Member, TestApp, low_risk_visit, on_both_databases, postgres_admin_url, spawn_app, spawn_app_shifted,
};
use reqwest::Method;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use uuid::Uuid;

/// A small filesystem of its own for the SQLite database (for example a 1 MB tmpfs mounted by root),
/// to fill up for real instead of limiting file sizes: `HOMEWARD_TEST_TINY_FS=/mnt/tiny`. Its files
/// are deleted first.
fn tiny_filesystem() -> Option<std::path::PathBuf> {
    std::env::var("HOMEWARD_TEST_TINY_FS").ok().map(std::path::PathBuf::from)
}

/// What a refused request could have touched.
#[derive(Debug, PartialEq)]
struct Stored {
    counts: Vec<(&'static str, i64)>,
    sessions: Vec<(String, String, i64)>,
}

const TABLES: [&str; 7] =
    ["session_events", "location_pings", "audit_log", "alerts", "timers", "deliveries", "access_tokens"];

impl Stored {
    async fn take(app: &TestApp) -> Self {
        let pool = &app.state.db.pool;
        let mut counts = Vec::new();
        for table in TABLES {
            let (n,): (i64,) = sqlx::query_as(&format!("select count(*) from {table}"))
                .fetch_one(pool)
                .await
                .unwrap_or_else(|e| panic!("count {table}: {e}"));
            counts.push((table, n));
        }
        let sessions = sqlx::query_as("select session_id, status, updated_at from sessions order by session_id")
            .fetch_all(pool)
            .await
            .expect("read sessions");
        Stored { counts, sessions }
    }

    fn count(&self, table: &str) -> i64 {
        self.counts.iter().find(|(t, _)| *t == table).map(|(_, n)| *n).expect("a counted table")
    }
}

/// Storage that refuses writes until mended.
enum Fault {
    /// SQLite: no file of this process may grow.
    FilesMayNotGrow {
        wal: std::path::PathBuf,
        wal_size: u64,
        soft_limit: Option<u64>,
        _listener: tokio::signal::unix::Signal,
    },
    /// SQLite on a small filesystem of its own (`HOMEWARD_TEST_TINY_FS`): a file fills it.
    DiskFull { filler: std::path::PathBuf },
    /// PostgreSQL: the test database is read-only and the server's sessions were cut.
    ReadOnly { database: String },
}

async fn terminate_sessions(admin: &mut sqlx::AnyConnection, database: &str) {
    admin
        .execute(
            format!("select pg_terminate_backend(pid) from pg_stat_activity where datname = '{database}'").as_str(),
        )
        .await
        .expect("terminate the server's sessions");
}

impl Fault {
    async fn begin(app: &TestApp) -> Fault {
        match (app.db.backend, tiny_filesystem()) {
            (Backend::Sqlite, Some(dir)) => {
                // Fill the small filesystem the database lives on to the last byte.
                let filler = dir.join("filler");
                let mut file = std::fs::File::create(&filler).expect("create the filler");
                let chunk = vec![0u8; 4096];
                while file.write_all(&chunk).and_then(|()| file.sync_all()).is_ok() {}
                Fault::DiskFull { filler }
            }
            (Backend::Sqlite, None) => {
                let wal = app.db.data_dir.join("homeward.db-wal");
                let wal_size = std::fs::metadata(&wal).expect("the write-ahead log").len();
                // A write past the limit raises SIGXFSZ, which would kill the process: listening for it
                // (tokio installs a handler) makes the write fail with EFBIG instead, as SQLite expects.
                let sigxfsz = tokio::signal::unix::SignalKind::from_raw(25); // SIGXFSZ on Linux
                let listener = tokio::signal::unix::signal(sigxfsz).expect("listen for SIGXFSZ");
                let old = getrlimit(Resource::Fsize);
                setrlimit(Resource::Fsize, Rlimit { current: Some(0), maximum: old.maximum })
                    .expect("lower the file size limit");
                let soft_limit = old.current;
                Fault::FilesMayNotGrow { wal, wal_size, soft_limit, _listener: listener }
            }
            (Backend::Postgres, _) => {
                let database = app.db.url.rsplit('/').next().expect("a database name").to_string();
                let mut admin = sqlx::AnyConnection::connect(&postgres_admin_url()).await.expect("connect as admin");
                admin
                    .execute(format!("alter database {database} set default_transaction_read_only = on").as_str())
                    .await
                    .expect("make the database read-only");
                terminate_sessions(&mut admin, &database).await;
                Fault::ReadOnly { database }
            }
        }
    }

    async fn mend(self) {
        match self {
            Fault::FilesMayNotGrow { wal, wal_size, soft_limit, .. } => {
                let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                assert_eq!(size, wal_size, "the write-ahead log never grew while the limit held");
                // Raising the soft limit back up to the hard limit needs no privilege.
                let limit = getrlimit(Resource::Fsize);
                setrlimit(Resource::Fsize, Rlimit { current: soft_limit, maximum: limit.maximum })
                    .expect("restore the file size limit");
            }
            Fault::DiskFull { filler } => std::fs::remove_file(filler).expect("remove the filler"),
            Fault::ReadOnly { database } => {
                let mut admin = sqlx::AnyConnection::connect(&postgres_admin_url()).await.expect("connect as admin");
                admin
                    .execute(format!("alter database {database} reset default_transaction_read_only").as_str())
                    .await
                    .expect("make the database writable");
                // Sessions keep the setting they started with: new ones must be opened.
                terminate_sessions(&mut admin, &database).await;
            }
        }
    }
}

async fn started_visit(app: &TestApp, staff: &Member) -> Uuid {
    let session = staff.api.plan_session(&low_risk_visit()).await.expect("plan");
    staff
        .api
        .send_events(session.id, &[app.event_now(ClientEventKind::Start { location: None })])
        .await
        .expect("start");
    session.id
}

async fn post(member: &Member, path: &str, body: &Value) -> (u16, Value) {
    let (status, body) =
        member.api.raw(Method::POST, path, Some(RawBody::Json(body.clone()))).await.expect("an answer");
    (status.as_u16(), body)
}

/// Send as the phone does: a 503 means "try again shortly", anything else is the answer. Returns the
/// accepted answer's body.
async fn resend(member: &Member, path: &str, body: &Value) -> Value {
    let started = std::time::Instant::now();
    let mut tries = 1;
    loop {
        let answer = post(member, path, body).await;
        if answer.0 != 503 || started.elapsed() > std::time::Duration::from_secs(30) {
            if tries > 1 {
                println!("{path}: accepted on try {tries}, {} ms after the first", started.elapsed().as_millis());
            }
            assert_eq!(answer.0, 200, "{path}: {}", answer.1);
            return answer.1;
        }
        assert_unavailable(path, &answer);
        tries += 1;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn assert_unavailable(what: &str, (status, body): &(u16, Value)) {
    assert_eq!(*status, 503, "{what}: 503, not a 500 and not a success: {body}");
    let fields: Vec<&String> = body.as_object().expect("a JSON object").keys().collect();
    assert_eq!(fields, ["code", "message"], "{what}: the shared error body: {body}");
    assert_eq!(body["code"], "unavailable", "{what}: {body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("try again")), "{what}: {body}");
}

async fn storage_that_refuses_writes_answers_503_and_the_same_batch_is_stored_once_later(backend: Backend) {
    let app = match (tiny_filesystem(), backend) {
        (Some(dir), Backend::Sqlite) => {
            for old in std::fs::read_dir(&dir).expect("the small filesystem").flatten() {
                std::fs::remove_file(old.path()).expect("empty the small filesystem");
            }
            spawn_app_shifted(backend, move |s| {
                s.database_url = Some(format!("sqlite://{}?mode=rwc", dir.join("homeward.db").display()));
                s.data_dir = dir;
            })
            .await
        }
        _ => spawn_app(backend).await,
    };
    let school = app.school("Storage School").await;
    let session = started_visit(&app, &school.staff).await;
    let events: Vec<ClientEvent> =
        vec![app.event_now(ClientEventKind::CheckIn), app.event_now(ClientEventKind::CheckIn)];
    let event_ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let pings: Vec<LocationPing> = (0..3)
        .map(|i| LocationPing {
            id: Uuid::new_v4(),
            at: app.event_now(ClientEventKind::CheckIn).at,
            latitude: 51.5 + f64::from(i) * 0.001,
            longitude: -0.12,
            accuracy_m: 10.0,
            battery_percent: Some(70),
        })
        .collect();
    let event_path = format!("/api/v1/sessions/{session}/events");
    let ping_path = format!("/api/v1/sessions/{session}/pings");
    let event_batch = json!({ "events": events });
    let ping_batch = json!({ "pings": pings });

    let before = Stored::take(&app).await;
    let fault = Fault::begin(&app).await;
    // Several tries each, as a phone retrying would make: every one refused the same way.
    for attempt in 1..=3 {
        assert_unavailable(&format!("events, try {attempt}"), &post(&school.staff, &event_path, &event_batch).await);
        assert_unavailable(&format!("pings, try {attempt}"), &post(&school.staff, &ping_path, &ping_batch).await);
    }
    fault.mend().await;
    assert_eq!(Stored::take(&app).await, before, "nothing was half-written");

    // The phone kept the batches and sends them again, twice (the first answer may be lost).
    let first = resend(&school.staff, &event_path, &event_batch).await;
    let applied: Vec<Uuid> = serde_json::from_value(first["applied"].clone()).expect("applied ids");
    assert_eq!(applied, event_ids, "stored on the first try after the fault");
    let again = resend(&school.staff, &event_path, &event_batch).await;
    let duplicates: Vec<Uuid> = serde_json::from_value(again["duplicates"].clone()).expect("duplicate ids");
    assert_eq!(duplicates, event_ids, "the resent batch changes nothing");
    let stored = resend(&school.staff, &ping_path, &ping_batch).await;
    assert_eq!(stored["stored"].as_i64(), Some(3), "{stored}");
    let resent = resend(&school.staff, &ping_path, &ping_batch).await;
    assert_eq!((resent["stored"].as_i64(), resent["duplicates"].as_i64()), (Some(0), Some(3)), "{resent}");

    let after = Stored::take(&app).await;
    assert_eq!(after.count("session_events"), before.count("session_events") + 2, "each event exactly once");
    assert_eq!(after.count("location_pings"), before.count("location_pings") + 3, "each ping exactly once");
    let last_check_in = school.staff.api.session(session).await.expect("the visit").last_check_in;
    assert_eq!(last_check_in, Some(events[1].at), "the check-ins count, at the time they happened");
}

on_both_databases!(storage_that_refuses_writes_answers_503_and_the_same_batch_is_stored_once_later);
