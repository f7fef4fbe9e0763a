//! Bad input on every endpoint that takes input: a clear 4xx with the shared `{code, message}` body
//! naming the offending field, never a 5xx, and nothing stored by a refused request.
//!
//! Each test is a table of bad requests. Every case is checked against a snapshot of the stored data taken
//! just before and just after it, and all the cases of a table run before the test reports, so one run
//! lists every request that was not refused properly.

use chrono::{Duration, Utc};
use homeward_shared::api::{ClientEventKind, EscalationPlanRequest};
use homeward_shared::client::{ApiClient, RawBody};
use homeward_shared::{EscalationPlan, RiskLevel};
use homeward_tests::{Backend, TestApp, event, low_risk_visit, on_both_databases, spawn_app, visit_with_risk};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

// ----------------------------------------------------------------------------------------------------
// The table runner.

#[derive(Clone)]
enum Body {
    Json(Value),
    Text(&'static str, String),
    Bytes(&'static str, Vec<u8>),
}

impl Body {
    fn raw(&self) -> RawBody {
        match self.clone() {
            Body::Json(value) => RawBody::Json(value),
            Body::Text(content_type, text) => RawBody::Text { content_type, text },
            Body::Bytes(content_type, bytes) => RawBody::Bytes { content_type, bytes },
        }
    }
}

/// One bad request and how it must be refused.
struct Case {
    what: String,
    method: Method,
    path: String,
    body: Option<Body>,
    status: u16,
    code: &'static str,
    /// What the code or the message must name (the field, or a detail such as a limit), with alternatives
    /// separated by `|`; empty for nothing.
    names: &'static str,
}

impl Case {
    fn new(what: impl Into<String>, method: Method, path: impl Into<String>, body: Option<Body>) -> Self {
        Self { what: what.into(), method, path: path.into(), body, status: 0, code: "", names: "" }
    }

    fn post(what: impl Into<String>, path: impl Into<String>, body: Value) -> Self {
        Self::new(what, Method::POST, path, Some(Body::Json(body)))
    }

    fn put(what: impl Into<String>, path: impl Into<String>, body: Value) -> Self {
        Self::new(what, Method::PUT, path, Some(Body::Json(body)))
    }

    fn get(what: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(what, Method::GET, path, None)
    }

    fn refused(mut self, status: u16, code: &'static str, names: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self.names = names;
        self
    }

    /// Everything wrong with how the server answered this case.
    fn problems(&self, status: u16, body: &Value, before: &Snapshot, after: &Snapshot) -> Vec<String> {
        let mut problems = Vec::new();
        if status >= 500 {
            problems.push(format!("a server error ({status}) for bad input"));
        } else if status != self.status {
            problems.push(format!("status {status}, expected {}", self.status));
        }
        match body.as_object() {
            None => problems.push("the body is not the shared {code, message} object".into()),
            Some(object) => {
                let code = object.get("code").and_then(Value::as_str).unwrap_or_default();
                let message = object.get("message").and_then(Value::as_str).unwrap_or_default();
                if code.is_empty() || message.is_empty() {
                    problems.push("the body lacks a code or a message".into());
                }
                // `rows` is the CSV import's list of bad rows, on top of the shared body.
                let extra: Vec<&String> =
                    object.keys().filter(|k| !["code", "message", "rows"].contains(&k.as_str())).collect();
                if !extra.is_empty() {
                    problems.push(format!("unexpected fields in the error body: {extra:?}"));
                }
                if code != self.code {
                    problems.push(format!("code `{code}`, expected `{}`", self.code));
                }
                if !self.names.is_empty() && !names_field(code, message, self.names) {
                    problems.push(format!("neither the code nor the message names `{}`", self.names));
                }
            }
        }
        if before != after {
            problems.push(format!("the refused request changed what is stored: {}", before.difference(after)));
        }
        problems
    }
}

/// Whether the code (`invalid_<field>`) or the message names `names`: in the message as a whole word, so
/// that `id` is not found in "invalid" nor `at` in "at line 1".
fn names_field(code: &str, message: &str, names: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    names.split('|').any(|name| {
        let in_code = code.strip_prefix("invalid_").is_some_and(|field| field.ends_with(&name.replace('.', "_")));
        let in_message = message.match_indices(name).any(|(at, _)| {
            let before = message[..at].chars().next_back();
            let after = message[at + name.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        });
        in_code || in_message
    })
}

/// Runs tables of cases and remembers every case that was not refused properly, so that one run of a test
/// lists them all.
#[derive(Default)]
struct Refusals {
    sent: usize,
    failures: Vec<String>,
}

impl Refusals {
    /// Send every case as `client`.
    async fn check(&mut self, app: &TestApp, client: &ApiClient, cases: Vec<Case>) {
        assert!(!cases.is_empty());
        for case in &cases {
            let before = Snapshot::take(app).await;
            let (status, body) = client
                .raw(case.method.clone(), &case.path, case.body.as_ref().map(Body::raw))
                .await
                .unwrap_or_else(|e| panic!("{}: the request did not complete: {e}", case.what));
            let after = Snapshot::take(app).await;
            self.sent += 1;
            let problems = case.problems(status.as_u16(), &body, &before, &after);
            if !problems.is_empty() {
                let mut shown = body.to_string();
                shown.truncate(400);
                self.failures.push(format!(
                    "- {} ({} {}): {}\n    answer: {status} {shown}",
                    case.what,
                    case.method,
                    case.path,
                    problems.join("; ")
                ));
            }
        }
    }

    fn assert_all_refused(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} bad requests were not refused properly:\n{}",
            self.failures.len(),
            self.sent,
            self.failures.join("\n")
        );
    }
}

// ----------------------------------------------------------------------------------------------------
// What is stored, read straight from the database.

/// Every table a request can write to, but the delivery outbox (which the deliverer works through in the
/// background).
const TABLES: [&str; 16] = [
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
    "on_call_rotas",
    "safety_net_checks",
    "alert_messages",
    "reviews",
    "no_signal_marks",
];

type UserRow = (String, String, String, String, String, i64, String, String, String);
type PlanRow = (String, String, String, i64, i64, i64);
type SessionRow = (String, String, String, i64);
type RulesRow = (String, i64, Option<String>, i64, i64);
type AlertRow = (String, String, String, String, i64);

#[derive(Debug, PartialEq)]
struct Snapshot {
    counts: Vec<(&'static str, i64)>,
    users: Vec<UserRow>,
    plans: Vec<PlanRow>,
    sessions: Vec<SessionRow>,
    rules: Vec<RulesRow>,
    alerts: Vec<AlertRow>,
    rotas: Vec<(String, String, i64)>,
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("select count(*) from {table}"))
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e}"));
    n
}

impl Snapshot {
    async fn take(app: &TestApp) -> Self {
        let pool = &app.state.db.pool;
        let mut counts = Vec::new();
        for table in TABLES {
            counts.push((table, count(app, table).await));
        }
        let users = sqlx::query_as(
            "select user_id, email, name, roles, coalesce(line_manager_id, ''), active, coalesce(safe_pin_hash, ''), \
             coalesce(duress_pin_hash, ''), coalesce(phone, '') from users order by user_id",
        )
        .fetch_all(pool)
        .await
        .expect("read users");
        let plans = sqlx::query_as(
            "select plan_id, name, steps, is_default, repeat_every_seconds, updated_at from escalation_plans order by plan_id",
        )
        .fetch_all(pool)
        .await
        .expect("read plans");
        let sessions =
            sqlx::query_as("select session_id, status, approval_status, updated_at from sessions order by session_id")
                .fetch_all(pool)
                .await
                .expect("read sessions");
        let rules = sqlx::query_as(
            "select school_id, safe_and_well_needs_approval, approval_from_risk, high_risk_needs_companion, \
             location_retention_days from schools \
             order by school_id",
        )
        .fetch_all(pool)
        .await
        .expect("read rules");
        let alerts = sqlx::query_as(
            "select alert_id, status, coalesce(acknowledged_by, ''), coalesce(resolution, ''), updated_at from alerts \
             order by alert_id",
        )
        .fetch_all(pool)
        .await
        .expect("read alerts");
        let rotas = sqlx::query_as("select school_id, rota, updated_at from on_call_rotas order by school_id")
            .fetch_all(pool)
            .await
            .expect("read rotas");
        Self { counts, users, plans, sessions, rules, alerts, rotas }
    }

    fn difference(&self, after: &Snapshot) -> String {
        let mut changed: Vec<String> = self
            .counts
            .iter()
            .zip(&after.counts)
            .filter(|(b, a)| b != a)
            .map(|((table, b), (_, a))| format!("{table} rows {b} -> {a}"))
            .collect();
        if self.users != after.users {
            changed.push("a user row changed".into());
        }
        if self.plans != after.plans {
            changed.push("an escalation plan changed".into());
        }
        if self.sessions != after.sessions {
            changed.push("a session changed".into());
        }
        if self.rules != after.rules {
            changed.push("the school's rules changed".into());
        }
        if self.alerts != after.alerts {
            changed.push("an alert changed".into());
        }
        if self.rotas != after.rotas {
            changed.push("an on-call rota changed".into());
        }
        changed.join(", ")
    }
}

// ----------------------------------------------------------------------------------------------------
// Bodies to spoil.

fn with(mut value: Value, pointer: &str, new: Value) -> Value {
    let shown = value.to_string();
    *value.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer} in {shown}")) = new;
    value
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().expect("an object").remove(key).unwrap_or_else(|| panic!("no {key}"));
    value
}

fn visit() -> Value {
    serde_json::to_value(low_risk_visit()).expect("a visit as JSON")
}

