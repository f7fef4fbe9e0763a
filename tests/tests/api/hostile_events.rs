//! The phone's event batch (`POST /api/v1/sessions/{id}/events`) under hostile input: garbage and
//! truncated JSON, bytes that are not UTF-8, numbers too large for any field, duplicate ids, times far in
//! the past and future, batches too long or too large, wrong types and unknown kinds. Each is refused with
//! a clear 4xx in the shared `{code, message}` body that names what is wrong, and the database is the same
//! after as before. Then random batches, good and bad mixed, from a property-test generator: never a 5xx,
//! a refusal stores nothing, and an acceptance accounts for every event of the batch exactly once.
//! Last, the NUL character in text anywhere in the API, which PostgreSQL cannot store.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use homeward_shared::api::{ClientEventKind, EventBatchResponse};
use homeward_shared::client::{ApiClient, RawBody};
use homeward_shared::session::SessionStatus;
use homeward_tests::{Backend, TestApp, event, low_risk_visit, now_ms, on_both_databases, spawn_app};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

// ----------------------------------------------------------------------------------------------------
// What is stored, read straight from the database.

/// Every table a request can write to.
const TABLES: [&str; 18] = [
    "schools",
    "users",
    "access_tokens",
    "escalation_plans",
    "sessions",
    "session_events",
    "location_pings",
    "audit_log",
    "alerts",
    "timers",
    "push_subscriptions",
    "deliveries",
    "delivery_attempts",
    "on_call_rotas",
    "safety_net_checks",
    "alert_messages",
    "reviews",
    "no_signal_marks",
];

type SessionState = (String, String, String, i64, i64, i64, i64, i64, String, i64);

/// The row counts of every table, each session's state and every stored event.
#[derive(Debug, PartialEq)]
struct Snapshot {
    counts: Vec<(&'static str, i64)>,
    sessions: Vec<SessionState>,
    events: Vec<(String, String, String, i64)>,
}

impl Snapshot {
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
        let sessions = sqlx::query_as(
            "select session_id, status, coalesce(alarm, ''), coalesce(deadline, -1), coalesce(started_at, -1), \
             coalesce(ended_at, -1), coalesce(last_check_in, -1), late_check_ins, coalesce(outcome, ''), updated_at \
             from sessions order by session_id",
        )
        .fetch_all(pool)
        .await
        .expect("read sessions");
        let events =
            sqlx::query_as("select event_id, session_id, kind, occurred_at from session_events order by event_id")
                .fetch_all(pool)
                .await
                .expect("read events");
        Self { counts, sessions, events }
    }

    fn difference(&self, after: &Snapshot) -> String {
        let mut changed: Vec<String> = self
            .counts
            .iter()
            .zip(&after.counts)
            .filter(|(b, a)| b != a)
            .map(|((table, b), (_, a))| format!("{table} rows {b} -> {a}"))
            .collect();
        if self.sessions != after.sessions {
            changed.push("a session changed".into());
        }
        if self.events != after.events {
            changed.push("the stored events changed".into());
        }
        changed.join(", ")
    }
}

// ----------------------------------------------------------------------------------------------------
// Hostile batches and how each must be refused.

struct Case {
    what: &'static str,
    body: RawBody,
    refusal: Refusal,
}

/// How a case must be refused.
struct Refusal {
    status: u16,
    /// The error code; empty for any.
    code: &'static str,
    /// What the message must mention, with alternatives separated by `|`.
    names: &'static str,
}

fn json_case(what: &'static str, body: Value, status: u16, code: &'static str, names: &'static str) -> Case {
    Case { what, body: RawBody::Json(body), refusal: Refusal { status, code, names } }
}

fn bytes_case(what: &'static str, bytes: Vec<u8>, status: u16, code: &'static str, names: &'static str) -> Case {
    Case {
        what,
        body: RawBody::Bytes { content_type: "application/json", bytes },
        refusal: Refusal { status, code, names },
    }
}

fn check_in() -> Value {
    serde_json::to_value(event(ClientEventKind::CheckIn, Duration::zero())).expect("an event as JSON")
}

fn extend(minutes: i64) -> Value {
    serde_json::to_value(event(ClientEventKind::Extend { minutes }, Duration::zero())).expect("an event as JSON")
}

