//! Black-box test support: the real server on a random port over a fresh SQLite file or a fresh
//! PostgreSQL database, fixtures for a school with every role, and a macro that runs each test on both.

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::web;
use chrono::{Duration, Utc};
use homeward_server::clock::{Clock, ManualClock, ShiftedClock, SystemClock};
use homeward_server::configuration::Settings;
use homeward_server::startup::Application;
use homeward_server::state::AppState;
use homeward_shared::api::{ClientEvent, ClientEventKind, CreateUserRequest, PlanSessionRequest, UserView};
use homeward_shared::client::ApiClient;
use homeward_shared::{RiskAssessment, RiskLevel, Role};
use sqlx::{Connection, Executor};
use uuid::Uuid;

pub use homeward_shared;
pub mod bench;
pub mod private_postgres;
pub mod push_service;
pub mod sms_sink;
pub mod smtp_sink;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

pub const PASSWORD: &str = "correct-horse-battery";

/// Run `async fn name(backend: Backend)` as two tests, `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

pub fn postgres_admin_url() -> String {
    std::env::var("HOMEWARD_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database: a SQLite file in its own directory, or a PostgreSQL database with a random name
/// that is dropped again when the test ends.
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    pub data_dir: PathBuf,
    pg_name: Option<String>,
    /// Where the PostgreSQL database is dropped from when the test ends.
    pg_admin_url: String,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        let data_dir = std::env::temp_dir().join(format!("homeward-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir).expect("create the test data dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}?mode=rwc", data_dir.join("homeward.db").display());
                Self { backend, url, data_dir, pg_name: None, pg_admin_url: String::new() }
            }
            Backend::Postgres => Self::on_postgres(postgres_admin_url(), data_dir).await,
        }
    }

    /// A fresh database on the PostgreSQL server that `admin` (a URL of a database there) reaches.
    pub async fn on_postgres_server(admin: String) -> Self {
        let data_dir = std::env::temp_dir().join(format!("homeward-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir).expect("create the test data dir");
        Self::on_postgres(admin, data_dir).await
    }

    async fn on_postgres(admin: String, data_dir: PathBuf) -> Self {
        sqlx::any::install_default_drivers();
        let name = format!("homeward_test_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be running for the tests ({admin}): {e}"));
        conn.execute(format!("create database {name}").as_str()).await.expect("create the test database");
        let _ = conn.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
        let url = format!("{base}/{name}");
        Self { backend: Backend::Postgres, url, data_dir, pg_name: Some(name), pg_admin_url: admin }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(name) = self.pg_name.take() {
            let admin = std::mem::take(&mut self.pg_admin_url);
            // Drop from a thread of its own: this may run inside the test's runtime.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async move {
                    if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                        let _ = conn.execute(format!("drop database if exists {name} with (force)").as_str()).await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub api: ApiClient,
    pub state: web::Data<AppState>,
    pub clock: Option<ManualClock>,
    pub shifted: Option<ShiftedClock>,
    pub db: TestDatabase,
}

pub fn settings_for(db: &TestDatabase) -> Settings {
    Settings {
        bind: "127.0.0.1:0".parse().expect("address"),
        database_url: Some(db.url.clone()),
        data_dir: db.data_dir.clone(),
        access_token_ttl_secs: 900,
        device_sign_in_days: 30,
        // The tests' push services run on loopback.
        push_allow_hosts: vec!["127.0.0.1".into(), "localhost".into()],
        trusted_proxies: Vec::new(),
        audit_key_file: None,
        max_body_kb: 256,
        ownership_timeout_secs: 600,
        push_timeout_secs: 5,
        vapid_subject: "mailto:tests@homeward.test".into(),
        poll_ms: 50,
        signal_lost_secs: 600,
        geofence_follow_up_secs: 120,
        map_tile_url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".into(),
        board_refresh_secs: 15,
        web_dir: db.data_dir.join("no-web-build"),
        cors_origins: Vec::new(),
        public_url: Some("https://homeward.test".into()),
        // Off here: most fixtures deliberately have no channels, and a safety-net notice for every visit
        // would change what those tests count. The safety-net tests turn it on.
        reach_checks: false,
        email: Default::default(),
        sms: Default::default(),
        secret_files: Default::default(),
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    start(backend, None, None, |_| {}).await
}

/// The server with a clock the test moves by hand.
pub async fn spawn_app_with_clock(backend: Backend, clock: ManualClock) -> TestApp {
    start(backend, Some(clock), None, |_| {}).await
}

/// The server on real time plus an offset the test can jump forward, with settings adjusted.
pub async fn spawn_app_shifted(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    start(backend, None, Some(ShiftedClock::new()), configure).await
}

async fn start(
    backend: Backend,
    manual: Option<ManualClock>,
    shifted: Option<ShiftedClock>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    homeward_server::telemetry::init();
    let db = TestDatabase::new(backend).await;
    let clock: Arc<dyn Clock> = match (&manual, &shifted) {
        (Some(c), _) => Arc::new(c.clone()),
        (None, Some(c)) => Arc::new(c.clone()),
        (None, None) => Arc::new(SystemClock),
    };
    let mut settings = settings_for(&db);
    configure(&mut settings);
    let app = Application::build_with_clock(settings, clock).await.expect("the server starts");
    let address = format!("http://{}", app.address());
    let state = app.state.clone();
    tokio::spawn(app.run_until_stopped());
    TestApp { api: ApiClient::new(&address), address, state, clock: manual, shifted, db }
}

/// Another server process on a test app's database (PostgreSQL scale-out): its own scheduler,
/// deliverer, live boards and change listener, on the same clock.
pub struct OtherProcess {
    pub address: String,
    pub state: web::Data<AppState>,
}

impl OtherProcess {
    /// `member`'s sign-in, sent to this process.
    pub fn api_for(&self, member: &Member) -> ApiClient {
        member.api.at(&self.address)
    }
}

/// A school with one person in each role; staff report to the leader.
pub struct School {
    pub id: Uuid,
    pub admin: Member,
    pub leader: Member,
    pub dsl: Member,
    pub staff: Member,
    pub other_staff: Member,
}

pub struct Member {
    pub user: UserView,
    pub api: ApiClient,
}

impl Member {
    pub fn id(&self) -> Uuid {
        self.user.id
    }
}

impl TestApp {
    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.state.clock.now()
    }

    /// An event happening now by the server's clock, to the millisecond.
    pub fn event_now(&self, kind: ClientEventKind) -> ClientEvent {
        let now = chrono::DateTime::from_timestamp_millis(self.now().timestamp_millis()).expect("a valid time");
        ClientEvent { id: Uuid::new_v4(), at: now, kind }
    }

    /// Jump the server's clock forward (a shifted clock keeps running in real time afterwards).
    pub fn advance(&self, by: Duration) {
        if let Some(c) = &self.shifted {
            c.advance(by);
        } else if let Some(c) = &self.clock {
            c.advance(by);
        } else {
            panic!("this app runs on the system clock; use spawn_app_shifted or spawn_app_with_clock");
        }
    }

    /// Start another server process on this app's database, with settings adjusted.
    pub async fn another_process(&self, configure: impl FnOnce(&mut Settings)) -> OtherProcess {
        let mut settings = settings_for(&self.db);
        configure(&mut settings);
        let app = Application::build_with_clock(settings, self.state.clock.clone()).await.expect("the server starts");
        let address = format!("http://{}", app.address());
        let state = app.state.clone();
        tokio::spawn(app.run_until_stopped());
        OtherProcess { address, state }
    }

    /// Plan `visit` through `worker`, starting now, and start it; returns the session's id.
    pub async fn start_visit(&self, worker: &ApiClient, mut visit: PlanSessionRequest) -> Uuid {
        visit.planned_start = self.now();
        let session = worker.plan_session(&visit).await.expect("plan the visit");
        let start = self.event_now(ClientEventKind::Start { location: None });
        worker.send_events(session.id, &[start]).await.expect("start the visit");
        session.id
    }

    /// A push service that checks this server's VAPID signatures.
    pub async fn push_service(&self) -> push_service::PushService {
        let key = self.state.vapid_public_key.clone().expect("the server has a VAPID key");
        push_service::PushService::start(key).await
    }

    /// Subscribe a new browser of `member` at `push`.
    pub async fn subscribe(&self, member: &Member, push: &push_service::PushService) -> push_service::Subscription {
        let subscription = push.subscribe();
        member
            .api
            .subscribe_push(&homeward_shared::api::PushSubscriptionRequest {
                endpoint: subscription.endpoint.clone(),
                keys: homeward_shared::api::PushSubscriptionKeys {
                    p256dh: subscription.p256dh.clone(),
                    auth: subscription.auth.clone(),
                },
            })
            .await
            .expect("subscribe");
        subscription
    }

    /// Create a school (with its default plan) and its people, signed in.
    pub async fn school(&self, name: &str) -> School {
        let mut tx = self.state.db.begin().await.expect("begin");
        let id = homeward_server::store::schools::create(&mut tx, name, self.now()).await.expect("create school");
        tx.commit().await.expect("commit");
        let tag = Uuid::new_v4().simple().to_string()[..8].to_string();
        let admin = self.member(id, &format!("admin-{tag}"), vec![Role::Admin], None).await;
        let leader = self.member(id, &format!("leader-{tag}"), vec![Role::Leader], None).await;
        let dsl = self.member(id, &format!("dsl-{tag}"), vec![Role::Dsl], None).await;
        let staff = self.member(id, &format!("staff-{tag}"), vec![Role::Staff], Some(leader.id())).await;
        let other_staff = self.member(id, &format!("staff2-{tag}"), vec![Role::Staff], Some(leader.id())).await;
        School { id, admin, leader, dsl, staff, other_staff }
    }

    pub async fn member(
        &self,
        school_id: Uuid,
        local: &str,
        roles: Vec<Role>,
        line_manager_id: Option<Uuid>,
    ) -> Member {
        let email = format!("{local}@school.test");
        homeward_server::routes::users::create_user(
            &self.state,
            school_id,
            None,
            CreateUserRequest {
                email: email.clone(),
                name: local.to_string(),
                password: PASSWORD.into(),
                roles,
                line_manager_id,
                phone: None,
            },
        )
        .await
        .expect("create user");
        let (api, login) = self.api.login(&email, PASSWORD).await.expect("sign in");
        Member { user: login.user, api }
    }
}

/// A low-risk procedural home visit starting now: needs no approval under the default rules.
pub fn low_risk_visit() -> PlanSessionRequest {
    PlanSessionRequest {
        kind: "home_visit".into(),
        sub_kind: Some("procedural".into()),
        companion_id: None,
        address: "1 Test Street".into(),
        location: Some(homeward_shared::Coordinates { latitude: 51.5, longitude: -0.12 }),
        geofence_radius_m: Some(150),
        pupil_reference: Some("ADM-1001".into()),
        household_notes: "Two adults; a dog.".into(),
        planned_start: Utc::now(),
        expected_duration_minutes: 60,
        check_in_interval_minutes: Some(20),
        escalation_plan_id: None,
        risk_assessment: RiskAssessment::all_low(),
        submit_for_approval: true,
    }
}

pub fn visit_with_risk(level: RiskLevel) -> PlanSessionRequest {
    PlanSessionRequest { risk_assessment: RiskAssessment::with_overall(level), ..low_risk_visit() }
}

/// A client event happening `offset` from now.
/// Times are kept to the millisecond, as the server stores them.
pub fn event(kind: ClientEventKind, offset: Duration) -> ClientEvent {
    ClientEvent { id: Uuid::new_v4(), at: now_ms() + offset, kind }
}

/// Now, to the millisecond.
pub fn now_ms() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("a valid time")
}

/// Read boards from a live-board stream until one satisfies `pred`, for at most `wait`.
pub async fn board_where(
    events: &mut homeward_shared::client::BoardEvents,
    wait: std::time::Duration,
    what: &str,
    pred: impl Fn(&homeward_shared::api::BoardView) -> bool,
) -> homeward_shared::api::BoardView {
    let found = tokio::time::timeout(wait, async {
        loop {
            match events.next().await.expect("the stream is readable") {
                Some(board) if pred(&board) => return board,
                Some(_) => continue,
                None => panic!("the stream ended while waiting for {what}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no board with {what} within {wait:?}"))
}

/// How long a test waits for what the server does in the background (the scheduler, the deliverer,
/// the database's own bookkeeping): generous, since the tests share a few cores and a busy machine is
/// slow, and a passing test waits only as long as the work takes.
pub const BACKGROUND_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Ask `check` every 25 ms until it gives `Some`, for at most `deadline`; panics naming `what` (and the
/// time waited) when it never does. For work done in the background, instead of a fixed number of polls.
pub async fn eventually<T, F>(what: &str, deadline: std::time::Duration, mut check: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    let started = tokio::time::Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        if started.elapsed() >= deadline {
            panic!("{what}: not within {deadline:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