fn new_user(email: &str) -> Value {
    json!({"email": email, "name": "New Person", "password": "long-enough-password", "roles": ["staff"], "line_manager_id": null})
}

fn plan_request(name: &str, is_default: bool) -> Value {
    serde_json::to_value(EscalationPlanRequest {
        name: name.into(),
        steps: EscalationPlan::school_default().steps,
        repeat_every_seconds: None,
        is_default,
    })
    .expect("a plan as JSON")
}

fn client_event(kind: ClientEventKind, offset: Duration) -> Value {
    serde_json::to_value(event(kind, offset)).expect("an event as JSON")
}

fn batch(events: Vec<Value>) -> Value {
    json!({ "events": events })
}

fn ping(offset: Duration) -> Value {
    json!({"id": Uuid::new_v4(), "at": Utc::now() + offset, "latitude": 51.5, "longitude": -0.12, "accuracy_m": 12.0,
        "battery_percent": 80})
}

fn pings(pings: Vec<Value>) -> Value {
    json!({ "pings": pings })
}

fn outcome() -> Value {
    json!({"id": null, "outcome": {"child_seen": true, "responsible_adult_present": true, "entered_premises": false,
        "concern": "none", "notes": "All well."}})
}

fn subscription(endpoint: &str) -> Value {
    // 65 and 16 zero bytes in base64url: the sizes of a P-256 public key and of the auth secret.
    json!({"endpoint": endpoint, "keys": {"p256dh": "A".repeat(87), "auth": "A".repeat(22)}})
}

/// A visit of `worker`'s that is under way, started four minutes ago (just after it was planned, by the phone's clock).
async fn started_visit(worker: &ApiClient) -> Uuid {
    let session = worker.plan_session(&low_risk_visit()).await.expect("plan");
    worker
        .send_events(session.id, &[event(ClientEventKind::Start { location: None }, Duration::minutes(-4))])
        .await
        .expect("start");
    session.id
}

// ----------------------------------------------------------------------------------------------------
// The endpoints.

async fn login_refuses_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Login Input School").await;
    let email = school.staff.user.email.clone();
    let path = "/api/v1/auth/login";
    let cases = vec![
        Case::post("no password", path, json!({"email": email})).refused(400, "invalid_json", "password"),
        Case::post("no e-mail", path, json!({"password": "correct-horse-battery"})).refused(
            400,
            "invalid_json",
            "email",
        ),
        Case::post("not an e-mail", path, json!({"email": "not-an-email", "password": "correct-horse-battery"}))
            .refused(422, "invalid_email", "email"),
        Case::post("an empty e-mail", path, json!({"email": "", "password": "correct-horse-battery"})).refused(
            422,
            "invalid_email",
            "email",
        ),
        Case::post("an empty password", path, json!({"email": email, "password": ""})).refused(
            422,
            "invalid_password",
            "password",
        ),
        Case::post("a 129-character password", path, json!({"email": email, "password": "x".repeat(129)})).refused(
            422,
            "invalid_password",
            "password",
        ),
    ];
    refusals.check(&app, &app.api, cases).await;
    refusals.assert_all_refused();
}

async fn create_user_refuses_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("User Input School").await;
    let other = app.school("Other User Input School").await;
    let path = "/api/v1/users";
    let fresh = "fresh.person@school.test";
    let cases = vec![
        Case::post("a 9-character password", path, with(new_user(fresh), "/password", json!("too-short"))).refused(
            422,
            "invalid_password",
            "password",
        ),
        Case::post("a password of spaces", path, with(new_user(fresh), "/password", json!(" ".repeat(12)))).refused(
            422,
            "invalid_password",
            "password",
        ),
        Case::post("a 129-character password", path, with(new_user(fresh), "/password", json!("p".repeat(129))))
            .refused(422, "invalid_password", "password"),
        Case::post("not an e-mail", path, new_user("fresh.person.school.test")).refused(422, "invalid_email", "email"),
        Case::post("an empty name", path, with(new_user(fresh), "/name", json!("  "))).refused(
            422,
            "invalid_name",
            "name",
        ),
        Case::post("a 101-character name", path, with(new_user(fresh), "/name", json!("n".repeat(101)))).refused(
            422,
            "invalid_name",
            "name",
        ),
        Case::post("no roles", path, with(new_user(fresh), "/roles", json!([]))).refused(422, "invalid_roles", "roles"),
        Case::post("an unknown line manager", path, with(new_user(fresh), "/line_manager_id", json!(Uuid::new_v4())))
            .refused(422, "invalid_line_manager_id", "line_manager_id"),
        Case::post(
            "a line manager of another school",
            path,
            with(new_user(fresh), "/line_manager_id", json!(other.leader.id())),
        )
        .refused(422, "invalid_line_manager_id", "line_manager_id"),
        Case::post("no password", path, without(new_user(fresh), "password")).refused(400, "invalid_json", "password"),
        Case::post("no roles field", path, without(new_user(fresh), "roles")).refused(400, "invalid_json", "roles"),
        Case::post("no e-mail field", path, without(new_user(fresh), "email")).refused(400, "invalid_json", "email"),
        Case::post("an e-mail already taken", path, new_user(&school.staff.user.email)).refused(409, "email_taken", ""),
        Case::post(
            "an e-mail taken in another school, in other case",
            path,
            new_user(&other.staff.user.email.to_uppercase()),
        )
        .refused(409, "email_taken", ""),
    ];
    refusals.check(&app, &school.admin.api, cases).await;
    let staff_cases = vec![Case::post("a good user, from staff", path, new_user(fresh)).refused(403, "forbidden", "")];
    refusals.check(&app, &school.staff.api, staff_cases).await;
    let leader_cases =
        vec![Case::post("a good user, from a leader", path, new_user(fresh)).refused(403, "forbidden", "")];
    refusals.check(&app, &school.leader.api, leader_cases).await;
    refusals.assert_all_refused();
}

async fn import_refuses_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Import Input School").await;
    let path = "/api/v1/users/import";
    let header = "email,name,roles,line_manager_email,password\n";
    let csv = |text: String| Some(Body::Text("text/csv", text));
    let mut not_utf8 = format!("{header}a@school.test,A").into_bytes();
    not_utf8.extend([0xff, 0xfe, 0xfd]);
    not_utf8.extend(b",staff,,long-enough-password\n");
    let huge = format!("{header}{}", "x".repeat(3 * 1024 * 1024));
    let cases = vec![
        Case::new("bytes that are not UTF-8", Method::POST, path, Some(Body::Bytes("text/csv", not_utf8))).refused(
            400,
            "invalid_csv",
            "UTF-8",
        ),
        Case::new("an empty file", Method::POST, path, csv(String::new())).refused(422, "invalid_rows", ""),
        Case::new("a header only", Method::POST, path, csv(header.into())).refused(422, "invalid_rows", ""),
        Case::new("the wrong header", Method::POST, path, csv("mail,name\na@school.test,A\n".into())).refused(
            422,
            "invalid_rows",
            "",
        ),
        Case::new(
            "a short password",
            Method::POST,
            path,
            csv(format!("{header}new.one@school.test,New One,staff,,short\n")),
        )
        .refused(422, "invalid_rows", ""),
        Case::new(
            "an unknown role",
            Method::POST,
            path,
            csv(format!("{header}new.one@school.test,New One,boss,,long-enough-password\n")),
        )
        .refused(422, "invalid_rows", ""),
        Case::new("a 3 MB file", Method::POST, path, csv(huge)).refused(413, "payload_too_large", ""),
    ];
    refusals.check(&app, &school.admin.api, cases).await;
    let good = format!("{header}new.one@school.test,New One,staff,,long-enough-password\n");
    let staff_cases =
        vec![Case::new("a good file, from staff", Method::POST, path, csv(good)).refused(403, "forbidden", "")];
    refusals.check(&app, &school.staff.api, staff_cases).await;
    refusals.assert_all_refused();
}

async fn rules_refuse_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Rules Input School").await;
    let path = "/api/v1/school/rules";
    let rules = json!({"safe_and_well_needs_approval": false, "approval_from_risk": "high", "high_risk_needs_companion": false});
    let cases =
        vec![
            Case::put("no high_risk_needs_companion", path, without(rules.clone(), "high_risk_needs_companion"))
                .refused(400, "invalid_json", "high_risk_needs_companion"),
            Case::put("no safe_and_well_needs_approval", path, without(rules.clone(), "safe_and_well_needs_approval"))
                .refused(400, "invalid_json", "safe_and_well_needs_approval"),
            Case::put("an empty object", path, json!({})).refused(400, "invalid_json", ""),
        ];
    refusals.check(&app, &school.admin.api, cases).await;
    for (who, client) in [("staff", &school.staff.api), ("a leader", &school.leader.api), ("the DSL", &school.dsl.api)]
    {
        let cases =
            vec![Case::put(format!("good rules, from {who}"), path, rules.clone()).refused(403, "forbidden", "")];
        refusals.check(&app, client, cases).await;
    }
    refusals.assert_all_refused();
}