fn with(mut value: Value, key: &str, new: Value) -> Value {
    value.as_object_mut().expect("an object").insert(key.to_string(), new);
    value
}

fn batch(events: Vec<Value>) -> Value {
    json!({ "events": events })
}

/// A batch whose one check-in happens at `at`, written as the phone would send it.
fn check_in_at(at: &str) -> Value {
    batch(vec![with(check_in(), "at", json!(at))])
}

/// A good batch with `raw` spliced in as the value of the check-in's `field`, for JSON that serde_json
/// cannot produce itself.
fn spliced(field: &str, raw: &[u8]) -> Vec<u8> {
    let marker = "\"@@spliced@@\"";
    let text = batch(vec![with(check_in(), field, json!("@@spliced@@"))]).to_string();
    let (head, tail) = text.split_once(marker).expect("the marker");
    [head.as_bytes(), raw, tail.as_bytes()].concat()
}

fn cases() -> Vec<Case> {
    let good = check_in();
    let nested = format!("{{\"events\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    vec![
        // Garbage and broken JSON.
        bytes_case("an empty body", vec![], 400, "invalid_json", "EOF|end"),
        bytes_case("plain text", b"check in please".to_vec(), 400, "invalid_json", "expected"),
        bytes_case(
            "truncated JSON",
            batch(vec![check_in()]).to_string().as_bytes()[..40].to_vec(),
            400,
            "invalid_json",
            "EOF",
        ),
        bytes_case(
            "JSON then garbage",
            format!("{}xyz", batch(vec![check_in()])).into_bytes(),
            400,
            "invalid_json",
            "trailing",
        ),
        bytes_case(
            "two batches back to back",
            format!("{0}{0}", batch(vec![check_in()])).into_bytes(),
            400,
            "invalid_json",
            "trailing",
        ),
        bytes_case("100 000 nested arrays", nested.into_bytes(), 400, "invalid_json", "recursion|events"),
        bytes_case("NaN as minutes", spliced("minutes", b"NaN"), 400, "invalid_json", "expected"),
        json_case("null", Value::Null, 400, "invalid_json", "null|events"),
        json_case(
            "an array of events without the wrapper",
            json!([good.clone()]),
            400,
            "invalid_json",
            "events|sequence",
        ),
        // Bytes that are not UTF-8, raw and escaped.
        bytes_case(
            "a type of invalid UTF-8 bytes",
            spliced("type", b"\"\xff\xfe\xfd\""),
            400,
            "invalid_json",
            "unicode|UTF-8|utf-8",
        ),
        bytes_case(
            "a PIN of invalid UTF-8 bytes",
            spliced("pin", b"\"12\xc3\x28\""),
            400,
            "invalid_json",
            "unicode|UTF-8|utf-8",
        ),
        bytes_case("a lone surrogate escape", spliced("type", b"\"\\ud800\""), 400, "invalid_json", "surrogate|escape"),
        bytes_case("a NUL byte in a string", spliced("type", b"\"check_in\x00\""), 400, "invalid_json", "control"),
        // Numbers no field can hold.
        json_case(
            "minutes of 2^63",
            batch(vec![with(extend(10), "minutes", json!(9_223_372_036_854_775_808u64))]),
            400,
            "invalid_json",
            "events[0].minutes",
        ),
        bytes_case("minutes of 1e400", spliced("minutes", b"1e400"), 400, "invalid_json", "number|range"),
        bytes_case(
            "a 500-digit minutes",
            spliced("minutes", "9".repeat(500).as_bytes()),
            400,
            "invalid_json",
            "number|range|minutes",
        ),
        json_case("minutes of i64::MAX", batch(vec![extend(i64::MAX)]), 422, "invalid_minutes", "minutes"),
        json_case("minutes of i64::MIN", batch(vec![extend(i64::MIN)]), 422, "invalid_minutes", "minutes"),
        json_case(
            "minutes of 1.5",
            batch(vec![with(extend(10), "minutes", json!(1.5))]),
            400,
            "invalid_json",
            "events[0].minutes",
        ),
        json_case(
            "a start at latitude 1e308",
            batch(vec![located(with(check_in(), "type", json!("start")), 1e308, 0.0)]),
            422,
            "invalid_latitude",
            "latitude",
        ),
        // Duplicate ids.
        json_case("the same event twice", batch(vec![good.clone(), good.clone()]), 422, "invalid_events", "twice"),
        json_case(
            "two kinds under one id",
            batch(vec![good.clone(), with(extend(15), "id", good["id"].clone())]),
            422,
            "invalid_events",
            "twice",
        ),
        // Times far from now.
        json_case("the Unix epoch", check_in_at("1970-01-01T00:00:00Z"), 422, "invalid_events_at", "planned"),
        json_case("year 1", check_in_at("0001-01-01T00:00:00Z"), 422, "invalid_events_at", "planned"),
        json_case(
            "chrono's first instant",
            check_in_at("-262143-01-01T00:00:00Z"),
            422,
            "invalid_events_at",
            "planned",
        ),
        json_case(
            "an hour in the future",
            batch(vec![serde_json::to_value(event(ClientEventKind::CheckIn, Duration::hours(1))).expect("json")]),
            422,
            "invalid_events_at",
            "future",
        ),
        json_case("year 9999", check_in_at("9999-12-31T23:59:59Z"), 422, "invalid_events_at", "future"),
        json_case(
            "chrono's last instant",
            check_in_at("+262142-12-31T23:59:59.999999999Z"),
            422,
            "invalid_events_at",
            "future",
        ),
        json_case("beyond chrono's range", check_in_at("+999999-01-01T00:00:00Z"), 400, "invalid_json", "events[0].at"),
        json_case("a 25th hour", check_in_at("2026-01-01T25:00:00Z"), 400, "invalid_json", "events[0].at"),
        json_case("a time without a zone", check_in_at("2026-01-01T10:00:00"), 400, "invalid_json", "events[0].at"),
        json_case(
            "a time as seconds",
            batch(vec![with(check_in(), "at", json!(1_767_225_600))]),
            400,
            "invalid_json",
            "events[0].at",
        ),
        // Too much at once.
        json_case("201 events", batch((0..201).map(|_| check_in()).collect()), 422, "invalid_events", "200"),
        json_case(
            "a 300 KB PIN",
            batch(vec![with(with(check_in(), "type", json!("end_with_pin")), "pin", json!("1".repeat(300 * 1024)))]),
            413,
            "payload_too_large",
            "256 KB|too large",
        ),
        json_case(
            "1 MB of events",
            batch((0..10_000).map(|_| check_in()).collect()),
            413,
            "payload_too_large",
            "256 KB",
        ),
        json_case(
            "4 MB of events",
            batch((0..40_000).map(|_| check_in()).collect()),
            413,
            "payload_too_large",
            "too large",
        ),
        // Wrong types.
        json_case("events is a string", json!({"events": "check_in"}), 400, "invalid_json", "events"),
        json_case("an event is a number", batch(vec![json!(42)]), 400, "invalid_json", "events"),
        json_case("an event is null", batch(vec![Value::Null]), 400, "invalid_json", "events"),
        json_case(
            "the id is true",
            batch(vec![with(check_in(), "id", json!(true))]),
            400,
            "invalid_json",
            "events[0].id",
        ),
        json_case(
            "the id is 37 characters",
            batch(vec![with(check_in(), "id", json!(format!("{}0", Uuid::new_v4())))]),
            400,
            "invalid_json",
            "events[0].id",
        ),
        json_case(
            "the type is a number",
            batch(vec![with(check_in(), "type", json!(3))]),
            400,
            "invalid_json",
            "events[0].type",
        ),
        json_case(
            "the location is a list",
            batch(vec![with(with(check_in(), "type", json!("panic")), "location", json!("here"))]),
            400,
            "invalid_json",
            "events[0].location",
        ),
        json_case(
            "the PIN is a number",
            batch(vec![with(with(check_in(), "type", json!("end_with_pin")), "pin", json!(1234))]),
            400,
            "invalid_json",
            "events[0].pin",
        ),
        json_case(
            "the outcome is text",
            batch(vec![with(with(check_in(), "type", json!("outcome")), "outcome", json!("fine"))]),
            400,
            "invalid_json",
            "events[0].outcome",
        ),
        json_case(
            "an unknown field",
            batch(vec![with(check_in(), "mood", json!("calm"))]),
            400,
            "invalid_json",
            "mood",
        ),
        // Unknown kinds.
        json_case(
            "type teleport",
            batch(vec![with(check_in(), "type", json!("teleport"))]),
            400,
            "invalid_json",
            "teleport",
        ),
        json_case(
            "type in capitals",
            batch(vec![with(check_in(), "type", json!("CHECK_IN"))]),
            400,
            "invalid_json",
            "CHECK_IN",
        ),
        json_case("an empty type", batch(vec![with(check_in(), "type", json!(""))]), 400, "invalid_json", "`type`"),
        json_case(
            "type null",
            batch(vec![with(check_in(), "type", Value::Null)]),
            400,
            "invalid_json",
            "events[0].type",
        ),
        // Not JSON at all, by its content type.
        Case {
            what: "a form post",
            body: RawBody::Text { content_type: "application/x-www-form-urlencoded", text: "type=check_in".into() },
            refusal: Refusal { status: 415, code: "unsupported_media_type", names: "JSON" },
        },
        // A good event with a bad one: the batch is all or nothing.
        json_case(
            "a good check-in then an unknown kind",
            batch(vec![check_in(), with(check_in(), "type", json!("nap"))]),
            400,
            "invalid_json",
            "nap",
        ),
        json_case(
            "a good check-in then a bad extension",
            batch(vec![check_in(), extend(0)]),
            422,
            "invalid_minutes",
            "minutes",
        ),
        json_case(
            "a good check-in then one from 1970",
            batch(vec![check_in(), check_in_at("1970-01-01T00:00:00Z")["events"][0].clone()]),
            422,
            "invalid_events_at",
            "planned",
        ),
        json_case(
            "a good check-in then two PINs",
            batch(vec![check_in(), end_with_pin("1234"), end_with_pin("1234")]),
            422,
            "invalid_events",
            "end_with_pin",
        ),
        json_case("a PIN of letters", batch(vec![end_with_pin("abcd")]), 422, "invalid_pin", "PIN"),
        json_case("a 9-digit PIN", batch(vec![end_with_pin("123456789")]), 422, "invalid_pin", "PIN"),
        json_case("a 200 KB PIN", batch(vec![end_with_pin(&"1".repeat(200 * 1024))]), 422, "invalid_pin", "PIN"),
        json_case(
            "a good check-in then a second start",
            batch(vec![
                check_in(),
                serde_json::to_value(event(ClientEventKind::Start { location: None }, Duration::zero())).expect("json"),
            ]),
            409,
            "",
            "start",
        ),
    ]
}

