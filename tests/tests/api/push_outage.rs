//! The push service down, then back: a missed deadline climbs its ladder and a panic fires while every
//! send is refused, and once the service answers again every message arrives exactly once, in the
//! order it was written for each device, soon after the return. A real server on each database and
//! the real Web Push peer (VAPID checked, payloads decrypted), taken down in two ways: its port
//! closed (connections refused) and answering 503 to everything.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use homeward_server::notify::deliverer::MAX_BACKOFF;
use homeward_shared::api::{AlertKind, AlertResolution, ClientEventKind, EscalationPlanRequest, ResolveAlertRequest};
use homeward_shared::{EscalationStep, Recipient, Role};
use homeward_tests::push_service::{Outage, PushService, Subscription};
use homeward_tests::{Backend, School, TestApp, low_risk_visit, on_both_databases, spawn_app_shifted};
use serde_json::Value;
use uuid::Uuid;

/// How long the push service stays down: the two minutes with its port closed; 40 s when it
/// answers 503 (the behaviour does not change once the retries reach the backoff cap of 10 s).
/// `HOMEWARD_PUSH_OUTAGE_SECS` sets both.
fn outage(how: Outage) -> StdDuration {
    let default = match how {
        Outage::Refused => 120,
        Outage::Unavailable => 40,
    };
    let seconds = std::env::var("HOMEWARD_PUSH_OUTAGE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    StdDuration::from_secs(seconds)
}

/// Slack on top of the backoff cap for the backlog to be sent once the service is back: the first
/// retry comes at most `MAX_BACKOFF` after the return, then every waiting message goes out at once.
const FLUSH_SLACK: Duration = Duration::seconds(10);

fn step(delay_seconds: i64, recipients: Vec<Recipient>, instruction: &str) -> EscalationStep {
    EscalationStep { delay_seconds, recipients, channels: vec![], instruction: instruction.into() }
}

/// Which message a push carries: the alert, the purpose and the step.
type Key = (String, String, Option<i64>);

fn key(payload: &Value) -> Key {
    (
        payload["alert_id"].as_str().unwrap_or_default().to_string(),
        payload["purpose"].as_str().unwrap_or_default().to_string(),
        payload["step"].as_i64(),
    )
}

/// One push delivery row, as the outbox holds it.
struct Written {
    peer_id: String,
    key: Key,
    status: String,
    created_at: DateTime<Utc>,
}

/// Every push delivery of the school, in the order the outbox wrote them.
async fn written(app: &TestApp, school: &School) -> Vec<Written> {
    // The order written: PostgreSQL numbers deliveries; SQLite's rowid only grows (none is deleted).
    let order = match app.db.backend {
        Backend::Postgres => "d.queue_order",
        Backend::Sqlite => "d.rowid",
    };
    let rows: Vec<(Option<String>, String, String, i64)> = sqlx::query_as(&format!(
        "select s.endpoint, d.payload, d.status, d.created_at from deliveries d \
         left join push_subscriptions s on s.subscription_id = d.subscription_id \
         where d.channel = 'push' and d.school_id = $1 order by {order}"
    ))
    .bind(school.id.to_string())
    .fetch_all(&app.state.db.pool)
    .await
    .expect("read the outbox");
    rows.into_iter()
        .map(|(endpoint, payload, status, created_at)| Written {
            peer_id: endpoint.and_then(|e| e.rsplit('/').next().map(str::to_string)).unwrap_or_default(),
            key: key(&serde_json::from_str(&payload).expect("a stored payload")),
            status,
            created_at: DateTime::from_timestamp_millis(created_at).expect("a time"),
        })
        .collect()
}

async fn attempts_that_failed(app: &TestApp, school: &School) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from delivery_attempts a join deliveries d on d.delivery_id = a.delivery_id \
         where d.school_id = $1 and a.outcome = 'retry'",
    )
    .bind(school.id.to_string())
    .fetch_one(&app.state.db.pool)
    .await
    .expect("count the retries");
    n
}