async fn plan_session_refuses_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Visit Input School").await;
    let other = app.school("Other Visit Input School").await;
    let path = "/api/v1/sessions";
    let missing_factor = {
        let mut v = visit();
        v.pointer_mut("/risk_assessment/factors").and_then(Value::as_array_mut).expect("factors").pop();
        v
    };
    let repeated_factor = {
        let mut v = visit();
        let factors = v.pointer_mut("/risk_assessment/factors").and_then(Value::as_array_mut).expect("factors");
        let first = factors[0].clone();
        factors.push(first);
        v
    };
    let overall_below_a_factor = with(
        serde_json::to_value(visit_with_risk(RiskLevel::High)).expect("JSON"),
        "/risk_assessment/overall",
        json!("low"),
    );
    let high_alone = serde_json::to_value(visit_with_risk(RiskLevel::High)).expect("JSON");
    let cases = vec![
        Case::post("latitude 91", path, with(visit(), "/location/latitude", json!(91.0))).refused(
            422,
            "invalid_latitude",
            "latitude",
        ),
        Case::post("latitude -90.5", path, with(visit(), "/location/latitude", json!(-90.5))).refused(
            422,
            "invalid_latitude",
            "latitude",
        ),
        Case::post("longitude -181", path, with(visit(), "/location/longitude", json!(-181.0))).refused(
            422,
            "invalid_longitude",
            "longitude",
        ),
        Case::post("a 4-minute visit", path, with(visit(), "/expected_duration_minutes", json!(4))).refused(
            422,
            "invalid_expected_duration_minutes",
            "expected_duration_minutes",
        ),
        Case::post("a 721-minute visit", path, with(visit(), "/expected_duration_minutes", json!(721))).refused(
            422,
            "invalid_expected_duration_minutes",
            "expected_duration_minutes",
        ),
        Case::post("a negative duration", path, with(visit(), "/expected_duration_minutes", json!(-60))).refused(
            422,
            "invalid_expected_duration_minutes",
            "expected_duration_minutes",
        ),
        Case::post("check in every minute", path, with(visit(), "/check_in_interval_minutes", json!(1))).refused(
            422,
            "invalid_check_in_interval_minutes",
            "check_in_interval_minutes",
        ),
        Case::post("check in every 1000 minutes", path, with(visit(), "/check_in_interval_minutes", json!(1000)))
            .refused(422, "invalid_check_in_interval_minutes", "check_in_interval_minutes"),
        Case::post("a 1 m geofence", path, with(visit(), "/geofence_radius_m", json!(1))).refused(
            422,
            "invalid_geofence_radius_m",
            "geofence_radius_m",
        ),
        Case::post("a 50 km geofence", path, with(visit(), "/geofence_radius_m", json!(50_000))).refused(
            422,
            "invalid_geofence_radius_m",
            "geofence_radius_m",
        ),
        Case::post(
            "a child's name as the pupil reference",
            path,
            with(visit(), "/pupil_reference", json!("Jamie Smith")),
        )
        .refused(422, "invalid_pupil_reference", "pupil_reference"),
        Case::post("a first name as the pupil reference", path, with(visit(), "/pupil_reference", json!("Jamie")))
            .refused(422, "invalid_pupil_reference", "pupil_reference"),
        Case::post("an unknown kind", path, with(visit(), "/kind", json!("picnic"))).refused(
            422,
            "invalid_kind",
            "kind",
        ),
        Case::post("an unknown sub-kind", path, with(visit(), "/sub_kind", json!("tea_party"))).refused(
            422,
            "invalid_sub_kind",
            "sub_kind",
        ),
        Case::post("a home visit without a sub-kind", path, with(visit(), "/sub_kind", Value::Null)).refused(
            422,
            "invalid_sub_kind",
            "sub_kind",
        ),
        Case::post("travel with a home-visit sub-kind", path, with(visit(), "/kind", json!("travel"))).refused(
            422,
            "invalid_sub_kind",
            "sub_kind",
        ),
        Case::post("a risk assessment missing a factor", path, missing_factor).refused(
            422,
            "invalid_risk_assessment_factors",
            "Other",
        ),
        Case::post("a factor rated twice", path, repeated_factor).refused(
            422,
            "invalid_risk_assessment_factors",
            "factors",
        ),
        Case::post("overall risk below a factor", path, overall_below_a_factor).refused(
            422,
            "invalid_risk_assessment_overall",
            "overall",
        ),
        Case::post("a high-risk visit alone", path, high_alone).refused(422, "invalid_companion_id", "companion"),
        Case::post("an empty address", path, with(visit(), "/address", json!("   "))).refused(
            422,
            "invalid_address",
            "address",
        ),
        Case::post("a 301-character address", path, with(visit(), "/address", json!("a".repeat(301)))).refused(
            422,
            "invalid_address",
            "address",
        ),
        Case::post(
            "2001 characters of household notes",
            path,
            with(visit(), "/household_notes", json!("n".repeat(2001))),
        )
        .refused(422, "invalid_household_notes", "household_notes"),
        Case::post(
            "a start two days ago",
            path,
            with(visit(), "/planned_start", json!(Utc::now() - Duration::days(2))),
        )
        .refused(422, "invalid_planned_start", "planned_start"),
        Case::post(
            "a start two years ahead",
            path,
            with(visit(), "/planned_start", json!(Utc::now() + Duration::days(730))),
        )
        .refused(422, "invalid_planned_start", "planned_start"),
        Case::post("an unknown escalation plan", path, with(visit(), "/escalation_plan_id", json!(Uuid::new_v4())))
            .refused(422, "invalid_escalation_plan_id", "escalation_plan_id"),
        Case::post("myself as companion", path, with(visit(), "/companion_id", json!(school.staff.id()))).refused(
            422,
            "invalid_companion_id",
            "companion_id",
        ),
        Case::post("a companion of another school", path, with(visit(), "/companion_id", json!(other.staff.id())))
            .refused(422, "invalid_companion_id", "companion_id"),
        Case::post("no kind", path, without(visit(), "kind")).refused(400, "invalid_json", "kind"),
        Case::post("no risk assessment", path, without(visit(), "risk_assessment")).refused(
            400,
            "invalid_json",
            "risk_assessment",
        ),
        Case::post("no planned start", path, without(visit(), "planned_start")).refused(
            400,
            "invalid_json",
            "planned_start",
        ),
        Case::post("no duration", path, without(visit(), "expected_duration_minutes")).refused(
            400,
            "invalid_json",
            "expected_duration_minutes",
        ),
        Case::post("no address", path, without(visit(), "address")).refused(400, "invalid_json", "address"),
    ];
    refusals.check(&app, &school.staff.api, cases).await;
    refusals.assert_all_refused();
}

async fn reject_refuses_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Reject Input School").await;
    let pending = school.staff.api.plan_session(&visit_with_risk(RiskLevel::Medium)).await.expect("plan");
    let path = format!("/api/v1/sessions/{}/approval/reject", pending.id);
    let cases = vec![
        Case::post("an empty reason", &path, json!({"reason": ""})).refused(422, "invalid_reason", "reason"),
        Case::post("a reason of spaces", &path, json!({"reason": "   "})).refused(422, "invalid_reason", "reason"),
        Case::post("a 501-character reason", &path, json!({"reason": "r".repeat(501)})).refused(
            422,
            "invalid_reason",
            "reason",
        ),
        Case::post("no reason", &path, json!({})).refused(400, "invalid_json", "reason"),
        Case::post(
            "a good reason for a visit that does not exist",
            format!("/api/v1/sessions/{}/approval/reject", Uuid::new_v4()),
            json!({"reason": "No"}),
        )
        .refused(404, "not_found", ""),
    ];
    refusals.check(&app, &school.dsl.api, cases).await;
    let worker_cases = vec![Case::post("the worker rejects their own visit", &path, json!({"reason": "No"})).refused(
        403,
        "forbidden",
        "",
    )];
    refusals.check(&app, &school.staff.api, worker_cases).await;
    refusals.assert_all_refused();
}

async fn events_refuse_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Event Input School").await;
    let worker = &school.staff.api;
    let live = started_visit(worker).await;
    let planned = worker.plan_session(&low_risk_visit()).await.expect("plan").id;
    let path = format!("/api/v1/sessions/{live}/events");
    let planned_path = format!("/api/v1/sessions/{planned}/events");
    let check_in = || client_event(ClientEventKind::CheckIn, Duration::zero());
    let extend = |minutes| client_event(ClientEventKind::Extend { minutes }, Duration::zero());
    let twice = check_in();
    let start_at = |latitude: f64, longitude: f64| {
        let start = client_event(ClientEventKind::Start { location: None }, Duration::zero());
        with(start, "/location", json!({"latitude": latitude, "longitude": longitude}))
    };
    let cases = vec![
        Case::post("an empty batch", &path, batch(vec![])).refused(422, "invalid_events", "events"),
        Case::post("201 events", &path, batch((0..201).map(|_| check_in()).collect())).refused(
            422,
            "invalid_events",
            "200",
        ),
        Case::post("one event id twice", &path, batch(vec![twice.clone(), twice])).refused(
            422,
            "invalid_events",
            "twice",
        ),
        Case::post("extend by 0 minutes", &path, batch(vec![extend(0)])).refused(422, "invalid_minutes", "minutes"),
        Case::post("extend by 500 minutes", &path, batch(vec![extend(500)])).refused(422, "invalid_minutes", "minutes"),
        Case::post("extend by -30 minutes", &path, batch(vec![extend(-30)])).refused(422, "invalid_minutes", "minutes"),
        Case::post("a good check-in then a bad extension", &path, batch(vec![check_in(), extend(0)])).refused(
            422,
            "invalid_minutes",
            "minutes",
        ),
        Case::post(
            "an event a year in the future",
            &path,
            batch(vec![client_event(ClientEventKind::CheckIn, Duration::days(365))]),
        )
        .refused(422, "invalid_events_at", "events_at"),
        Case::post(
            "an event three years ago",
            &path,
            batch(vec![client_event(ClientEventKind::CheckIn, Duration::days(-3 * 365))]),
        )
        .refused(422, "invalid_events_at", "events_at"),
        Case::post("a start at latitude 91", &planned_path, batch(vec![start_at(91.0, 0.0)])).refused(
            422,
            "invalid_latitude",
            "latitude",
        ),
        Case::post("a start at longitude -181", &planned_path, batch(vec![start_at(51.5, -181.0)])).refused(
            422,
            "invalid_longitude",
            "longitude",
        ),
        Case::post("an event without a time", &path, batch(vec![without(check_in(), "at")])).refused(
            400,
            "invalid_json",
            "`at`|.at",
        ),
        Case::post("an event without an id", &path, batch(vec![without(check_in(), "id")])).refused(
            400,
            "invalid_json",
            "id",
        ),
        Case::post("an event without a type", &path, batch(vec![without(check_in(), "type")])).refused(
            400,
            "invalid_json",
            "`type`|.type",
        ),
        Case::post("an extension without minutes", &path, batch(vec![without(extend(10), "minutes")])).refused(
            400,
            "invalid_json",
            "minutes",
        ),
        Case::post("no events field", &path, json!({})).refused(400, "invalid_json", "events"),
    ];
    refusals.check(&app, worker, cases).await;
    let other_cases =
        vec![Case::post("someone else's visit", &path, batch(vec![check_in()])).refused(404, "not_found", "")];
    let other = app.school("Event Input Other School").await;
    refusals.check(&app, &other.staff.api, other_cases).await;
    refusals.assert_all_refused();
}