fn end_with_pin(pin: &str) -> Value {
    with(with(check_in(), "type", json!("end_with_pin")), "pin", json!(pin))
}

fn located(event: Value, latitude: f64, longitude: f64) -> Value {
    with(event, "location", json!({"latitude": latitude, "longitude": longitude}))
}

/// Whether the message names `names` (alternatives separated by `|`).
fn mentions(message: &str, names: &str) -> bool {
    names.split('|').any(|name| message.contains(name))
}

async fn send(client: &ApiClient, path: &str, body: RawBody) -> (u16, Value) {
    let (status, body) = client.raw(Method::POST, path, Some(body)).await.expect("the request completes");
    (status.as_u16(), body)
}

/// The problems with one answer to a refused batch.
fn refusal_problems(case: &Refusal, status: u16, body: &Value, before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut problems = Vec::new();
    if status >= 500 {
        problems.push(format!("a server error ({status})"));
    } else if status != case.status {
        problems.push(format!("status {status}, expected {}", case.status));
    }
    let code = body.get("code").and_then(Value::as_str).unwrap_or_default();
    let message = body.get("message").and_then(Value::as_str).unwrap_or_default();
    if code.is_empty() || message.is_empty() || body.as_object().is_none_or(|o| o.len() != 2) {
        problems.push("the body is not the shared {code, message}".into());
    }
    if !case.code.is_empty() && code != case.code {
        problems.push(format!("code `{code}`, expected `{}`", case.code));
    }
    if !mentions(message, case.names) {
        problems.push(format!("the message does not mention `{}`", case.names));
    }
    if before != after {
        problems.push(format!("the refused batch changed what is stored: {}", before.difference(after)));
    }
    problems
}