/// Poll `check` every 100 ms until it holds or `within` passes.
async fn eventually<F: std::future::Future<Output = bool>>(within: StdDuration, mut check: impl FnMut() -> F) -> bool {
    let until = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

struct Devices {
    worker: Subscription,
    panicking_worker: Subscription,
    leader_phone: Subscription,
    leader_laptop: Subscription,
    dsl: Subscription,
}

impl Devices {
    fn all(&self) -> [(&'static str, &Subscription); 5] {
        [
            ("the worker", &self.worker),
            ("the worker who panics", &self.panicking_worker),
            ("the leader's phone", &self.leader_phone),
            ("the leader's laptop", &self.leader_laptop),
            ("the DSL", &self.dsl),
        ]
    }
}

async fn start_visit(app: &TestApp, worker: &homeward_tests::Member, plan: Uuid, minutes: i64) -> Uuid {
    let mut visit = low_risk_visit();
    visit.escalation_plan_id = Some(plan);
    visit.check_in_interval_minutes = None;
    visit.expected_duration_minutes = minutes;
    app.start_visit(&worker.api, visit).await
}

async fn every_alert_arrives_once_in_order_after_an_outage(backend: Backend, how: Outage) {
    let outage = outage(how);
    let app = spawn_app_shifted(backend, |_| {}).await;
    let school = app.school("Outage School").await;
    let plan = school
        .admin
        .api
        .create_escalation_plan(&EscalationPlanRequest {
            name: "Seconds".into(),
            steps: vec![
                step(0, vec![Recipient::Worker], "Check in now."),
                step(2, vec![Recipient::LineManager], "Phone the worker now."),
                step(4, vec![Recipient::Role { role: Role::Dsl }], "Call 999 and give the visit details."),
            ],
            repeat_every_seconds: Some(10),
            is_default: false,
        })
        .await
        .expect("create the plan");
    let push: PushService = app.push_service().await;
    let devices = Devices {
        worker: app.subscribe(&school.staff, &push).await,
        panicking_worker: app.subscribe(&school.other_staff, &push).await,
        leader_phone: app.subscribe(&school.leader, &push).await,
        leader_laptop: app.subscribe(&school.leader, &push).await,
        dsl: app.subscribe(&school.dsl, &push).await,
    };
    let overdue = start_visit(&app, &school.staff, plan.id, 5).await;
    let panicked = start_visit(&app, &school.other_staff, plan.id, 60).await;

    push.go_down(how).await;
    let down_at = tokio::time::Instant::now();
    // The first visit's five minutes run out: its ladder climbs while nothing can be delivered.
    app.advance(Duration::minutes(5));
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    school
        .other_staff
        .api
        .send_events(panicked, &[app.event_now(ClientEventKind::Panic { location: None })])
        .await
        .expect("the panic is accepted while the push service is down");
    tokio::time::sleep(outage.saturating_sub(down_at.elapsed())).await;
    assert!(push.received().is_empty(), "nothing got through while the service was down");
    let tried = attempts_that_failed(&app, &school).await;
    assert!(tried >= 5, "the server kept trying during the outage ({tried} failed tries)");

    push.come_back().await;
    let back_at = Utc::now();
    let back_on_server = app.now();
    println!("{how:?} for {} s: the service is back; {tried} tries failed meanwhile", outage.as_secs());

    // The backlog: everything the outbox wrote before the return, per device in the order written.
    let backlog: BTreeMap<String, usize> = written(&app, &school)
        .await
        .iter()
        .filter(|w| w.created_at <= back_on_server)
        .fold(BTreeMap::new(), |mut per, w| {
            *per.entry(w.peer_id.clone()).or_default() += 1;
            per
        });
    let flushed = eventually(StdDuration::from_secs(60), || {
        let push = push.clone();
        let backlog = backlog.clone();
        async move { backlog.iter().all(|(id, n)| push.received_by(id).len() >= *n) }
    })
    .await;
    assert!(flushed, "the backlog arrived; attempts: {:#?}", push.attempts());
    let flushed_at = backlog.iter().map(|(id, n)| push.received_by(id)[n - 1].at).max().expect("a backlog");
    let took = flushed_at - back_at;
    println!(
        "{how:?} for {} s: {} messages waiting for {} devices were all delivered {} ms after the service came back",
        outage.as_secs(),
        backlog.values().sum::<usize>(),
        backlog.len(),
        took.num_milliseconds()
    );
    assert!(took < MAX_BACKOFF + FLUSH_SLACK, "the backlog went out soon after the return ({took})");

    // A leader takes both alerts and resolves them: the repeats stop and the resolutions go out behind
    // everything else.
    let alerts = school.leader.api.alerts("open").await.expect("alerts");
    let missed =
        alerts.iter().find(|a| a.session_id == overdue && a.kind == AlertKind::MissedDeadline).expect("missed");
    let panic = alerts.iter().find(|a| a.session_id == panicked && a.kind == AlertKind::Panic).expect("panic");
    for alert in [missed, panic] {
        school.leader.api.acknowledge_alert(alert.id).await.expect("take ownership");
        let resolved = ResolveAlertRequest { resolution: AlertResolution::WorkerSafe, notes: "Spoke to them.".into() };
        school.leader.api.resolve_alert(alert.id, &resolved).await.expect("resolve");
    }
    let settled = eventually(StdDuration::from_secs(30), || async {
        let rows = written(&app, &school).await;
        rows.iter().all(|w| w.status == "sent") && push.received().len() >= rows.len()
    })
    .await;
    let rows = written(&app, &school).await;
    assert!(settled, "every push delivery was sent: {:?}", rows.iter().map(|w| &w.status).collect::<Vec<_>>());
    // Anything sent twice would arrive within a moment.
    tokio::time::sleep(StdDuration::from_secs(1)).await;

    let (missed_id, panic_id) = (missed.id.to_string(), panic.id.to_string());
    for (who, device) in devices.all() {
        let expected: Vec<&Key> = rows.iter().filter(|w| w.peer_id == device.id).map(|w| &w.key).collect();
        let arrived: Vec<Key> = push.received_by(&device.id).iter().map(|m| key(&m.payload)).collect();
        assert_eq!(arrived.iter().collect::<Vec<_>>(), expected, "{who}: every message once, in the order written");
        println!("{who}: {} messages", arrived.len());
        // The order in the alert's own terms: no repeat before the step it follows, the resolution last.
        for alert in [&missed_id, &panic_id] {
            let of_alert: Vec<&Key> = arrived.iter().filter(|k| &k.0 == alert).collect();
            if let Some(first_repeat) = of_alert.iter().position(|k| k.1 == "repeat") {
                assert!(of_alert[..first_repeat].iter().any(|k| k.1 == "step"), "{who}: a step before the repeats");
            }
            if let Some(resolved) = of_alert.iter().position(|k| k.1 == "resolved") {
                assert_eq!(resolved, of_alert.len() - 1, "{who}: the resolution comes last");
            }
        }
    }
    let to = |device: &Subscription| push.received_by(&device.id).iter().map(|m| key(&m.payload)).collect::<Vec<_>>();
    let step_of = |alert: &str, n: i64| (alert.to_string(), "step".to_string(), Some(n));
    assert!(to(&devices.worker).contains(&step_of(&missed_id, 1)), "the worker was asked to check in");
    for device in [&devices.leader_phone, &devices.leader_laptop] {
        let got = to(device);
        assert!(got.contains(&step_of(&missed_id, 2)), "the line manager's step reached each of their devices");
        assert!(got.iter().any(|k| k.0 == panic_id && k.1 == "step"), "the panic reached the leader");
        assert!(got.iter().any(|k| k.1 == "repeat"), "the repeats while nobody owned the alerts came too");
        for alert in [&missed_id, &panic_id] {
            assert!(got.iter().any(|k| &k.0 == alert && k.1 == "resolved"), "the leader heard each was resolved");
        }
    }
    assert!(to(&devices.dsl).contains(&step_of(&missed_id, 3)), "the DSL's step came");
    assert!(
        to(&devices.panicking_worker).iter().all(|k| k.0 != panic_id || k.1 != "step"),
        "no alarm to the one who pressed"
    );
}

async fn refused_connections_for_the_outage(backend: Backend) {
    every_alert_arrives_once_in_order_after_an_outage(backend, Outage::Refused).await
}

async fn service_unavailable_for_the_outage(backend: Backend) {
    every_alert_arrives_once_in_order_after_an_outage(backend, Outage::Unavailable).await
}

on_both_databases!(refused_connections_for_the_outage, service_unavailable_for_the_outage);