async fn pings_refuse_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Ping Input School").await;
    let worker = &school.staff.api;
    let live = started_visit(worker).await;
    let planned = worker.plan_session(&low_risk_visit()).await.expect("plan").id;
    let path = format!("/api/v1/sessions/{live}/pings");
    let good = || ping(Duration::minutes(-1));
    let cases = vec![
        Case::post("latitude 91", &path, pings(vec![with(good(), "/latitude", json!(91.0))])).refused(
            422,
            "invalid_latitude",
            "latitude",
        ),
        Case::post("longitude -181", &path, pings(vec![with(good(), "/longitude", json!(-181.0))])).refused(
            422,
            "invalid_longitude",
            "longitude",
        ),
        Case::post("battery 101%", &path, pings(vec![with(good(), "/battery_percent", json!(101))])).refused(
            422,
            "invalid_pings_battery_percent",
            "battery_percent",
        ),
        Case::post("battery -1%", &path, pings(vec![with(good(), "/battery_percent", json!(-1))])).refused(
            422,
            "invalid_pings_battery_percent",
            "battery_percent",
        ),
        Case::post("negative accuracy", &path, pings(vec![with(good(), "/accuracy_m", json!(-5.0))])).refused(
            422,
            "invalid_pings_accuracy_m",
            "accuracy_m",
        ),
        Case::post("a ping a year in the future", &path, pings(vec![ping(Duration::days(365))])).refused(
            422,
            "invalid_pings_at",
            "pings_at",
        ),
        Case::post("a ping three years ago", &path, pings(vec![ping(Duration::days(-3 * 365))])).refused(
            422,
            "invalid_pings_at",
            "pings_at",
        ),
        Case::post("a ping before the visit started", &path, pings(vec![ping(Duration::minutes(-30))])).refused(
            422,
            "invalid_pings_at",
            "pings_at",
        ),
        Case::post("an empty batch", &path, pings(vec![])).refused(422, "invalid_pings", "pings"),
        Case::post("501 pings", &path, pings((0..501).map(|_| good()).collect())).refused(422, "invalid_pings", "500"),
        Case::post(
            "a good ping then a bad one",
            &path,
            pings(vec![good(), with(good(), "/battery_percent", json!(250))]),
        )
        .refused(422, "invalid_pings_battery_percent", "battery_percent"),
        Case::post("a ping without a latitude", &path, pings(vec![without(good(), "latitude")])).refused(
            400,
            "invalid_json",
            "latitude",
        ),
        Case::post("a ping without accuracy", &path, pings(vec![without(good(), "accuracy_m")])).refused(
            400,
            "invalid_json",
            "accuracy_m",
        ),
        Case::post("a visit not yet started", format!("/api/v1/sessions/{planned}/pings"), pings(vec![good()]))
            .refused(409, "not_started", ""),
    ];
    refusals.check(&app, worker, cases).await;
    let other_cases =
        vec![Case::post("someone else's visit", &path, pings(vec![good()])).refused(404, "not_found", "")];
    refusals.check(&app, &school.other_staff.api, other_cases).await;
    refusals.assert_all_refused();
}

async fn outcome_refuses_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Outcome Input School").await;
    let worker = &school.staff.api;
    let live = started_visit(worker).await;
    let ended = started_visit(worker).await;
    worker.send_events(ended, &[event(ClientEventKind::End, Duration::minutes(-1))]).await.expect("end");
    let path = format!("/api/v1/sessions/{ended}/outcome");
    let cases = vec![
        Case::post("5001 characters of notes", &path, with(outcome(), "/outcome/notes", json!("n".repeat(5001))))
            .refused(422, "invalid_outcome_notes", "notes"),
        Case::post("no outcome", &path, json!({"id": null})).refused(400, "invalid_json", "outcome"),
        Case::post(
            "no concern",
            &path,
            json!({"outcome": {"child_seen": true, "responsible_adult_present": true,
            "entered_premises": false}}),
        )
        .refused(400, "invalid_json", "concern"),
        Case::post("a visit not yet ended", format!("/api/v1/sessions/{live}/outcome"), outcome()).refused(
            409,
            "not_ended",
            "",
        ),
    ];
    refusals.check(&app, worker, cases).await;
    let other_cases = vec![Case::post("someone else's visit", &path, outcome()).refused(404, "not_found", "")];
    refusals.check(&app, &school.other_staff.api, other_cases).await;
    refusals.assert_all_refused();
}

async fn pins_refuse_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Pin Input School").await;
    let path = "/api/v1/me/pins";
    let pins = |safe: &str, duress: &str| json!({"safe_pin": safe, "duress_pin": duress});
    let cases = vec![
        Case::put("a 2-digit safe PIN", path, pins("12", "5678")).refused(422, "invalid_safe_pin", "safe_pin"),
        Case::put("a 2-digit duress PIN", path, pins("1234", "12")).refused(422, "invalid_duress_pin", "duress_pin"),
        Case::put("the same PIN twice", path, pins("2468", "2468")).refused(422, "invalid_duress_pin", "duress_pin"),
        Case::put("letters", path, pins("abcd", "5678")).refused(422, "invalid_safe_pin", "safe_pin"),
        Case::put("9 digits", path, pins("123456789", "5678")).refused(422, "invalid_safe_pin", "safe_pin"),
        Case::put("an empty PIN", path, pins("", "5678")).refused(422, "invalid_safe_pin", "safe_pin"),
        Case::put("no duress PIN", path, json!({"safe_pin": "2468"})).refused(400, "invalid_json", "duress_pin"),
    ];
    refusals.check(&app, &school.staff.api, cases).await;
    let me = school.staff.api.me().await.expect("me");
    assert!(!me.has_pin, "no refused request set a PIN");
    refusals.assert_all_refused();
}

async fn escalation_plans_refuse_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Plan Input School").await;
    let other = app.school("Other Plan Input School").await;
    let default_plan = school.admin.api.escalation_plans().await.expect("plans").remove(0);
    let update_path = format!("/api/v1/escalation-plans/{}", default_plan.id);
    // Bodies that would be fine but for one thing: a new plan, or the default plan kept as the default.
    let bad_bodies = |base: Value| {
        let other_school_user = json!([{"type": "user", "user_id": other.staff.id()}]);
        let too_many: Vec<Value> = (0..=EscalationPlan::MAX_STEPS)
            .map(|n| json!({"delay_seconds": n * 60, "recipients": [{"type": "worker"}], "instruction": "Check in"}))
            .collect();
        vec![
            ("no steps", with(base.clone(), "/steps", json!([])), "invalid_steps", "step"),
            ("a negative delay", with(base.clone(), "/steps/0/delay_seconds", json!(-5)), "invalid_steps", "negative"),
            ("steps out of order", with(base.clone(), "/steps/2/delay_seconds", json!(60)), "invalid_steps", "step 3"),
            (
                "an empty instruction",
                with(base.clone(), "/steps/1/instruction", json!("")),
                "invalid_steps",
                "instruction",
            ),
            (
                "an instruction of spaces",
                with(base.clone(), "/steps/1/instruction", json!("   ")),
                "invalid_steps",
                "instruction",
            ),
            (
                "a step with no recipients",
                with(base.clone(), "/steps/0/recipients", json!([])),
                "invalid_steps",
                "recipient",
            ),
            (
                "a delay over 24 hours",
                with(base.clone(), "/steps/3/delay_seconds", json!(90_000)),
                "invalid_steps",
                "24",
            ),
            ("21 steps", with(base.clone(), "/steps", json!(too_many)), "invalid_steps", "steps"),
            (
                "a user of another school",
                with(base.clone(), "/steps/0/recipients", other_school_user),
                "invalid_steps",
                "school",
            ),
            ("an empty name", with(base.clone(), "/name", json!("  ")), "invalid_name", "name"),
            ("a 101-character name", with(base.clone(), "/name", json!("p".repeat(101))), "invalid_name", "name"),
            (
                "repeat every 0 seconds",
                with(base.clone(), "/repeat_every_seconds", json!(0)),
                "invalid_repeat_every_seconds",
                "repeat",
            ),
            (
                "repeat every -60 seconds",
                with(base.clone(), "/repeat_every_seconds", json!(-60)),
                "invalid_repeat_every_seconds",
                "repeat",
            ),
        ]
    };
    let mut cases = Vec::new();
    for (what, body, code, names) in bad_bodies(plan_request("Weekend plan", false)) {
        cases.push(Case::post(format!("create: {what}"), "/api/v1/escalation-plans", body).refused(422, code, names));
    }
    for (what, body, code, names) in bad_bodies(plan_request(&default_plan.name, true)) {
        cases.push(Case::put(format!("update: {what}"), &update_path, body).refused(422, code, names));
    }
    cases.push(
        Case::post("create: no name", "/api/v1/escalation-plans", without(plan_request("x", false), "name")).refused(
            400,
            "invalid_json",
            "name",
        ),
    );
    cases.push(
        Case::post("create: no steps field", "/api/v1/escalation-plans", without(plan_request("x", false), "steps"))
            .refused(400, "invalid_json", "steps"),
    );
    cases.push(
        Case::put(
            "update: a plan that does not exist",
            format!("/api/v1/escalation-plans/{}", Uuid::new_v4()),
            plan_request("Ghost plan", false),
        )
        .refused(404, "not_found", ""),
    );
    let other_plan = other.admin.api.escalation_plans().await.expect("plans").remove(0);
    cases.push(
        Case::put(
            "update: another school's plan",
            format!("/api/v1/escalation-plans/{}", other_plan.id),
            plan_request("Stolen plan", true),
        )
        .refused(404, "not_found", ""),
    );
    refusals.check(&app, &school.admin.api, cases).await;
    for (who, client) in [("staff", &school.staff.api), ("a leader", &school.leader.api), ("the DSL", &school.dsl.api)]
    {
        let cases =
            vec![
                Case::post(format!("create, from {who}"), "/api/v1/escalation-plans", plan_request("Mine", false))
                    .refused(403, "forbidden", ""),
                Case::put(format!("update, from {who}"), &update_path, plan_request("Mine", true)).refused(
                    403,
                    "forbidden",
                    "",
                ),
            ];
        refusals.check(&app, client, cases).await;
    }
    refusals.assert_all_refused();
}