// ----------------------------------------------------------------------------------------------------
// The tests.

async fn hostile_batches_are_refused_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Hostile Events School").await;
    let worker = &school.staff.api;
    worker.set_pins("1234", "9876").await.expect("set the PINs");
    let live = worker.plan_session(&low_risk_visit()).await.expect("plan").id;
    worker
        .send_events(live, &[event(ClientEventKind::Start { location: None }, Duration::seconds(-30))])
        .await
        .expect("start");
    let path = format!("/api/v1/sessions/{live}/events");

    let all = cases();
    let sent = all.len();
    let mut failures = Vec::new();
    for Case { what, body, refusal } in all {
        let before = Snapshot::take(&app).await;
        let (status, body) = send(worker, &path, body).await;
        let after = Snapshot::take(&app).await;
        let problems = refusal_problems(&refusal, status, &body, &before, &after);
        if !problems.is_empty() {
            let mut shown = body.to_string();
            shown.truncate(300);
            failures.push(format!("- {what}: {}\n    answer: {status} {shown}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} hostile batches were not refused properly:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The session took none of it and still takes a good check-in.
    let view = worker.session(live).await.expect("the session");
    assert_eq!(view.status, SessionStatus::Active);
    assert_eq!(view.last_check_in, None);
    let good = event(ClientEventKind::CheckIn, Duration::zero());
    let answer = worker.send_events(live, &[good.clone()]).await.expect("a good check-in after the hostile ones");
    assert_eq!(answer.applied, vec![good.id]);
}

// ----------------------------------------------------------------------------------------------------
// Random batches.

/// One event as the phone might send it, or spoiled: a known or unknown kind, a time near now or far
/// off, minutes and coordinates in range or not, a stray field, a wrong type.
fn random_event() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        8 => proptest::sample::select(vec!["start", "check_in", "extend", "end", "end_with_pin", "panic", "outcome"]).prop_map(|k| json!(k)),
        1 => "[a-z_]{0,12}".prop_map(|k| json!(k)),
        1 => any::<i64>().prop_map(|n| json!(n)),
    ];
    let at = prop_oneof![
        8 => (-600i64..60).prop_map(|s| json!(Utc::now() + Duration::seconds(s))),
        1 => (-400_000i64..400_000).prop_map(|d| json!(Utc::now() + Duration::days(d))),
        1 => "\\PC{0,30}".prop_map(|s| json!(s)),
    ];
    let minutes = prop_oneof![4 => (-5i64..130).prop_map(|m| json!(m)), 1 => any::<i64>().prop_map(|m| json!(m)), 1 => any::<f64>().prop_map(|m| json!(m)), 1 => Just(json!("ten"))];
    let location = prop_oneof![
        2 => Just(Value::Null),
        4 => (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(a, b)| json!({"latitude": a, "longitude": b})),
        1 => (any::<f64>(), any::<f64>()).prop_map(|(a, b)| json!({"latitude": a, "longitude": b})),
        1 => Just(json!("here")),
    ];
    let pin =
        prop_oneof![Just(json!("1234")), Just(json!("9876")), "\\PC{0,10}".prop_map(|p| json!(p)), Just(json!(1234))];
    let outcome = prop_oneof![
        3 => (any::<bool>(), any::<bool>(), "none|safeguarding|unknown", "\\PC{0,40}").prop_map(|(a, b, concern, notes)| json!({
            "child_seen": a, "responsible_adult_present": b, "entered_premises": false, "concern": concern, "notes": notes
        })),
        1 => Just(json!({"notes": "n".repeat(5_001), "child_seen": true, "responsible_adult_present": true, "entered_premises": true, "concern": "none"})),
        1 => Just(json!(7)),
    ];
    let id = prop_oneof![8 => any::<u128>().prop_map(|n| json!(Uuid::from_u128(n))), 1 => "\\PC{0,12}".prop_map(|s| json!(s))];
    let stray = proptest::option::weighted(0.1, ("[a-z]{1,8}", any::<i64>()));
    (id, kind, at, minutes, location, pin, outcome, stray).prop_map(
        |(id, kind, at, minutes, location, pin, outcome, stray)| {
            let mut event = json!({"id": id, "at": at, "type": kind.clone()});
            match kind.as_str() {
                Some("extend") => event["minutes"] = minutes,
                Some("start") | Some("panic") => event["location"] = location,
                Some("end_with_pin") => event["pin"] = pin,
                Some("outcome") => event["outcome"] = outcome,
                _ => {}
            }
            if let Some((key, value)) = stray {
                event[key] = json!(value);
            }
            event
        },
    )
}

/// An event the phone could well send, happening in the last two minutes: it may still be refused for
/// the state the visit is in.
fn plausible_event() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        4 => Just(json!({"type": "check_in"})),
        2 => (1i64..=120).prop_map(|m| json!({"type": "extend", "minutes": m})),
        1 => Just(json!({"type": "end"})),
        1 => proptest::sample::select(vec!["1234", "9876"]).prop_map(|pin| json!({"type": "end_with_pin", "pin": pin})),
        1 => (-90.0f64..=90.0, -180.0f64..=180.0)
            .prop_map(|(a, b)| json!({"type": "panic", "location": {"latitude": a, "longitude": b}})),
        1 => Just(json!({"type": "start", "location": null})),
    ];
    (any::<u128>(), -120i64..=2, kind).prop_map(|(id, seconds, mut event)| {
        event["id"] = json!(Uuid::from_u128(id));
        event["at"] = json!(now_ms() + Duration::seconds(seconds));
        event
    })
}