async fn list_queries_refuse_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Query Input School").await;
    let cases = vec![
        Case::get("an unknown scope", "/api/v1/sessions?scope=everything").refused(400, "invalid_scope", "scope"),
        Case::get("an empty scope", "/api/v1/sessions?scope=").refused(400, "invalid_scope", "scope"),
    ];
    refusals.check(&app, &school.leader.api, cases).await;
    let staff_cases = vec![
        Case::get("the whole school, from staff", "/api/v1/sessions?scope=school").refused(403, "forbidden", ""),
        Case::get("pending approvals, from staff", "/api/v1/sessions?scope=pending_approval").refused(
            403,
            "forbidden",
            "",
        ),
        Case::get("the audit log, from staff", "/api/v1/audit").refused(403, "forbidden", ""),
    ];
    refusals.check(&app, &school.staff.api, staff_cases).await;
    // Out-of-range numbers are clamped to the allowed range rather than refused: say so.
    let clamped =
        school.dsl.api.raw(Method::GET, "/api/v1/audit?after_seq=-5&limit=100000", None).await.expect("audit");
    assert_eq!(clamped.0.as_u16(), 200, "{clamped:?}");
    let entries = clamped.1.as_array().expect("a list of entries");
    assert_eq!(
        entries.len() as i64,
        count(&app, "audit_log").await.min(1000),
        "negative after_seq reads from the start"
    );
    refusals.assert_all_refused();
}

async fn alerts_and_push_refuse_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Alert Input School").await;
    let live = started_visit(&school.staff.api).await;
    school
        .staff
        .api
        .send_events(live, &[event(ClientEventKind::Panic { location: None }, Duration::zero())])
        .await
        .expect("panic");
    let alert = school.leader.api.alerts("open").await.expect("alerts").first().expect("the panic raised an alert").id;
    let resolve = format!("/api/v1/alerts/{alert}/resolve");
    let push = "/api/v1/push/subscriptions";
    let endpoint = "https://push.example.test/send/abc";

    let staff = vec![
        Case::post("an ftp endpoint", push, subscription("ftp://push.example.test/abc")).refused(
            422,
            "invalid_endpoint",
            "endpoint",
        ),
        Case::post("an empty endpoint", push, subscription("  ")).refused(422, "invalid_endpoint", "endpoint"),
        Case::post("a 2001-character endpoint", push, subscription(&format!("https://p.test/{}", "x".repeat(2001))))
            .refused(422, "invalid_endpoint", "endpoint"),
        Case::post("a 64-byte p256dh key", push, with(subscription(endpoint), "/keys/p256dh", json!("A".repeat(86))))
            .refused(422, "invalid_keys_p256dh", "p256dh"),
        Case::post("a p256dh key that is not base64", push, with(subscription(endpoint), "/keys/p256dh", json!("!!!")))
            .refused(422, "invalid_keys_p256dh", "p256dh"),
        Case::post("a 15-byte auth secret", push, with(subscription(endpoint), "/keys/auth", json!("A".repeat(20))))
            .refused(422, "invalid_keys_auth", "auth"),
        Case::post("no keys", push, without(subscription(endpoint), "keys")).refused(400, "invalid_json", "keys"),
        Case::post("no endpoint", push, without(subscription(endpoint), "endpoint")).refused(
            400,
            "invalid_json",
            "endpoint",
        ),
        Case::new(
            "unsubscribe an unknown endpoint",
            Method::DELETE,
            push,
            Some(Body::Json(json!({"endpoint": endpoint}))),
        )
        .refused(404, "not_found", ""),
        Case::new("unsubscribe without an endpoint", Method::DELETE, push, Some(Body::Json(json!({})))).refused(
            400,
            "invalid_json",
            "endpoint",
        ),
        Case::post("staff resolve an alert", &resolve, json!({"resolution": "worker_safe", "notes": ""})).refused(
            403,
            "forbidden",
            "",
        ),
        Case::post("staff take ownership", format!("/api/v1/alerts/{alert}/acknowledge"), json!({})).refused(
            403,
            "forbidden",
            "",
        ),
    ];
    refusals.check(&app, &school.staff.api, staff).await;

    let not_found = |case: Case| case.refused(404, "not_found", "");
    let mut leader = vec![
        Case::get("an unknown alert status", "/api/v1/alerts?status=closed").refused(400, "invalid_status", "status"),
        Case::post(
            "5001 characters of notes",
            &resolve,
            json!({"resolution": "worker_safe", "notes": "n".repeat(5001)}),
        )
        .refused(422, "invalid_notes", "notes"),
        Case::post("no resolution", &resolve, json!({"notes": "All fine"})).refused(400, "invalid_json", "resolution"),
        not_found(Case::get("an alert that does not exist", format!("/api/v1/alerts/{}", Uuid::new_v4()))),
        not_found(Case::post(
            "resolve an alert that does not exist",
            format!("/api/v1/alerts/{}/resolve", Uuid::new_v4()),
            json!({"resolution": "worker_safe"}),
        )),
    ];
    for id in ["not-a-uuid", "12345"] {
        leader.extend([
            not_found(Case::get(format!("the alert `{id}`"), format!("/api/v1/alerts/{id}"))),
            not_found(Case::post(format!("acknowledge `{id}`"), format!("/api/v1/alerts/{id}/acknowledge"), json!({}))),
            not_found(Case::post(
                format!("resolve `{id}`"),
                format!("/api/v1/alerts/{id}/resolve"),
                json!({"resolution": "worker_safe"}),
            )),
        ]);
    }
    refusals.check(&app, &school.leader.api, leader).await;

    // Another school's alert does not exist for this school's leaders.
    let other = app.school("Other Alert Input School").await;
    let theirs = vec![
        not_found(Case::get("another school's alert", format!("/api/v1/alerts/{alert}"))),
        not_found(Case::post(
            "acknowledge another school's alert",
            format!("/api/v1/alerts/{alert}/acknowledge"),
            json!({}),
        )),
        not_found(Case::post("resolve another school's alert", &resolve, json!({"resolution": "false_alarm"}))),
    ];
    refusals.check(&app, &other.leader.api, theirs).await;
    refusals.assert_all_refused();
}