/// A batch: a few plausible events, or up to a dozen spoiled ones (some repeated), or not a batch at all.
fn random_batch() -> impl Strategy<Value = Value> {
    prop_oneof![
        5 => proptest::collection::vec(plausible_event(), 1..4).prop_map(|events| json!({ "events": events })),
        4 => (proptest::collection::vec(random_event(), 0..12), proptest::option::weighted(0.15, any::<prop::sample::Index>()))
            .prop_map(|(mut events, repeat)| {
                if let Some(i) = repeat.filter(|_| !events.is_empty()) {
                    let again = events[i.index(events.len())].clone();
                    events.push(again);
                }
                json!({ "events": events })
            }),
        1 => random_event().prop_map(|e| json!({ "events": e })),
        1 => random_event(),
    ]
}

/// Random batches against a pool of visits in every state: never a 5xx, a refusal is the shared error
/// body and stores nothing, and an acceptance reports each event of the batch as applied or a duplicate.
async fn random_batches_never_fail_the_server(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Random Events School").await;
    let worker = &school.staff.api;
    worker.set_pins("1234", "9876").await.expect("set the PINs");
    let mut visits = Vec::new();
    for n in 0..6 {
        let id = worker.plan_session(&low_risk_visit()).await.expect("plan").id;
        if n % 2 == 0 {
            worker
                .send_events(id, &[event(ClientEventKind::Start { location: None }, Duration::seconds(-60))])
                .await
                .expect("start");
        }
        visits.push(id);
    }
    let cases: u32 = std::env::var("HOMEWARD_HOSTILE_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(120);
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let strategy = (random_batch(), any::<prop::sample::Index>());
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..cases {
        // Visits end and go into alarm as the batches land: keep a fresh one under way.
        if case % 20 == 0 {
            let id = worker.plan_session(&low_risk_visit()).await.expect("plan").id;
            worker
                .send_events(id, &[event(ClientEventKind::Start { location: None }, Duration::seconds(-60))])
                .await
                .expect("start");
            visits.push(id);
        }
        let (body, target) = strategy.new_tree(&mut runner).expect("a random batch").current();
        // One target in every few is a visit that does not exist.
        let id = visits.get(target.index(visits.len() + 1)).copied().unwrap_or_else(Uuid::new_v4);
        let path = format!("/api/v1/sessions/{id}/events");
        let before = Snapshot::take(&app).await;
        let (status, answer) = send(worker, &path, RawBody::Json(body.clone())).await;
        let after = Snapshot::take(&app).await;
        let shown = || {
            let mut text = format!("batch {body}\n  to {path}\n  answer {status} {answer}");
            text.truncate(2_000);
            text
        };
        assert!(status < 500, "a server error for a random batch: {}", shown());
        if status == 200 {
            accepted += 1;
            let response: EventBatchResponse = serde_json::from_value(answer.clone())
                .unwrap_or_else(|e| panic!("not an event batch response ({e}): {}", shown()));
            let sent: BTreeSet<String> = body["events"]
                .as_array()
                .expect("an accepted batch is a list")
                .iter()
                .map(|e| e["id"].as_str().expect("an id").to_string())
                .collect();
            let answered: BTreeSet<String> =
                response.applied.iter().chain(&response.duplicates).map(Uuid::to_string).collect();
            assert_eq!(sent, answered, "every event is applied or a duplicate, once: {}", shown());
            assert_eq!(answered.len(), response.applied.len() + response.duplicates.len(), "{}", shown());
        } else {
            refused += 1;
            assert!((400..500).contains(&status), "{}", shown());
            let code = answer.get("code").and_then(Value::as_str).unwrap_or_default();
            let message = answer.get("message").and_then(Value::as_str).unwrap_or_default();
            assert!(!code.is_empty() && !message.is_empty(), "not the shared error body: {}", shown());
            assert_eq!(
                before,
                after,
                "a refused batch changed what is stored ({}): {}",
                before.difference(&after),
                shown()
            );
        }
    }
    // A generator that only ever produced refusals (or only acceptances) would prove little.
    assert!(refused > 0 && accepted > 0, "{accepted} accepted and {refused} refused of {cases} random batches");
}

/// The NUL character (U+0000, `\u0000` in JSON) in any text: PostgreSQL cannot store it in a text
/// column, so it used to fail there as a 500 wherever text is stored. Now a 400 naming the field, on both
/// databases alike, before any handler runs; and nothing is stored.
async fn the_nul_character_is_refused_in_any_text(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("NUL School").await;
    let live = school.staff.api.plan_session(&low_risk_visit()).await.expect("plan").id;
    let mut visit = serde_json::to_value(low_risk_visit()).expect("a visit as JSON");
    visit["address"] = json!("1 Test\u{0} Street");
    let plan = json!({"name": "Night\u{0}plan", "steps": [{"delay_seconds": 0, "recipients": [{"type": "worker"}],
        "instruction": "Check in"}]});
    let person = json!({"email": "new.person@school.test", "name": "New\u{0}Person", "password": "long-enough-password",
        "roles": ["staff"], "line_manager_id": null});
    let csv =
        "email,name,roles,line_manager_email,password\nnew.one@school.test,New\u{0}One,staff,,long-enough-password\n";
    let cases: Vec<(&ApiClient, String, RawBody, &str, &str)> = vec![
        (
            &school.staff.api,
            "/api/v1/signal-marks".into(),
            RawBody::Json(json!({"latitude": 51.5, "longitude": -0.1, "note": "a\u{0}b"})),
            "invalid_json",
            "note",
        ),
        (&school.staff.api, "/api/v1/sessions".into(), RawBody::Json(visit), "invalid_json", "address"),
        (
            &school.staff.api,
            format!("/api/v1/sessions/{live}/events"),
            RawBody::Json(batch(vec![end_with_pin("12\u{0}34")])),
            "invalid_json",
            "events[0].pin",
        ),
        (
            &school.staff.api,
            format!("/api/v1/sessions/{live}/events"),
            RawBody::Json(json!({"events": [], "\u{0}": 1})),
            "invalid_json",
            "NUL",
        ),
        (&school.admin.api, "/api/v1/escalation-plans".into(), RawBody::Json(plan), "invalid_json", "name"),
        (&school.admin.api, "/api/v1/users".into(), RawBody::Json(person), "invalid_json", "name"),
        (
            &school.admin.api,
            "/api/v1/users/import".into(),
            RawBody::Text { content_type: "text/csv", text: csv.into() },
            "invalid_csv",
            "NUL",
        ),
    ];
    let mut failures = Vec::new();
    for (client, path, body, code, names) in cases {
        let before = Snapshot::take(&app).await;
        let (status, answer) = send(client, &path, body).await;
        let after = Snapshot::take(&app).await;
        let refusal = Refusal { status: 400, code, names };
        let problems = refusal_problems(&refusal, status, &answer, &before, &after);
        if !problems.is_empty() {
            failures.push(format!("- {path} ({names}): {}\n    answer: {status} {answer}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "the NUL character was not refused properly:\n{}", failures.join("\n"));
    // An escaped backslash before `u0000` is ordinary text, and is kept.
    let (status, answer) = send(
        &school.staff.api,
        "/api/v1/signal-marks",
        RawBody::Json(json!({"latitude": 51.5, "longitude": -0.1, "note": "C:\\u0000"})),
    )
    .await;
    assert_eq!((status, answer["note"].as_str()), (201, Some("C:\\u0000")), "{answer}");
}

on_both_databases!(
    hostile_batches_are_refused_and_store_nothing,
    random_batches_never_fail_the_server,
    the_nul_character_is_refused_in_any_text
);