/// Bodies that are not what a JSON endpoint takes, sent to every JSON endpoint.
async fn malformed_bodies_are_refused_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Malformed Body School").await;
    let pending = school.staff.api.plan_session(&visit_with_risk(RiskLevel::Medium)).await.expect("plan").id;
    let live = started_visit(&school.staff.api).await;
    let plan = school.admin.api.escalation_plans().await.expect("plans").remove(0).id;
    let rules = json!({"safe_and_well_needs_approval": true, "approval_from_risk": "medium", "high_risk_needs_companion": true});
    // Each endpoint with a body it would take, and a string in it that the endpoint reads.
    let endpoints: Vec<(Method, String, &ApiClient, Value, &str)> = vec![
        (
            Method::POST,
            "/api/v1/auth/login".into(),
            &app.api,
            json!({"email": school.staff.user.email, "password": homeward_tests::PASSWORD}),
            "/email",
        ),
        (
            Method::PUT,
            "/api/v1/me/pins".into(),
            &school.staff.api,
            json!({"safe_pin": "2468", "duress_pin": "1357"}),
            "/safe_pin",
        ),
        (Method::POST, "/api/v1/users".into(), &school.admin.api, new_user("utf8@school.test"), "/name"),
        (
            Method::PUT,
            format!("/api/v1/users/{}/phone", school.staff.id()),
            &school.admin.api,
            json!({"phone": "07700 900123"}),
            "/phone",
        ),
        (Method::PUT, "/api/v1/school/on-call-rota".into(), &school.admin.api, rota(school.leader.id()), "/timezone"),
        (Method::POST, "/api/v1/me/test-message".into(), &school.staff.api, json!({"channel": "push"}), "/channel"),
        (Method::PUT, "/api/v1/school/rules".into(), &school.admin.api, rules, "/approval_from_risk"),
        (Method::POST, "/api/v1/sessions".into(), &school.staff.api, visit(), "/address"),
        (
            Method::POST,
            format!("/api/v1/sessions/{pending}/approval/reject"),
            &school.dsl.api,
            json!({"reason": "Go with a colleague"}),
            "/reason",
        ),
        (
            Method::POST,
            format!("/api/v1/sessions/{live}/events"),
            &school.staff.api,
            batch(vec![client_event(ClientEventKind::CheckIn, Duration::zero())]),
            "/events/0/type",
        ),
        (
            Method::POST,
            format!("/api/v1/sessions/{live}/pings"),
            &school.staff.api,
            pings(vec![ping(Duration::minutes(-1))]),
            "/pings/0/id",
        ),
        (Method::POST, format!("/api/v1/sessions/{live}/outcome"), &school.staff.api, outcome(), "/outcome/notes"),
        (
            Method::POST,
            "/api/v1/escalation-plans".into(),
            &school.admin.api,
            plan_request("UTF-8 plan", false),
            "/name",
        ),
        (
            Method::PUT,
            format!("/api/v1/escalation-plans/{plan}"),
            &school.admin.api,
            plan_request("Default plan", true),
            "/steps/0/instruction",
        ),
        (
            Method::POST,
            "/api/v1/push/subscriptions".into(),
            &school.staff.api,
            subscription("https://p.test/a"),
            "/endpoint",
        ),
        (
            Method::DELETE,
            "/api/v1/push/subscriptions".into(),
            &school.staff.api,
            json!({"endpoint": "https://p.test/a"}),
            "/endpoint",
        ),
        (
            Method::POST,
            format!("/api/v1/alerts/{}/resolve", Uuid::new_v4()),
            &school.leader.api,
            json!({"resolution": "worker_safe", "notes": "Phoned her; all well."}),
            "/notes",
        ),
    ];
    let json_text = |text: &str| Some(Body::Text("application/json", text.to_string()));
    let oversized = format!(r#"{{"reason": "{}"}}"#, "x".repeat(300 * 1024));
    let bodies: Vec<(&str, Option<Body>, u16, &'static str, &'static str)> = vec![
        ("garbage", json_text("{not json at all"), 400, "invalid_json", ""),
        ("truncated JSON", json_text(r#"{"email": "a@b"#), 400, "invalid_json", ""),
        ("an empty body", json_text(""), 400, "invalid_json", ""),
        ("a JSON array", json_text("[]"), 400, "invalid_json", ""),
        ("JSON null", json_text("null"), 400, "invalid_json", ""),
        ("a JSON string", json_text(r#""hello""#), 400, "invalid_json", ""),
        ("text/plain", Some(Body::Text("text/plain", "{}".into())), 415, "unsupported_media_type", "Content-Type"),
        (
            "a form",
            Some(Body::Text("application/x-www-form-urlencoded", "a=b".into())),
            415,
            "unsupported_media_type",
            "",
        ),
        ("a body over 256 KB", json_text(&oversized), 413, "payload_too_large", "256"),
        (
            "bytes that are not UTF-8",
            Some(Body::Bytes("application/json", vec![0xff, 0xfe, b'{', b'}'])),
            400,
            "invalid_json",
            "",
        ),
    ];
    for (method, path, client, good, string_field) in endpoints {
        // The endpoint's own body with invalid UTF-8 bytes inside a string it reads.
        let marked = with(good, string_field, json!("MARK")).to_string();
        let (head, tail) = marked.split_once("MARK").expect("the mark");
        let not_utf8 = [head.as_bytes(), &[b'a', 0xff, 0xfe, b'b'], tail.as_bytes()].concat();
        let mut cases: Vec<Case> = bodies
            .iter()
            .map(|(what, body, status, code, names)| {
                Case::new(*what, method.clone(), path.clone(), body.clone()).refused(*status, code, names)
            })
            .collect();
        cases.push(
            Case::new(
                format!("invalid UTF-8 in {string_field}"),
                method.clone(),
                path.clone(),
                Some(Body::Bytes("application/json", not_utf8)),
            )
            .refused(400, "invalid_json", ""),
        );
        refusals.check(&app, client, cases).await;
    }
    refusals.assert_all_refused();
}

async fn path_ids_that_are_not_uuids_are_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Path Id School").await;
    let events = batch(vec![client_event(ClientEventKind::CheckIn, Duration::zero())]);
    let ids = ["not-a-uuid", "12345", "00000000-0000-0000-0000-00000000000g", "%27%3B%20drop%20table%20sessions%3B--"];
    let not_found = |case: Case| case.refused(404, "not_found", "");
    let (mut staff, mut leader, mut admin) = (Vec::new(), Vec::new(), Vec::new());
    for id in ids {
        let base = format!("/api/v1/sessions/{id}");
        staff.extend([
            not_found(Case::get(format!("a session `{id}`"), &base)),
            not_found(Case::post(format!("events for `{id}`"), format!("{base}/events"), events.clone())),
            not_found(Case::post(
                format!("pings for `{id}`"),
                format!("{base}/pings"),
                pings(vec![ping(Duration::zero())]),
            )),
            not_found(Case::post(format!("an outcome for `{id}`"), format!("{base}/outcome"), outcome())),
            not_found(Case::post(format!("ask approval of `{id}`"), format!("{base}/approval/request"), json!({}))),
        ]);
        leader.extend([
            not_found(Case::post(format!("approve `{id}`"), format!("{base}/approval/approve"), json!({}))),
            not_found(Case::post(format!("reject `{id}`"), format!("{base}/approval/reject"), json!({"reason": "No"}))),
        ]);
        admin.push(not_found(Case::put(
            format!("the plan `{id}`"),
            format!("/api/v1/escalation-plans/{id}"),
            plan_request("Default plan", true),
        )));
    }
    staff.push(not_found(Case::get("an endpoint that does not exist", "/api/v1/no-such-thing")));
    refusals.check(&app, &school.staff.api, staff).await;
    refusals.check(&app, &school.leader.api, leader).await;
    refusals.check(&app, &school.admin.api, admin).await;
    refusals.assert_all_refused();
}

/// Serde's own refusals (a value of the wrong JSON type, an unknown enum value, a query parameter that is
/// not a number) must name the field too, as every other bad input does.
async fn wrong_types_name_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Wrong Type School").await;
    let live = started_visit(&school.staff.api).await;
    let ended = started_visit(&school.staff.api).await;
    school.staff.api.send_events(ended, &[event(ClientEventKind::End, Duration::minutes(-1))]).await.expect("end");
    let pending = school.staff.api.plan_session(&visit_with_risk(RiskLevel::Medium)).await.expect("plan").id;
    let plan_id = school.admin.api.escalation_plans().await.expect("plans").remove(0).id;
    let events_path = format!("/api/v1/sessions/{live}/events");
    let pings_path = format!("/api/v1/sessions/{live}/pings");
    let outcome_path = format!("/api/v1/sessions/{ended}/outcome");
    let check_in = || client_event(ClientEventKind::CheckIn, Duration::zero());
    let rules = json!({"safe_and_well_needs_approval": true, "approval_from_risk": "medium", "high_risk_needs_companion": true});

    let anonymous =
        vec![
            Case::post("login: e-mail is a number", "/api/v1/auth/login", json!({"email": 42, "password": "x"}))
                .refused(400, "invalid_json", "email"),
        ];
    refusals.check(&app, &app.api, anonymous).await;

    let staff = vec![
        Case::post(
            "visit: duration is text",
            "/api/v1/sessions",
            with(visit(), "/expected_duration_minutes", json!("sixty")),
        )
        .refused(400, "invalid_json", "expected_duration_minutes"),
        Case::post(
            "visit: geofence is fractional",
            "/api/v1/sessions",
            with(visit(), "/geofence_radius_m", json!(1.5)),
        )
        .refused(400, "invalid_json", "geofence_radius_m"),
        Case::post("visit: location is text", "/api/v1/sessions", with(visit(), "/location", json!("here"))).refused(
            400,
            "invalid_json",
            "location",
        ),
        Case::post(
            "visit: planned start is not a time",
            "/api/v1/sessions",
            with(visit(), "/planned_start", json!("tomorrow")),
        )
        .refused(400, "invalid_json", "planned_start"),
        Case::post(
            "visit: an unknown risk level",
            "/api/v1/sessions",
            with(visit(), "/risk_assessment/factors/0/level", json!("severe")),
        )
        .refused(400, "invalid_json", "level"),
        Case::post(
            "visit: companion is not a UUID",
            "/api/v1/sessions",
            with(visit(), "/companion_id", json!("my-friend")),
        )
        .refused(400, "invalid_json", "companion_id"),
        Case::post("events: events is an object", &events_path, json!({"events": {}})).refused(
            400,
            "invalid_json",
            "events",
        ),
        Case::post(
            "events: minutes is text",
            &events_path,
            batch(vec![with(
                client_event(ClientEventKind::Extend { minutes: 10 }, Duration::zero()),
                "/minutes",
                json!("ten"),
            )]),
        )
        .refused(400, "invalid_json", "minutes"),
        Case::post("events: an unknown type", &events_path, batch(vec![with(check_in(), "/type", json!("teleport"))]))
            .refused(400, "invalid_json", "`type`|.type"),
        Case::post(
            "events: time is not a time",
            &events_path,
            batch(vec![with(check_in(), "/at", json!("yesterday"))]),
        )
        .refused(400, "invalid_json", "`at`|.at"),
        Case::post("events: id is not a UUID", &events_path, batch(vec![with(check_in(), "/id", json!(7))])).refused(
            400,
            "invalid_json",
            "id",
        ),
        Case::post(
            "pings: battery is text",
            &pings_path,
            pings(vec![with(ping(Duration::zero()), "/battery_percent", json!("full"))]),
        )
        .refused(400, "invalid_json", "battery_percent"),
        Case::post(
            "pings: latitude is text",
            &pings_path,
            pings(vec![with(ping(Duration::zero()), "/latitude", json!("north"))]),
        )
        .refused(400, "invalid_json", "latitude"),
        Case::post("outcome: an unknown concern", &outcome_path, with(outcome(), "/outcome/concern", json!("maybe")))
            .refused(400, "invalid_json", "concern"),
        Case::post("outcome: child seen is text", &outcome_path, with(outcome(), "/outcome/child_seen", json!("yes")))
            .refused(400, "invalid_json", "child_seen"),
        Case::put("pins: a number", "/api/v1/me/pins", json!({"safe_pin": 2468, "duress_pin": "1357"})).refused(
            400,
            "invalid_json",
            "safe_pin",
        ),
    ];
    refusals.check(&app, &school.staff.api, staff).await;

    let admin = vec![
        Case::post(
            "user: an unknown role",
            "/api/v1/users",
            with(new_user("r@school.test"), "/roles", json!(["boss"])),
        )
        .refused(400, "invalid_json", "roles"),
        Case::post(
            "user: line manager is not a UUID",
            "/api/v1/users",
            with(new_user("r@school.test"), "/line_manager_id", json!("not-a-uuid")),
        )
        .refused(400, "invalid_json", "line_manager_id"),
        Case::post(
            "user: password is a boolean",
            "/api/v1/users",
            with(new_user("r@school.test"), "/password", json!(true)),
        )
        .refused(400, "invalid_json", "password"),
        Case::put(
            "rules: an unknown risk level",
            "/api/v1/school/rules",
            with(rules.clone(), "/approval_from_risk", json!("extreme")),
        )
        .refused(400, "invalid_json", "approval_from_risk"),
        Case::put(
            "rules: a flag is text",
            "/api/v1/school/rules",
            with(rules, "/safe_and_well_needs_approval", json!("yes")),
        )
        .refused(400, "invalid_json", "safe_and_well_needs_approval"),
        Case::post(
            "plan: an unknown recipient",
            "/api/v1/escalation-plans",
            with(plan_request("Typed plan", false), "/steps/0/recipients", json!([{"type": "everyone"}])),
        )
        .refused(400, "invalid_json", "recipients"),
        Case::put(
            "plan: delay is text",
            format!("/api/v1/escalation-plans/{plan_id}"),
            with(plan_request("Default plan", true), "/steps/0/delay_seconds", json!("soon")),
        )
        .refused(400, "invalid_json", "delay_seconds"),
    ];
    refusals.check(&app, &school.admin.api, admin).await;

    let dsl = vec![
        Case::post(
            "reject: reason is a number",
            format!("/api/v1/sessions/{pending}/approval/reject"),
            json!({"reason": 5}),
        )
        .refused(400, "invalid_json", "reason"),
        Case::post(
            "alert: an unknown resolution",
            format!("/api/v1/alerts/{}/resolve", Uuid::new_v4()),
            json!({"resolution": "all_good"}),
        )
        .refused(400, "invalid_json", "resolution"),
        Case::get("audit: after_seq is text", "/api/v1/audit?after_seq=abc").refused(400, "invalid_query", "after_seq"),
        Case::get("audit: limit is text", "/api/v1/audit?limit=many").refused(400, "invalid_query", "limit"),
    ];
    refusals.check(&app, &school.dsl.api, dsl).await;
    refusals.assert_all_refused();
}

fn rota(leader: Uuid) -> Value {
    json!({
        "timezone": "Europe/London",
        "school_hours": {"start": "08:00", "end": "17:00"},
        "weekly": [{"day": "monday", "start": "17:00", "end": "08:00", "user_id": leader}],
        "overrides": [{"date": "2026-12-24", "start": "00:00", "end": "00:00", "user_id": leader}],
        "terms": [{"name": "Autumn", "start": "2026-09-03", "end": "2026-12-18"}],
    })
}

/// Phones, the on-call rota, test messages and the safety-net check: every bad input refused with the
/// field named, and nothing stored.
async fn channels_and_rota_refuse_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Rota Input School").await;
    let other = app.school("Other Rota School").await;
    let leader = school.leader.id();
    // A rota is stored, so a refused one must leave it as it was.
    let (status, _) = school
        .admin
        .api
        .raw(Method::PUT, "/api/v1/school/on-call-rota", Some(RawBody::Json(rota(leader))))
        .await
        .expect("store a rota");
    assert_eq!(status.as_u16(), 200);
    let phone_path = format!("/api/v1/users/{}/phone", school.staff.id());
    let rota_path = "/api/v1/school/on-call-rota";
    let good = || rota(leader);
    let admin = vec![
        Case::put("phone: words", &phone_path, json!({"phone": "call me"})).refused(422, "invalid_phone", "phone"),
        Case::put("phone: too short", &phone_path, json!({"phone": "+44 123"})).refused(422, "invalid_phone", "phone"),
        Case::put("phone: no country code", &phone_path, json!({"phone": "7700900123"})).refused(
            422,
            "invalid_phone",
            "phone",
        ),
        Case::put("phone: a number", &phone_path, json!({"phone": 447700900123u64})).refused(
            400,
            "invalid_json",
            "phone",
        ),
        Case::put("phone: nobody", format!("/api/v1/users/{}/phone", Uuid::new_v4()), json!({"phone": "07700 900123"}))
            .refused(404, "not_found", ""),
        Case::put("phone: not a UUID", "/api/v1/users/nobody/phone", json!({"phone": "07700 900123"})).refused(
            404,
            "not_found",
            "",
        ),
        Case::put(
            "phone: another school's user",
            format!("/api/v1/users/{}/phone", other.staff.id()),
            json!({"phone": "07700 900123"}),
        )
        .refused(404, "not_found", ""),
        Case::put("rota: an unknown time zone", rota_path, with(good(), "/timezone", json!("Mars/Olympus"))).refused(
            422,
            "invalid_timezone",
            "timezone",
        ),
        Case::put("rota: an empty time zone", rota_path, with(good(), "/timezone", json!(" "))).refused(
            422,
            "invalid_timezone",
            "timezone",
        ),
        Case::put("rota: an unknown day", rota_path, with(good(), "/weekly/0/day", json!("funday"))).refused(
            400,
            "invalid_json",
            "day",
        ),
        Case::put("rota: a time that is not a time", rota_path, with(good(), "/weekly/0/start", json!("25:00")))
            .refused(400, "invalid_json", "start"),
        Case::put("rota: a date that is not a date", rota_path, with(good(), "/overrides/0/date", json!("24/12/2026")))
            .refused(400, "invalid_json", "date"),
        Case::put(
            "rota: overlapping shifts",
            rota_path,
            with(
                good(),
                "/weekly",
                json!([
                    {"day": "monday", "start": "17:00", "end": "08:00", "user_id": leader},
                    {"day": "tuesday", "start": "07:00", "end": "09:00", "user_id": leader},
                ]),
            ),
        )
        .refused(422, "invalid_weekly", "weekly"),
        Case::put(
            "rota: overlapping overrides",
            rota_path,
            with(
                good(),
                "/overrides",
                json!([
                    {"date": "2026-12-24", "start": "00:00", "end": "00:00", "user_id": leader},
                    {"date": "2026-12-24", "start": "12:00", "end": "13:00", "user_id": leader},
                ]),
            ),
        )
        .refused(422, "invalid_overrides", "overrides"),
        Case::put(
            "rota: a term that ends before it starts",
            rota_path,
            with(good(), "/terms/0/end", json!("2026-09-01")),
        )
        .refused(422, "invalid_terms", "terms"),
        Case::put("rota: a term with no name", rota_path, with(good(), "/terms/0/name", json!(""))).refused(
            422,
            "invalid_terms",
            "terms",
        ),
        Case::put("rota: school hours backwards", rota_path, with(good(), "/school_hours/end", json!("07:00")))
            .refused(422, "invalid_school_hours", "school_hours"),
        Case::put("rota: someone unknown on call", rota_path, with(good(), "/weekly/0/user_id", json!(Uuid::new_v4())))
            .refused(422, "invalid_user_id", "user_id"),
        Case::put(
            "rota: another school's leader on call",
            rota_path,
            with(good(), "/weekly/0/user_id", json!(other.leader.id())),
        )
        .refused(422, "invalid_user_id", "user_id"),
        Case::put(
            "rota: a staff member on call",
            rota_path,
            with(good(), "/overrides/0/user_id", json!(school.staff.id())),
        )
        .refused(422, "invalid_user_id", "user_id"),
        Case::put("rota: user id is not a UUID", rota_path, with(good(), "/weekly/0/user_id", json!("bob"))).refused(
            400,
            "invalid_json",
            "user_id",
        ),
    ];
    refusals.check(&app, &school.admin.api, admin).await;

    let staff =
        vec![
            Case::put("rota, from staff", rota_path, good()).refused(403, "forbidden", ""),
            Case::put(
                "someone else's phone, from staff",
                format!("/api/v1/users/{leader}/phone"),
                json!({"phone": null}),
            )
            .refused(403, "forbidden", ""),
            Case::post("test message: an unknown channel", "/api/v1/me/test-message", json!({"channel": "fax"}))
                .refused(400, "invalid_json", "channel"),
            Case::post("test message: no channel", "/api/v1/me/test-message", json!({})).refused(
                400,
                "invalid_json",
                "channel",
            ),
            Case::post("test message: e-mail not set up", "/api/v1/me/test-message", json!({"channel": "email"}))
                .refused(409, "channel_not_set_up", "email"),
            Case::post("test message: SMS not set up", "/api/v1/me/test-message", json!({"channel": "sms"})).refused(
                409,
                "channel_not_set_up",
                "sms",
            ),
            Case::get("safety net of no session", format!("/api/v1/sessions/{}/safety-net", Uuid::new_v4())).refused(
                404,
                "not_found",
                "",
            ),
            Case::get("safety net: not a UUID", "/api/v1/sessions/visit/safety-net").refused(404, "not_found", ""),
            Case::get("reachability, from staff", "/api/v1/school/reachability").refused(403, "forbidden", ""),
        ];
    refusals.check(&app, &school.staff.api, staff).await;
    refusals.assert_all_refused();
}

/// The leaders', the DSL's and the admins' endpoints: messages, reviews, figures, the export, the signal
/// map and marks, changes to users, the retention period.
async fn oversight_endpoints_refuse_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut refusals = Refusals::default();
    let school = app.school("Oversight Input School").await;
    let live = started_visit(&school.staff.api).await;
    school
        .staff
        .api
        .send_events(live, &[event(ClientEventKind::Panic { location: None }, Duration::zero())])
        .await
        .expect("panic");
    let alert = school.leader.api.alerts("open").await.expect("alerts").remove(0).id;
    let calm = started_visit(&school.other_staff.api).await;
    let staff_id = school.staff.id();
    let long = "x".repeat(501);

    let leader = vec![
        Case::post("message: empty", format!("/api/v1/alerts/{alert}/messages"), json!({"text": "  "})).refused(
            422,
            "invalid_text",
            "text",
        ),
        Case::post("message: too long", format!("/api/v1/alerts/{alert}/messages"), json!({"text": long})).refused(
            422,
            "invalid_text",
            "text",
        ),
        Case::post("message: no text", format!("/api/v1/alerts/{alert}/messages"), json!({})).refused(
            400,
            "invalid_json",
            "text",
        ),
        Case::post("message: text is a number", format!("/api/v1/alerts/{alert}/messages"), json!({"text": 7}))
            .refused(400, "invalid_json", "text"),
        Case::post(
            "message: an alert that does not exist",
            format!("/api/v1/alerts/{}/messages", Uuid::new_v4()),
            json!({"text": "Hi"}),
        )
        .refused(404, "not_found", ""),
        Case::post("message: not a uuid", "/api/v1/alerts/not-a-uuid/messages", json!({"text": "Hi"})).refused(
            404,
            "not_found",
            "",
        ),
        Case::get("signal map: zero days", "/api/v1/signal-map?days=0").refused(422, "invalid_days", "days"),
        Case::get("signal map: days is text", "/api/v1/signal-map?days=many").refused(400, "invalid_query", "days"),
    ];
    refusals.check(&app, &school.leader.api, leader).await;

    let staff = vec![
        Case::post("answer: nobody asked", format!("/api/v1/sessions/{live}/messages"), json!({"text": "I'm OK"}))
            .refused(409, "nothing_to_answer", ""),
        Case::post("answer: empty", format!("/api/v1/sessions/{live}/messages"), json!({"text": ""})).refused(
            422,
            "invalid_text",
            "text",
        ),
        Case::post("answer: someone else's visit", format!("/api/v1/sessions/{calm}/messages"), json!({"text": "OK"}))
            .refused(404, "not_found", ""),
        Case::post("mark: latitude out of range", "/api/v1/signal-marks", json!({"latitude": 91.0, "longitude": 0.0}))
            .refused(422, "invalid_latitude", "latitude"),
        Case::post(
            "mark: longitude out of range",
            "/api/v1/signal-marks",
            json!({"latitude": 51.0, "longitude": -181.0}),
        )
        .refused(422, "invalid_longitude", "longitude"),
        Case::post("mark: no longitude", "/api/v1/signal-marks", json!({"latitude": 51.0})).refused(
            400,
            "invalid_json",
            "longitude",
        ),
        Case::post(
            "mark: a long note",
            "/api/v1/signal-marks",
            json!({"latitude": 51.0, "longitude": 0.0, "note": "n".repeat(301)}),
        )
        .refused(422, "invalid_note", "note"),
        Case::post("mark: latitude is text", "/api/v1/signal-marks", json!({"latitude": "north", "longitude": 0.0}))
            .refused(400, "invalid_json", "latitude"),
    ];
    refusals.check(&app, &school.staff.api, staff).await;

    let dsl = vec![
        Case::get("reviews: an unknown status", "/api/v1/reviews?status=later").refused(
            400,
            "invalid_status",
            "status",
        ),
        Case::post("review: no action", format!("/api/v1/reviews/{alert}"), json!({"action_taken": " "})).refused(
            422,
            "invalid_action_taken",
            "action_taken",
        ),
        Case::post(
            "review: an open alert is not an item",
            format!("/api/v1/reviews/{alert}"),
            json!({"action_taken": "Done"}),
        )
        .refused(404, "not_found", ""),
        Case::post("review: not a uuid", "/api/v1/reviews/42", json!({"action_taken": "Done"})).refused(
            404,
            "not_found",
            "",
        ),
        Case::post("review: action missing", format!("/api/v1/reviews/{alert}"), json!({})).refused(
            400,
            "invalid_json",
            "action_taken",
        ),
        Case::get("figures: a bad month", "/api/v1/figures?month=2026-13").refused(422, "invalid_month", "month"),
        Case::get("figures: words", "/api/v1/figures?month=last").refused(422, "invalid_month", "month"),
        Case::get("export: no dates", "/api/v1/export/sessions").refused(422, "invalid_from", "from"),
        Case::get("export: no end", "/api/v1/export/sessions?from=2026-01-01").refused(422, "invalid_to", "to"),
        Case::get("export: a bad date", "/api/v1/export/sessions?from=01/01/2026&to=2026-01-02").refused(
            422,
            "invalid_from",
            "from",
        ),
        Case::get("export: backwards", "/api/v1/export/sessions?from=2026-02-01&to=2026-01-01").refused(
            422,
            "invalid_to",
            "to",
        ),
        Case::get("export: over a year", "/api/v1/export/sessions?from=2025-01-01&to=2026-06-01").refused(
            422,
            "invalid_to",
            "366",
        ),
    ];
    refusals.check(&app, &school.dsl.api, dsl).await;

    let admin = vec![
        Case::put("user: no roles", format!("/api/v1/users/{staff_id}"), json!({"roles": []})).refused(
            422,
            "invalid_roles",
            "roles",
        ),
        Case::put("user: an unknown role", format!("/api/v1/users/{staff_id}"), json!({"roles": ["boss"]})).refused(
            400,
            "invalid_json",
            "roles",
        ),
        Case::put("user: their own manager", format!("/api/v1/users/{staff_id}"), json!({"line_manager_id": staff_id}))
            .refused(422, "invalid_line_manager_id", "line_manager_id"),
        Case::put(
            "user: a manager from nowhere",
            format!("/api/v1/users/{staff_id}"),
            json!({"line_manager_id": Uuid::new_v4()}),
        )
        .refused(422, "invalid_line_manager_id", "line_manager_id"),
        Case::put(
            "user: a manager and clear",
            format!("/api/v1/users/{staff_id}"),
            json!({"line_manager_id": school.leader.id(), "clear_line_manager": true}),
        )
        .refused(422, "invalid_line_manager_id", "line_manager_id"),
        Case::put("user: active is text", format!("/api/v1/users/{staff_id}"), json!({"active": "no"})).refused(
            400,
            "invalid_json",
            "active",
        ),
        Case::put("user: deactivate myself", format!("/api/v1/users/{}", school.admin.id()), json!({"active": false}))
            .refused(409, "own_admin_account", ""),
        Case::put("user: not a uuid", "/api/v1/users/someone", json!({"active": false})).refused(404, "not_found", ""),
        Case::put("user: nobody", format!("/api/v1/users/{}", Uuid::new_v4()), json!({"active": false})).refused(
            404,
            "not_found",
            "",
        ),
        Case::put("retention: zero days", "/api/v1/school/retention", json!({"location_retention_days": 0})).refused(
            422,
            "invalid_location_retention_days",
            "location_retention_days",
        ),
        Case::put("retention: eleven years", "/api/v1/school/retention", json!({"location_retention_days": 4000}))
            .refused(422, "invalid_location_retention_days", "location_retention_days"),
        Case::put("retention: text", "/api/v1/school/retention", json!({"location_retention_days": "forever"}))
            .refused(400, "invalid_json", "location_retention_days"),
        Case::put("retention: missing", "/api/v1/school/retention", json!({})).refused(
            400,
            "invalid_json",
            "location_retention_days",
        ),
    ];
    refusals.check(&app, &school.admin.api, admin).await;
    refusals.assert_all_refused();
}

on_both_databases!(
    channels_and_rota_refuse_bad_input,
    oversight_endpoints_refuse_bad_input,
    login_refuses_bad_input,
    create_user_refuses_bad_input,
    import_refuses_bad_input,
    rules_refuse_bad_input,
    plan_session_refuses_bad_input,
    reject_refuses_bad_input,
    events_refuse_bad_input,
    pings_refuse_bad_input,
    outcome_refuses_bad_input,
    pins_refuse_bad_input,
    escalation_plans_refuse_bad_input,
    list_queries_refuse_bad_input,
    malformed_bodies_are_refused_everywhere,
    path_ids_that_are_not_uuids_are_not_found,
    alerts_and_push_refuse_bad_input,
    wrong_types_name_the_field,
);
