//! Who may do what: signing in and out, the login rate limit, token expiry, the Authorization header,
//! an authorization matrix over every endpoint of the API (checked against the OpenAPI document), the
//! wall between schools, and who may see or close a duress alarm.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{Duration, Utc};
use homeward_server::clock::ManualClock;
use homeward_shared::api::{
    ApprovalRules, ClientEventKind, CreateUserRequest, EscalationPlanRequest, LocationPing, OutcomeRequest, UserView,
};
use homeward_shared::client::{ApiClient, ClientError, RawBody};
use homeward_shared::escalation::Channel;
use homeward_shared::session::{AlarmKind, ApprovalStatus, Concern, Outcome, SessionStatus};
use homeward_shared::{ErrorBody, EscalationStep, OnCallRota, Recipient, RiskLevel, Role};
use homeward_tests::{
    Backend, Member, PASSWORD, School, TestApp, event, low_risk_visit, on_both_databases, spawn_app,
    spawn_app_with_clock, visit_with_risk,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

fn status_of(err: &ClientError) -> Option<u16> {
    err.status().map(|s| s.as_u16())
}

fn body_of(err: &ClientError) -> ErrorBody {
    match err {
        ClientError::Api { body, .. } => body.clone(),
        other => panic!("expected an error body from the server, got {other}"),
    }
}

fn short_tag() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A sign-in sent by hand, so the test can read the headers.
async fn post_login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.address))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("the server answers")
}

/// The body is exactly the shared error body: a non-empty `code` and `message`, nothing else.
fn assert_error_body(body: &Value, code: &str, context: &str) {
    let object = body.as_object().unwrap_or_else(|| panic!("{context}: the error body is not a JSON object: {body}"));
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["code", "message"]), "{context}: the error body has other fields: {body}");
    assert_eq!(body["code"], code, "{context}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!message.trim().is_empty(), "{context}: the error body has no message: {body}");
}

fn ping_now() -> LocationPing {
    LocationPing {
        id: Uuid::new_v4(),
        at: Utc::now(),
        latitude: 51.5,
        longitude: -0.12,
        accuracy_m: 10.0,
        battery_percent: Some(77),
    }
}

fn outcome_request() -> OutcomeRequest {
    OutcomeRequest {
        id: Some(Uuid::new_v4()),
        outcome: Outcome {
            child_seen: true,
            responsible_adult_present: true,
            entered_premises: false,
            concern: Concern::None,
            notes: "All well.".into(),
        },
    }
}

fn plan_request(name: &str) -> EscalationPlanRequest {
    EscalationPlanRequest {
        name: name.into(),
        steps: vec![EscalationStep {
            delay_seconds: 0,
            recipients: vec![Recipient::LineManager],
            channels: vec![Channel::Push],
            instruction: "Phone the worker now".into(),
        }],
        repeat_every_seconds: None,
        is_default: false,
    }
}

fn new_user_request(tag: &str) -> CreateUserRequest {
    CreateUserRequest {
        email: format!("new-{tag}@school.test"),
        name: format!("New {tag}"),
        password: PASSWORD.into(),
        roles: vec![Role::Staff],
        line_manager_id: None,
        phone: None,
    }
}

/// A planned low-risk visit of `worker`, started a moment ago.
async fn started_visit(worker: &ApiClient) -> Uuid {
    let session = worker.plan_session(&low_risk_visit()).await.expect("plan");
    worker
        .send_events(session.id, &[event(ClientEventKind::Start { location: None }, Duration::seconds(-30))])
        .await
        .expect("start");
    session.id
}

/// A visit of `worker` that was started and has ended, waiting for its outcome.
async fn ended_visit(worker: &ApiClient) -> Uuid {
    let id = started_visit(worker).await;
    worker.send_events(id, &[event(ClientEventKind::End, Duration::seconds(-1))]).await.expect("end");
    id
}

/// A push subscription body with an endpoint of its own (nothing listens there) and keys of the right
/// length.
fn subscription_body(tag: &str) -> Value {
    json!({
        "endpoint": format!("http://127.0.0.1:9/push/{tag}"),
        "keys": { "p256dh": "A".repeat(87), "auth": "A".repeat(22) },
    })
}

/// The worker of `school` starts a visit and presses panic: returns the session and its alert.
async fn panic_alert(school: &School) -> (Uuid, Uuid) {
    let worker = &school.staff.api;
    let session = started_visit(worker).await;
    let pressed = worker
        .send_events(session, &[event(ClientEventKind::Panic { location: None }, Duration::zero())])
        .await
        .expect("panic");
    assert_eq!(pressed.session.status, SessionStatus::Alarm);
    let (status, alerts) = school.leader.api.raw(Method::GET, "/api/v1/alerts?status=all", None).await.expect("alerts");
    assert_eq!(status, StatusCode::OK, "{alerts}");
    let alert = alerts
        .as_array()
        .and_then(|list| list.iter().find(|a| a["session_id"] == session.to_string()))
        .unwrap_or_else(|| panic!("the panic raised an alert: {alerts}"));
    (session, alert["id"].as_str().and_then(|id| id.parse().ok()).expect("an alert id"))
}

// ---------------------------------------------------------------------------------------------------
// 1. Signing in
// ---------------------------------------------------------------------------------------------------

async fn sign_in_with_right_and_wrong_credentials(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Sign-in School").await;
    let email = school.staff.user.email.clone();

    let (client, login) = app.api.login(&email, PASSWORD).await.expect("the right password signs in");
    assert!(!login.token.is_empty());
    assert_eq!(login.user.id, school.staff.id());
    assert_eq!(client.me().await.expect("/me with the new token"), login.user, "/me returns the signed-in user");
    assert_eq!(login.user.email, email);
    assert_eq!(login.user.school_id, school.id);
    assert_eq!(login.user.roles, vec![Role::Staff]);

    // The e-mail is matched without regard to case or surrounding spaces.
    let (_, again) =
        app.api.login(&format!("  {}  ", email.to_uppercase()), PASSWORD).await.expect("case-insensitive e-mail");
    assert_eq!(again.user.id, school.staff.id());
    assert_ne!(again.token, login.token, "every sign-in gets its own token");

    let wrong_password = app.api.login(&email, "not-the-right-password").await.unwrap_err();
    let unknown_email = app.api.login("nobody-at-all@school.test", PASSWORD).await.unwrap_err();
    assert_eq!(status_of(&wrong_password), Some(401), "{wrong_password}");
    assert_eq!(status_of(&unknown_email), Some(401), "{unknown_email}");
    assert_eq!(wrong_password.code(), Some("unauthorized"));
    assert_eq!(
        body_of(&wrong_password),
        body_of(&unknown_email),
        "a wrong password and an unknown e-mail must look the same, so accounts cannot be discovered"
    );

    let malformed = app.api.login("not-an-email", PASSWORD).await.unwrap_err();
    assert_eq!(status_of(&malformed), Some(422), "{malformed}");
    assert_eq!(malformed.code(), Some("invalid_email"));
    assert!(body_of(&malformed).message.contains("e-mail"), "{malformed}");

    let empty_password = app.api.login(&email, "").await.unwrap_err();
    assert_eq!(status_of(&empty_password), Some(422), "{empty_password}");
    assert_eq!(empty_password.code(), Some("invalid_password"));

    // The failures above did not lock the account (2 of 5), and the old token still works.
    school.staff.api.me().await.expect("the fixture's token still works");
    app.api.login(&email, PASSWORD).await.expect("still signs in after two failures");
}

// ---------------------------------------------------------------------------------------------------
// 2. The login rate limit
// ---------------------------------------------------------------------------------------------------

async fn five_failed_sign_ins_lock_the_account_for_fifteen_minutes(backend: Backend) {
    let clock = ManualClock::new(Utc::now());
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    let school = app.school("Rate Limit School").await;
    let email = school.staff.user.email.clone();

    for attempt in 1..=5 {
        let response = post_login(&app, &email, "a-wrong-guess-123").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "failed attempt {attempt} is an ordinary 401");
    }

    // The sixth attempt is refused even with the right password.
    let response = post_login(&app, &email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("an ASCII header")
        .parse()
        .expect("Retry-After in seconds");
    // The clock has not moved: the oldest failure leaves the 15-minute window in exactly 15 minutes.
    assert_eq!(retry_after, 15 * 60);
    let body: Value = response.json().await.expect("a JSON body");
    assert_error_body(&body, "too_many_requests", "locked sign-in");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("locked"), "the message says the account is locked: {message}");
    assert!(message.contains("15"), "the message says for how long: {message}");

    // Still locked with the e-mail written differently, and after a wrong guess the answer is still 429.
    let response = post_login(&app, &email.to_uppercase(), PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "the lock is per account, not per spelling");
    assert_eq!(post_login(&app, &email, "another-wrong-guess").await.status(), StatusCode::TOO_MANY_REQUESTS);

    // Another account from the same address still signs in: 5 failures are far below the address limit.
    app.api
        .login(&school.other_staff.user.email, PASSWORD)
        .await
        .expect("another account signs in from the same address");
    // A worker who is already signed in is not thrown out by someone guessing their password.
    school.staff.api.me().await.expect("existing tokens of a locked account still work");

    // Ten minutes on, still locked, with the wait counted down.
    clock.advance(Duration::minutes(10));
    let response = post_login(&app, &email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("300"));

    // Once the failures leave the window, the right password works again.
    clock.advance(Duration::minutes(5) + Duration::seconds(1));
    let (client, _) = app.api.login(&email, PASSWORD).await.expect("the lock lifts after 15 minutes");
    client.me().await.expect("and the new token works");
}

// ---------------------------------------------------------------------------------------------------
// 3. Signing out
// ---------------------------------------------------------------------------------------------------

async fn logout_revokes_only_that_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Logout School").await;
    let first = &school.staff.api;
    let (second, _) =
        app.api.login(&school.staff.user.email, PASSWORD).await.expect("a second sign-in (another phone)");

    let read_inline_before = homeward_server::db::inline_read::served();
    first.logout().await.expect("sign out");
    let err = first.me().await.unwrap_err();
    assert_eq!(status_of(&err), Some(401), "{err}");
    assert_eq!(err.code(), Some("unauthorized"));
    assert!(body_of(&err).message.contains("signed out"), "{err}");
    // Every endpoint refuses it, not only /me.
    let err = first.sessions("mine").await.unwrap_err();
    assert_eq!(status_of(&err), Some(401), "{err}");
    let err = first.plan_session(&low_risk_visit()).await.unwrap_err();
    assert_eq!(status_of(&err), Some(401), "{err}");
    // Signing out again with the dead token is refused too.
    assert_eq!(status_of(&first.logout().await.unwrap_err()), Some(401));

    // The same user's other token, and other users' tokens, are untouched.
    assert_eq!(second.me().await.expect("the other token still works").id, school.staff.id());
    second.plan_session(&low_risk_visit()).await.expect("and can still plan a visit");
    school.other_staff.api.me().await.expect("other users are not signed out");
    if backend == Backend::Sqlite {
        // The eight requests since signing out each looked their token up on their own thread, and
        // saw the revocation there (`db::inline_read`), not through the pool.
        let read_inline = homeward_server::db::inline_read::served() - read_inline_before;
        assert!(read_inline >= 8, "{read_inline} token lookups on the request's thread");
    }
}

// ---------------------------------------------------------------------------------------------------
// 4. Token expiry
// ---------------------------------------------------------------------------------------------------

/// An access token lives for the configured time (15 minutes by default) and is then refused as
/// expired; a device sign-in renews itself past that point, and signing in again always works.
async fn access_tokens_expire_after_their_lifetime(backend: Backend) {
    let clock = ManualClock::new(Utc::now());
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    let school = app.school("Expiry School").await;
    let (device, login) = app.api.login(&school.staff.user.email, PASSWORD).await.expect("sign in");
    assert_eq!(
        login.expires_at.timestamp_millis(),
        (app.now() + Duration::seconds(900)).timestamp_millis(),
        "the access token lives for the configured 15 minutes"
    );
    let bare = ApiClient::new(&app.address).with_token(login.token.clone());

    clock.advance(Duration::minutes(14) + Duration::seconds(59));
    bare.me().await.expect("still valid a second before expiry");

    clock.advance(Duration::seconds(61));
    let err = bare.me().await.unwrap_err();
    assert_eq!(status_of(&err), Some(401), "{err}");
    assert_eq!(err.code(), Some("unauthorized"));
    assert!(body_of(&err).message.contains("expired"), "the message says the token expired: {err}");
    device.me().await.expect("the device sign-in renews itself");
    assert_ne!(device.token().expect("signed in"), login.token, "with a new access token");

    let (fresh, _) = app.api.login(&school.staff.user.email, PASSWORD).await.expect("signing in again works");
    fresh.me().await.expect("the new token works");
}

// ---------------------------------------------------------------------------------------------------
// 5. The Authorization header
// ---------------------------------------------------------------------------------------------------

async fn missing_or_garbage_authorization_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Header School").await;
    let token = school.staff.api.token().expect("a token").to_string();
    let http = reqwest::Client::new();
    let me = format!("{}/api/v1/me", app.address);
    let plan = format!("{}/api/v1/sessions", app.address);

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("empty", Some(String::new())),
        ("scheme only", Some("Bearer".into())),
        ("garbage token", Some("Bearer not-a-real-token".into())),
        ("tampered token", Some(format!("Bearer {token}x"))),
        ("token without scheme", Some(token.clone())),
        ("basic auth", Some("Basic c3RhZmY6cGFzc3dvcmQ=".into())),
        ("other scheme", Some(format!("Token {token}"))),
    ];
    for (what, header) in &cases {
        for (method, url) in [(Method::GET, &me), (Method::POST, &plan)] {
            let mut request = http.request(method.clone(), url.as_str());
            if method == Method::POST {
                request = request.json(&low_risk_visit());
            }
            if let Some(value) = header {
                request = request.header("authorization", value.as_str());
            }
            let response = request.send().await.expect("the server answers");
            let context = format!("{what}: {method} {url}");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{context}");
            assert_eq!(
                response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{context}: a 401 names the scheme"
            );
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_error_body(&body, "unauthorized", &context);
        }
    }
    // Nothing was planned by the refused requests.
    assert!(school.staff.api.sessions("mine").await.expect("list").is_empty());

    // The control: the right token, with either spelling of the scheme, is accepted.
    for scheme in ["Bearer", "bearer"] {
        let response = http.get(&me).header("authorization", format!("{scheme} {token}")).send().await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
        let user: UserView = response.json().await.expect("a user");
        assert_eq!(user.id, school.staff.id());
    }
}

// ---------------------------------------------------------------------------------------------------
// 6. The authorization matrix
// ---------------------------------------------------------------------------------------------------

/// Who is calling. The worker is `school.staff` of school A, who plans every session used below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Worker,
    OtherStaff,
    Leader,
    Dsl,
    Admin,
    /// A leader of school B.
    ForeignLeader,
    /// Someone in school B who holds every elevated role (leader, DSL and admin): passes every role
    /// check, so only the school boundary can stop them.
    ForeignAllRoles,
}

const CALLERS: [Caller; 8] = [
    Caller::Anonymous,
    Caller::Worker,
    Caller::OtherStaff,
    Caller::Leader,
    Caller::Dsl,
    Caller::Admin,
    Caller::ForeignLeader,
    Caller::ForeignAllRoles,
];

impl Caller {
    fn label(self) -> &'static str {
        match self {
            Caller::Anonymous => "anon",
            Caller::Worker => "worker",
            Caller::OtherStaff => "staff2",
            Caller::Leader => "leader",
            Caller::Dsl => "dsl",
            Caller::Admin => "admin",
            Caller::ForeignLeader => "B:lead",
            Caller::ForeignAllRoles => "B:all",
        }
    }

    fn is_foreign(self) -> bool {
        matches!(self, Caller::ForeignLeader | Caller::ForeignAllRoles)
    }
}

struct Row {
    method: &'static str,
    /// The path template exactly as in the OpenAPI document.
    path: &'static str,
    /// A query string for a variant of the same endpoint ("" for none).
    query: &'static str,
    /// The expected status for each of [`CALLERS`], in order.
    expect: [u16; 8],
}

const fn row(method: &'static str, path: &'static str, query: &'static str, expect: [u16; 8]) -> Row {
    Row { method, path, query, expect }
}

/// Every endpoint and what each caller gets. Sessions, plans and the ids in paths belong to school A.
/// Columns: anon, worker (A staff, the session's worker), other A staff, A leader, A DSL, A admin,
/// B leader, B leader+DSL+admin.
#[rustfmt::skip]
const MATRIX: &[Row] = &[
    // Public.
    row("GET",  "/health",                                  "", [200, 200, 200, 200, 200, 200, 200, 200]),
    row("GET",  "/ready",                                   "", [200, 200, 200, 200, 200, 200, 200, 200]),
    row("GET",  "/api/openapi.json",                        "", [200, 200, 200, 200, 200, 200, 200, 200]),
    // Each caller signs in with its own account (the anonymous caller with the worker's).
    row("POST", "/api/v1/auth/login",                       "", [200, 200, 200, 200, 200, 200, 200, 200]),
    // Each signed-in caller signs out a fresh token of its own.
    row("POST", "/api/v1/auth/logout",                      "", [401, 204, 204, 204, 204, 204, 204, 204]),
    // Renewal needs no access token: each caller renews a fresh device sign-in of its own.
    row("POST", "/api/v1/auth/refresh",                     "", [200, 200, 200, 200, 200, 200, 200, 200]),
    // Each signed-in caller is a fresh colleague with the same roles, so nobody else is signed out.
    row("POST", "/api/v1/auth/logout-everywhere",           "", [401, 204, 204, 204, 204, 204, 204, 204]),
    row("GET",  "/api/v1/me/devices",                       "", [401, 200, 200, 200, 200, 200, 200, 200]),
    // A device of the worker's: only the worker may sign it out; to anyone else it does not exist.
    row("DELETE", "/api/v1/me/devices/{id}",                "", [401, 204, 404, 404, 404, 404, 404, 404]),
    row("GET",  "/api/v1/me",                               "", [401, 200, 200, 200, 200, 200, 200, 200]),
    row("PUT",  "/api/v1/me/pins",                          "", [401, 204, 204, 204, 204, 204, 204, 204]),
    // A test message to the caller's own devices (none here).
    row("POST", "/api/v1/me/test-message",                  "", [401, 200, 200, 200, 200, 200, 200, 200]),
    // Lists are of the caller's own school: B gets B's staff (checked for leaks below).
    row("GET",  "/api/v1/users",                            "", [401, 200, 200, 200, 200, 200, 200, 200]),
    row("POST", "/api/v1/users",                            "", [401, 403, 403, 403, 403, 201, 403, 201]),
    row("POST", "/api/v1/users/import",                     "", [401, 403, 403, 403, 403, 201, 403, 201]),
    // The worker's phone: the worker themself and A's admin; B's admin does not find the worker.
    row("PUT",  "/api/v1/users/{id}/phone",                 "", [401, 200, 403, 403, 403, 200, 403, 404]),
    row("GET",  "/api/v1/school/rules",                     "", [401, 200, 200, 200, 200, 200, 200, 200]),
    row("PUT",  "/api/v1/school/rules",                     "", [401, 403, 403, 403, 403, 200, 403, 200]),
    row("GET",  "/api/v1/school/on-call-rota",              "", [401, 403, 403, 200, 200, 200, 200, 200]),
    row("PUT",  "/api/v1/school/on-call-rota",              "", [401, 403, 403, 403, 403, 200, 403, 200]),
    row("GET",  "/api/v1/school/reachability",              "", [401, 403, 403, 200, 200, 200, 200, 200]),
    // Changes a fresh user of school A.
    row("PUT",  "/api/v1/users/{id}",                       "", [401, 403, 403, 403, 403, 200, 403, 404]),
    row("GET",  "/api/v1/school/retention",                 "", [401, 403, 403, 403, 200, 200, 403, 200]),
    row("PUT",  "/api/v1/school/retention",                 "", [401, 403, 403, 403, 403, 200, 403, 200]),
    row("GET",  "/api/v1/sessions",                         "", [401, 200, 200, 200, 200, 200, 200, 200]),
    row("GET",  "/api/v1/sessions", "?scope=school",            [401, 403, 403, 200, 200, 200, 200, 200]),
    row("GET",  "/api/v1/sessions", "?scope=pending_approval",  [401, 403, 403, 200, 200, 403, 200, 200]),
    row("GET",  "/api/v1/sessions", "?scope=everything",        [401, 400, 400, 400, 400, 400, 400, 400]),
    // Anyone signed in may plan their own visit (in their own school).
    row("POST", "/api/v1/sessions",                         "", [401, 201, 201, 201, 201, 201, 201, 201]),
    // A session: its worker and the school's overseers see it; other staff and other schools get 404.
    row("GET",  "/api/v1/sessions/{id}",                    "", [401, 200, 404, 200, 200, 200, 404, 404]),
    row("GET",  "/api/v1/sessions/{id}/safety-net",         "", [401, 200, 404, 200, 200, 200, 404, 404]),
    row("POST", "/api/v1/sessions/{id}/approval/request",   "", [401, 200, 404, 403, 403, 403, 404, 404]),
    row("POST", "/api/v1/sessions/{id}/approval/approve",   "", [401, 403, 404, 200, 200, 403, 404, 404]),
    row("POST", "/api/v1/sessions/{id}/approval/reject",    "", [401, 403, 404, 200, 200, 403, 404, 404]),
    row("POST", "/api/v1/sessions/{id}/events",             "", [401, 200, 404, 403, 403, 403, 404, 404]),
    row("POST", "/api/v1/sessions/{id}/pings",              "", [401, 200, 404, 403, 403, 403, 404, 404]),
    row("POST", "/api/v1/sessions/{id}/outcome",            "", [401, 200, 404, 403, 403, 403, 404, 404]),
    // Messages about the visit's alert: its people and overseers read; only its people answer.
    row("GET",  "/api/v1/sessions/{id}/messages",           "", [401, 200, 404, 200, 200, 200, 404, 404]),
    row("POST", "/api/v1/sessions/{id}/messages",           "", [401, 201, 404, 403, 403, 403, 404, 404]),
    row("GET",  "/api/v1/escalation-plans",                 "", [401, 200, 200, 200, 200, 200, 200, 200]),
    row("POST", "/api/v1/escalation-plans",                 "", [401, 403, 403, 403, 403, 201, 403, 201]),
    row("PUT",  "/api/v1/escalation-plans/{id}",            "", [401, 403, 403, 403, 403, 200, 403, 404]),
    // Alerts are for responders; an alert of school A is a 404 to school B.
    row("GET",  "/api/v1/alerts",                           "", [401, 403, 403, 200, 200, 200, 200, 200]),
    row("GET",  "/api/v1/alerts", "?status=all",                [401, 403, 403, 200, 200, 200, 200, 200]),
    row("GET",  "/api/v1/alerts", "?status=bogus",              [401, 403, 403, 400, 400, 400, 400, 400]),
    row("GET",  "/api/v1/alerts/{id}",                      "", [401, 403, 403, 200, 200, 200, 404, 404]),
    row("POST", "/api/v1/alerts/{id}/acknowledge",          "", [401, 403, 403, 200, 200, 403, 404, 404]),
    row("POST", "/api/v1/alerts/{id}/resolve",              "", [401, 403, 403, 200, 200, 403, 404, 404]),
    row("POST", "/api/v1/alerts/{id}/messages",             "", [401, 403, 403, 201, 201, 403, 404, 404]),
    // The live board: each school sees its own.
    row("GET",  "/api/v1/board",                            "", [401, 403, 403, 200, 200, 200, 200, 200]),
    row("GET",  "/api/v1/board/events",                     "", [401, 403, 403, 200, 200, 200, 200, 200]),
    row("GET",  "/api/v1/signal-map",                       "", [401, 403, 403, 200, 200, 200, 200, 200]),
    row("GET",  "/api/v1/signal-marks",                     "", [401, 200, 200, 200, 200, 200, 200, 200]),
    row("POST", "/api/v1/signal-marks",                     "", [401, 201, 201, 201, 201, 201, 201, 201]),
    // The DSL's records; a review of school A's resolved alarm is a 404 to school B.
    row("GET",  "/api/v1/reviews",                          "", [401, 403, 403, 403, 200, 403, 403, 200]),
    row("POST", "/api/v1/reviews/{id}",                     "", [401, 403, 403, 403, 200, 403, 403, 404]),
    row("GET",  "/api/v1/figures",                          "", [401, 403, 403, 403, 200, 200, 403, 200]),
    row("GET",  "/api/v1/export/sessions",                  "", [401, 403, 403, 403, 200, 200, 403, 200]),
    // Push: each caller manages their own devices; DELETE tries to remove the worker's device.
    row("GET",  "/api/v1/push/vapid-public-key",            "", [401, 200, 200, 200, 200, 200, 200, 200]),
    row("GET",  "/api/v1/push/subscriptions",               "", [401, 200, 200, 200, 200, 200, 200, 200]),
    row("POST", "/api/v1/push/subscriptions",               "", [401, 201, 201, 201, 201, 201, 201, 201]),
    row("DELETE", "/api/v1/push/subscriptions",             "", [401, 204, 404, 404, 404, 404, 404, 404]),
    row("POST", "/api/v1/push/test",                        "", [401, 200, 200, 200, 200, 200, 200, 200]),
    row("GET",  "/api/v1/push/status",                      "", [401, 200, 200, 200, 200, 200, 200, 200]),
    row("GET",  "/api/v1/audit",                            "", [401, 403, 403, 403, 200, 200, 403, 200]),
    row("GET",  "/api/v1/audit/verify",                     "", [401, 403, 403, 403, 200, 200, 403, 200]),
];

/// Served, but not described in the document it serves.
const NOT_IN_DOCUMENT: &[(&str, &str)] = &[("GET", "/api/openapi.json")];

struct World {
    app: TestApp,
    a: School,
    b: School,
    b_all: Member,
}

impl World {
    fn member(&self, caller: Caller) -> Option<&Member> {
        match caller {
            Caller::Anonymous => None,
            Caller::Worker => Some(&self.a.staff),
            Caller::OtherStaff => Some(&self.a.other_staff),
            Caller::Leader => Some(&self.a.leader),
            Caller::Dsl => Some(&self.a.dsl),
            Caller::Admin => Some(&self.a.admin),
            Caller::ForeignLeader => Some(&self.b.leader),
            Caller::ForeignAllRoles => Some(&self.b_all),
        }
    }

    fn client(&self, caller: Caller) -> ApiClient {
        self.member(caller).map_or_else(|| self.app.api.clone(), |m| m.api.clone())
    }

    /// Everything that identifies school A: a foreign caller's answer must contain none of it.
    fn school_a_markers(&self) -> Vec<String> {
        let a = &self.a;
        let mut markers = vec![a.id.to_string()];
        for m in [&a.admin, &a.leader, &a.dsl, &a.staff, &a.other_staff] {
            markers.push(m.id().to_string());
            markers.push(m.user.email.clone());
        }
        markers
    }
}

/// Build what the cell needs, fresh, so that no cell depends on another: returns who calls, the path and
/// the body.
async fn prepare(world: &World, row: &Row, caller: Caller) -> (ApiClient, String, Option<RawBody>) {
    let a = &world.a;
    let worker = &a.staff.api;
    let tag = short_tag();
    let mut client = world.client(caller);
    let mut id: Option<Uuid> = None;
    let mut query = row.query.to_string();
    let body = match (row.method, row.path) {
        ("GET", "/api/v1/export/sessions") => {
            let today = Utc::now().format("%Y-%m-%d");
            query = format!("?from={today}&to={today}");
            None
        }
        ("GET", "/api/v1/sessions/{id}/messages") => {
            id = Some(started_visit(worker).await);
            None
        }
        ("GET", _) if !row.path.contains("{id}") => None,
        ("PUT", "/api/v1/users/{id}") => {
            let fresh = a.admin.api.create_user(&new_user_request(&tag)).await.expect("a user of school A");
            id = Some(fresh.id);
            Some(RawBody::Json(json!({ "roles": ["staff", "leader"] })))
        }
        ("PUT", "/api/v1/school/retention") => Some(RawBody::Json(json!({ "location_retention_days": 45 }))),
        ("POST", "/api/v1/sessions/{id}/messages") => {
            let (session, alert) = panic_alert(a).await;
            a.leader.api.message_worker(alert, "Are you OK?").await.expect("the leader asks");
            id = Some(session);
            Some(RawBody::Json(json!({ "text": "I'm OK" })))
        }
        ("POST", "/api/v1/alerts/{id}/messages") => {
            id = Some(panic_alert(a).await.1);
            Some(RawBody::Json(json!({ "text": "Are you OK?" })))
        }
        ("POST", "/api/v1/signal-marks") => {
            Some(RawBody::Json(json!({ "latitude": 51.5, "longitude": -0.12, "note": "No bars here" })))
        }
        ("POST", "/api/v1/reviews/{id}") => {
            let alert = panic_alert(a).await.1;
            let resolve = json!({ "resolution": "false_alarm", "notes": "Pressed by mistake" });
            let (status, _) = a
                .leader
                .api
                .raw(Method::POST, &format!("/api/v1/alerts/{alert}/resolve"), Some(RawBody::Json(resolve)))
                .await
                .expect("resolve");
            assert_eq!(status, StatusCode::OK, "the leader resolves the alarm");
            id = Some(alert);
            Some(RawBody::Json(json!({ "action_taken": "Spoke to the worker" })))
        }
        ("POST", "/api/v1/auth/login") => {
            let email = world.member(caller).map_or(a.staff.user.email.clone(), |m| m.user.email.clone());
            Some(RawBody::Json(json!({ "email": email, "password": PASSWORD })))
        }
        ("POST", "/api/v1/auth/logout") => {
            if let Some(member) = world.member(caller) {
                client = world.app.api.login(&member.user.email, PASSWORD).await.expect("a fresh token to sign out").0;
            }
            None
        }
        ("POST", "/api/v1/auth/refresh") => {
            let email = world.member(caller).map_or(a.staff.user.email.clone(), |m| m.user.email.clone());
            let (fresh, _) = world.app.api.login(&email, PASSWORD).await.expect("a fresh device to renew");
            let refresh_token = fresh.sign_in().and_then(|s| s.refresh_token).expect("a refresh token");
            let next = format!("matrix-{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
            Some(RawBody::Json(json!({ "refresh_token": refresh_token, "next_refresh_token": next })))
        }
        ("POST", "/api/v1/auth/logout-everywhere") => {
            if let Some(member) = world.member(caller) {
                let colleague = world
                    .app
                    .member(member.user.school_id, &format!("colleague-{tag}"), member.user.roles.clone(), None)
                    .await;
                client = colleague.api;
            }
            None
        }
        ("DELETE", "/api/v1/me/devices/{id}") => {
            let (device, _) = world.app.api.login(&a.staff.user.email, PASSWORD).await.expect("another device");
            id = device.sign_in().and_then(|s| s.device_id);
            None
        }
        ("PUT", "/api/v1/me/pins") => Some(RawBody::Json(json!({ "safe_pin": "2468", "duress_pin": "1357" }))),
        ("POST", "/api/v1/me/test-message") => Some(RawBody::Json(json!({ "channel": "push" }))),
        ("PUT", "/api/v1/users/{id}/phone") => {
            id = Some(a.staff.id());
            Some(RawBody::Json(json!({ "phone": "+44 7700 900123" })))
        }
        ("PUT", "/api/v1/school/on-call-rota") => Some(RawBody::Json(json!(OnCallRota::default()))),
        ("POST", "/api/v1/users") => Some(RawBody::Json(json!(new_user_request(&tag)))),
        ("POST", "/api/v1/users/import") => Some(RawBody::Text {
            content_type: "text/csv",
            text: format!(
                "email,name,roles,line_manager_email,password\nimported-{tag}@school.test,Imported {tag},staff,,{PASSWORD}\n"
            ),
        }),
        ("PUT", "/api/v1/school/rules") => Some(RawBody::Json(json!(ApprovalRules::default()))),
        ("POST", "/api/v1/sessions") => Some(RawBody::Json(json!(low_risk_visit()))),
        ("GET", "/api/v1/sessions/{id}") | ("GET", "/api/v1/sessions/{id}/safety-net") => {
            id = Some(worker.plan_session(&visit_with_risk(RiskLevel::Medium)).await.expect("plan").id);
            None
        }
        ("POST", "/api/v1/sessions/{id}/approval/request") => {
            let mut draft = visit_with_risk(RiskLevel::Medium);
            draft.submit_for_approval = false;
            let session = worker.plan_session(&draft).await.expect("plan");
            assert_eq!(session.approval.status, ApprovalStatus::Required);
            id = Some(session.id);
            Some(RawBody::Json(json!({})))
        }
        ("POST", "/api/v1/sessions/{id}/approval/approve") | ("POST", "/api/v1/sessions/{id}/approval/reject") => {
            let session = worker.plan_session(&visit_with_risk(RiskLevel::Medium)).await.expect("plan");
            assert_eq!(session.approval.status, ApprovalStatus::Pending);
            id = Some(session.id);
            Some(RawBody::Json(json!({ "reason": "Go with a colleague" })))
        }
        ("POST", "/api/v1/sessions/{id}/events") => {
            id = Some(worker.plan_session(&low_risk_visit()).await.expect("plan").id);
            let start = event(ClientEventKind::Start { location: None }, Duration::seconds(-1));
            Some(RawBody::Json(json!({ "events": [start] })))
        }
        ("POST", "/api/v1/sessions/{id}/pings") => {
            id = Some(started_visit(worker).await);
            Some(RawBody::Json(json!({ "pings": [ping_now()] })))
        }
        ("POST", "/api/v1/sessions/{id}/outcome") => {
            id = Some(ended_visit(worker).await);
            Some(RawBody::Json(json!(outcome_request())))
        }
        ("GET", "/api/v1/alerts/{id}")
        | ("POST", "/api/v1/alerts/{id}/acknowledge")
        | ("POST", "/api/v1/alerts/{id}/resolve") => {
            id = Some(panic_alert(a).await.1);
            Some(RawBody::Json(json!({ "resolution": "false_alarm", "notes": "Pressed by mistake" })))
        }
        ("POST", "/api/v1/push/subscriptions") => Some(RawBody::Json(subscription_body(&tag))),
        // Sends to the caller's own devices (none here): everyone signed in may.
        ("POST", "/api/v1/push/test") => Some(RawBody::Json(json!({}))),
        ("DELETE", "/api/v1/push/subscriptions") => {
            let body = subscription_body(&tag);
            let (status, _) = worker
                .raw(Method::POST, "/api/v1/push/subscriptions", Some(RawBody::Json(body.clone())))
                .await
                .expect("subscribe");
            assert_eq!(status, StatusCode::CREATED, "the worker subscribes a device");
            Some(RawBody::Json(json!({ "endpoint": body["endpoint"] })))
        }
        ("POST", "/api/v1/escalation-plans") => Some(RawBody::Json(json!(plan_request(&format!("Plan {tag}"))))),
        ("PUT", "/api/v1/escalation-plans/{id}") => {
            let plan = a
                .admin
                .api
                .create_escalation_plan(&plan_request(&format!("Plan {tag}")))
                .await
                .expect("a plan of school A");
            id = Some(plan.id);
            Some(RawBody::Json(json!(plan_request(&format!("Renamed {tag}")))))
        }
        (method, path) => panic!("the matrix has no fixture for {method} {path}: add one to `prepare`"),
    };
    let mut path = row.path.to_string();
    if let Some(id) = id {
        path = path.replace("{id}", &id.to_string());
    }
    assert!(!path.contains('{'), "no id was made for {}", row.path);
    path.push_str(&query);
    (client, path, body)
}

fn expected_code(status: u16) -> Option<&'static str> {
    match status {
        401 => Some("unauthorized"),
        403 => Some("forbidden"),
        404 => Some("not_found"),
        _ => None,
    }
}

/// The (method, path) pairs the OpenAPI document describes.
fn documented_endpoints(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("the document has `paths`");
    let mut found = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item");
        for method in ["get", "put", "post", "delete", "patch", "head", "options", "trace"] {
            if item.contains_key(method) {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

async fn authorization_matrix_covers_every_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.school("School A").await;
    let b = app.school("School B").await;
    let b_all =
        app.member(b.id, &format!("b-all-{}", short_tag()), vec![Role::Leader, Role::Dsl, Role::Admin], None).await;
    let world = World { app, a, b, b_all };
    let mut problems: Vec<String> = Vec::new();

    // The matrix and the document list the same endpoints.
    let (status, document) = world.app.api.raw(Method::GET, "/api/openapi.json", None).await.expect("the document");
    assert_eq!(status, StatusCode::OK);
    let documented = documented_endpoints(&document);
    let in_matrix: BTreeSet<(String, String)> =
        MATRIX.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
    let exempt: BTreeSet<(String, String)> =
        NOT_IN_DOCUMENT.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    for (method, path) in documented.difference(&in_matrix) {
        problems.push(format!("{method} {path} is in the OpenAPI document but not in the matrix"));
    }
    for (method, path) in in_matrix.difference(&documented).filter(|e| !exempt.contains(*e)) {
        problems.push(format!("{method} {path} is in the matrix but not in the OpenAPI document"));
    }
    assert!(documented.len() >= 25, "the document lists only {} endpoints", documented.len());

    // Every cell.
    let markers = world.school_a_markers();
    let mut table = String::new();
    let _ = write!(table, "{:<7}{:<54}", "", "endpoint");
    for caller in CALLERS {
        let _ = write!(table, "{:>10}", caller.label());
    }
    table.push('\n');
    for row in MATRIX {
        let _ = write!(table, "{:<7}{:<54}", row.method, format!("{}{}", row.path, row.query));
        for (caller, want) in CALLERS.into_iter().zip(row.expect) {
            let (client, path, body) = prepare(&world, row, caller).await;
            let method = Method::from_bytes(row.method.as_bytes()).expect("a method");
            let (got, response) = if row.path == "/api/v1/board/events" {
                // A stream never ends: read its first board, or its refusal.
                match client.board_events().await {
                    Ok(mut events) => {
                        let board = events.next().await.expect("the stream is readable").expect("a first board");
                        (StatusCode::OK, serde_json::to_value(board).expect("the board as JSON"))
                    }
                    Err(ClientError::Api { status, body }) => (status, json!(body)),
                    Err(e) => panic!("the board stream did not answer: {e}"),
                }
            } else {
                client.raw(method, &path, body).await.expect("the server answers")
            };
            let got = got.as_u16();
            let cell = format!("{} {}{}", row.method, row.path, row.query);
            let mut ok = true;
            if got != want {
                ok = false;
                problems.push(format!("{cell} as {}: got {got}, expected {want}: {response}", caller.label()));
            } else if got >= 400 {
                let shaped = response["code"].is_string() && response["message"].is_string();
                let code = expected_code(got);
                if !shaped || code.is_some_and(|c| response["code"] != c) {
                    ok = false;
                    let code = code.unwrap_or("...");
                    problems.push(format!(
                        "{cell} as {}: {got} without the error body {{code: {code}, message}}: {response}",
                        caller.label()
                    ));
                }
            }
            if caller.is_foreign() && (200..300).contains(&got) {
                let text = response.to_string();
                if let Some(leak) = markers.iter().find(|m| text.contains(m.as_str())) {
                    ok = false;
                    problems
                        .push(format!("{cell} as {}: the answer shows school A's `{leak}`: {text}", caller.label()));
                }
            }
            let shown = if ok { got.to_string() } else { format!("*{got}/{want}") };
            let _ = write!(table, "{shown:>10}");
        }
        table.push('\n');
    }
    println!("{table}");
    assert!(
        problems.is_empty(),
        "authorization matrix: {} problem(s); cells marked *got/expected\n\n{table}\n{}",
        problems.len(),
        problems.join("\n")
    );

    // The signed-out tokens of the logout row were fresh ones: everyone's fixture token still works.
    for caller in CALLERS.into_iter().filter(|c| *c != Caller::Anonymous) {
        world.client(caller).me().await.unwrap_or_else(|e| panic!("{} was signed out: {e}", caller.label()));
    }
}

// ---------------------------------------------------------------------------------------------------
// 7. Isolation between schools
// ---------------------------------------------------------------------------------------------------

async fn another_school_cannot_see_or_touch_anything(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.school("School A").await;
    let b = app.school("School B").await;

    // School A's things: a visit awaiting approval, a live one, an ended one, and a plan.
    let pending = a.staff.api.plan_session(&visit_with_risk(RiskLevel::Medium)).await.unwrap();
    assert_eq!(pending.approval.status, ApprovalStatus::Pending);
    let mut draft = visit_with_risk(RiskLevel::Medium);
    draft.submit_for_approval = false;
    let draft = a.staff.api.plan_session(&draft).await.unwrap();
    let live = started_visit(&a.staff.api).await;
    let ended = ended_visit(&a.staff.api).await;
    let plan = a.admin.api.create_escalation_plan(&plan_request("School A plan")).await.unwrap();
    let a_ids: Vec<Uuid> = vec![pending.id, draft.id, live, ended];
    // An open panic alert, and a push device of the worker.
    let (panicked, alert_id) = panic_alert(&a).await;
    let device = subscription_body("school-a-device");
    let (status, _) =
        a.staff.api.raw(Method::POST, "/api/v1/push/subscriptions", Some(RawBody::Json(device.clone()))).await.unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let endpoint = device["endpoint"].as_str().unwrap().to_string();
    let a_audit_before = a.dsl.api.audit(0, 1000).await.unwrap();

    for (who, outsider) in [("B leader", &b.leader), ("B admin", &b.admin), ("B DSL", &b.dsl)] {
        let api = &outsider.api;
        let expect_404 = |what: &str, result: Result<(), ClientError>| match result {
            Ok(()) => panic!("{who}: {what} succeeded on school A's session"),
            Err(e) => {
                assert_eq!(status_of(&e), Some(404), "{who}: {what}: {e}");
                assert_eq!(e.code(), Some("not_found"), "{who}: {what}");
            }
        };
        for id in &a_ids {
            expect_404("fetch", api.session(*id).await.map(drop));
            expect_404("approve", api.approve(*id).await.map(drop));
            expect_404("reject", api.reject(*id, "no").await.map(drop));
            expect_404("ask for approval", api.request_approval(*id).await.map(drop));
            let start = event(ClientEventKind::Start { location: None }, Duration::zero());
            expect_404("start", api.send_events(*id, &[start]).await.map(drop));
            let panic_event = event(ClientEventKind::Panic { location: None }, Duration::zero());
            expect_404("panic", api.send_events(*id, &[panic_event]).await.map(drop));
            let end = event(ClientEventKind::End, Duration::zero());
            expect_404("end", api.send_events(*id, &[end]).await.map(drop));
            expect_404("pings", api.send_pings(*id, &[ping_now()]).await.map(drop));
            expect_404("outcome", api.record_outcome(*id, &outcome_request()).await.map(drop));
        }
        // None of A's sessions in any list B can ask for.
        for scope in ["mine", "school", "pending_approval"] {
            match api.sessions(scope).await {
                Ok(list) => {
                    assert!(
                        list.iter().all(|s| !a_ids.contains(&s.id) && s.school_id == b.id),
                        "{who}: scope={scope} shows school A's sessions"
                    );
                }
                Err(e) => assert_eq!(status_of(&e), Some(403), "{who}: scope={scope}: {e}"),
            }
        }
        // Nor A's people.
        let users = api.users().await.unwrap_or_else(|e| panic!("{who} lists their own staff: {e}"));
        assert!(!users.is_empty());
        assert!(users.iter().all(|u| u.school_id == b.id), "{who} sees someone of another school: {users:?}");
        // Nor A's audit log (the leader may not read the log at all).
        match api.audit(0, 1000).await {
            Ok(entries) => {
                assert!(!entries.is_empty(), "{who}: B's own log has entries");
                let text = serde_json::to_string(&entries).unwrap();
                for marker in [a.id.to_string(), pending.id.to_string(), a.staff.id().to_string(), plan.id.to_string()]
                {
                    assert!(!text.contains(&marker), "{who}: B's audit log shows school A's {marker}");
                }
                assert!(api.verify_audit().await.unwrap().intact);
            }
            Err(e) => assert_eq!(status_of(&e), Some(403), "{who}: {e}"),
        }
        // Nor A's plans.
        let plans = api.escalation_plans().await.unwrap();
        assert!(plans.iter().all(|p| p.id != plan.id), "{who} sees school A's plan");
        // A's rules are not B's: reading gives B's own.
        api.approval_rules().await.expect("B reads its own rules");

        // Nor A's alerts: not listed, not readable, not acknowledged or resolved.
        let (status, alerts) = api.raw(Method::GET, "/api/v1/alerts?status=all", None).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{who}: {alerts}");
        let listed = alerts.to_string();
        assert!(
            !listed.contains(&alert_id.to_string()) && !listed.contains(&panicked.to_string()),
            "{who} sees A's alert"
        );
        let (status, body) = api.raw(Method::GET, &format!("/api/v1/alerts/{alert_id}"), None).await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND, "{who}: {body}");
        // Admins may not take ownership anywhere (403); leaders and the DSL find nothing of A's (404).
        let refused = if who == "B admin" { StatusCode::FORBIDDEN } else { StatusCode::NOT_FOUND };
        let resolution = json!({ "resolution": "false_alarm", "notes": "" });
        for (action, body) in [("acknowledge", json!({})), ("resolve", resolution)] {
            let path = format!("/api/v1/alerts/{alert_id}/{action}");
            let (status, body) = api.raw(Method::POST, &path, Some(RawBody::Json(body))).await.unwrap();
            assert_eq!(status, refused, "{who}: {action}: {body}");
        }
        // Nor A's devices.
        let unsubscribe = Some(RawBody::Json(json!({ "endpoint": endpoint })));
        let (status, body) = api.raw(Method::DELETE, "/api/v1/push/subscriptions", unsubscribe).await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND, "{who} removes A's device: {body}");
        let (_, devices) = api.raw(Method::GET, "/api/v1/push/subscriptions", None).await.unwrap();
        assert!(!devices.to_string().contains(&endpoint), "{who} sees A's device");
    }

    // B's admin cannot edit A's plan (404, as if it did not exist), nor point anything at A's people or plans.
    let err = b.admin.api.update_escalation_plan(plan.id, &plan_request("Hijacked")).await.unwrap_err();
    assert_eq!(status_of(&err), Some(404), "{err}");
    let mut default_a = a.admin.api.escalation_plans().await.unwrap();
    default_a.retain(|p| p.is_default);
    let err = b.admin.api.update_escalation_plan(default_a[0].id, &plan_request("Hijacked default")).await.unwrap_err();
    assert_eq!(status_of(&err), Some(404), "{err}");

    let mut uses_a_plan = low_risk_visit();
    uses_a_plan.escalation_plan_id = Some(plan.id);
    let err = b.staff.api.plan_session(&uses_a_plan).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_escalation_plan_id"), "{err}");
    let mut a_companion = low_risk_visit();
    a_companion.companion_id = Some(a.staff.id());
    let err = b.staff.api.plan_session(&a_companion).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_companion_id"), "{err}");
    let mut manager_in_a = new_user_request(&short_tag());
    manager_in_a.line_manager_id = Some(a.leader.id());
    let err = b.admin.api.create_user(&manager_in_a).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_line_manager_id"), "{err}");
    let mut notifies_a = plan_request("Notifies A");
    notifies_a.steps[0].recipients = vec![Recipient::User { user_id: a.dsl.id() }];
    let err = b.admin.api.create_escalation_plan(&notifies_a).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_steps"), "{err}");
    let csv = format!(
        "email,name,roles,line_manager_email,password\nb-new-{}@school.test,B New,staff,{},{PASSWORD}\n",
        short_tag(),
        a.leader.user.email
    );
    let refused = b
        .admin
        .api
        .import_staff(&csv)
        .await
        .expect("an answer")
        .expect_err("a line manager in another school is refused");
    assert_eq!(refused.rows.len(), 1, "{refused:?}");

    // School A is exactly as it was: nothing approved, started or recorded, the plan unchanged, and no
    // entry in A's log by anyone from B.
    let seen = a.leader.api.session(pending.id).await.unwrap();
    assert_eq!(seen.approval.status, ApprovalStatus::Pending);
    assert_eq!(seen.status, SessionStatus::Planned);
    assert_eq!(a.leader.api.session(draft.id).await.unwrap().approval.status, ApprovalStatus::Required);
    let live_now = a.leader.api.session(live).await.unwrap();
    assert_eq!((live_now.status, live_now.alarm), (SessionStatus::Active, None));
    assert_eq!(a.leader.api.session(ended).await.unwrap().outcome, None);
    let plans_now = a.admin.api.escalation_plans().await.unwrap();
    assert_eq!(plans_now.iter().find(|p| p.id == plan.id), Some(&plan));
    assert!(plans_now.iter().all(|p| !p.name.starts_with("Hijacked")));
    let a_audit_after = a.dsl.api.audit(0, 1000).await.unwrap();
    assert_eq!(a_audit_after, a_audit_before, "nothing was written to school A's log");
    let (_, alert) = a.leader.api.raw(Method::GET, &format!("/api/v1/alerts/{alert_id}"), None).await.unwrap();
    assert_eq!(alert["status"], "escalating", "A's alert is still open and nobody owns it: {alert}");
    assert_eq!(alert["acknowledged_by"], Value::Null);
    let (_, devices) = a.staff.api.raw(Method::GET, "/api/v1/push/subscriptions", None).await.unwrap();
    assert!(devices.to_string().contains(&endpoint), "the worker's device is still subscribed: {devices}");
    let a_users = a.admin.api.users().await.unwrap();
    assert!(a_users.iter().all(|u| u.school_id == a.id));
    assert_eq!(a_users.len(), 5);

    // A made-up id and a non-UUID are both plain 404s.
    for path in [format!("/api/v1/sessions/{}", Uuid::new_v4()), "/api/v1/sessions/not-a-uuid".to_string()] {
        let (status, body) = a.leader.api.raw(Method::GET, &path, None).await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_error_body(&body, "not_found", &path);
    }
}

// ---------------------------------------------------------------------------------------------------
// Seeing a duress alarm is for the people who respond to it, never for the phone that raised it.
// ---------------------------------------------------------------------------------------------------

async fn a_duress_alarm_is_hidden_from_the_workers_phone_whatever_their_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Duress Roles School").await;
    let mut problems = Vec::new();
    // Leaders (line managers, on-call responders), the DSL and admins also go out on visits of their own.
    for (who, worker) in
        [("staff", &school.staff), ("leader", &school.leader), ("dsl", &school.dsl), ("admin", &school.admin)]
    {
        let id = duress_end(worker).await;
        let responder = if who == "leader" { &school.dsl } else { &school.leader };
        let seen = responder.api.session(id).await.unwrap();
        assert_eq!(
            (seen.status, seen.alarm),
            (SessionStatus::Alarm, Some(AlarmKind::Duress)),
            "{who}: the responders see the alarm"
        );

        // What the worker's own phone can see.
        let from_events = worker.api.sessions("mine").await.unwrap().into_iter().find(|s| s.id == id).unwrap();
        let fetched = worker.api.session(id).await.unwrap();
        for (what, view) in [("their list of visits", &from_events), ("the visit", &fetched)] {
            if (view.status, view.alarm) != (SessionStatus::Ended, None) {
                problems
                    .push(format!("{who}: {what} shows {:?} / {:?} instead of a normal end", view.status, view.alarm));
            }
        }
        if worker.user.roles.iter().any(|r| matches!(r, Role::Leader | Role::Dsl | Role::Admin)) {
            let (status, alerts) = worker.api.raw(Method::GET, "/api/v1/alerts?status=all", None).await.unwrap();
            assert_eq!(status, StatusCode::OK);
            if alerts.to_string().contains(&id.to_string()) {
                problems.push(format!("{who}: their own alerts list shows the duress alert on their own visit"));
            }
        }
    }
    assert!(problems.is_empty(), "the duress alarm shows on the phone that raised it:\n{}", problems.join("\n"));
}

/// End a live visit of `worker` with the duress PIN.
async fn duress_end(worker: &Member) -> Uuid {
    worker.api.set_pins("2468", "1357").await.unwrap();
    let id = started_visit(&worker.api).await;
    let pin = event(ClientEventKind::EndWithPin { pin: "1357".into() }, Duration::zero());
    worker.api.send_events(id, &[pin]).await.unwrap();
    id
}

/// Like deciding on one's own visit's approval: someone under duress must not be able to stand down the
/// silent alarm from their own phone.
async fn nobody_can_close_the_alarm_on_their_own_visit(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Own Alarm School").await;
    let mut problems = Vec::new();
    for (who, worker, responder) in [("leader", &school.leader, &school.dsl), ("dsl", &school.dsl, &school.leader)] {
        let session = duress_end(worker).await;
        let (_, alerts) = responder.api.raw(Method::GET, "/api/v1/alerts?status=all", None).await.unwrap();
        let alert = alerts
            .as_array()
            .and_then(|list| list.iter().find(|a| a["session_id"] == session.to_string()))
            .unwrap_or_else(|| panic!("{who}: the duress end raised an alert: {alerts}"));
        let alert_id = alert["id"].as_str().unwrap().to_string();
        let resolution = json!({ "resolution": "worker_safe", "notes": "" });
        for (action, body) in [("acknowledge", json!({})), ("resolve", resolution)] {
            let path = format!("/api/v1/alerts/{alert_id}/{action}");
            let (status, body) = worker.api.raw(Method::POST, &path, Some(RawBody::Json(body))).await.unwrap();
            // 404, not 403: as far as the phone under duress can tell, the silent alarm does not exist.
            if status != StatusCode::NOT_FOUND {
                problems.push(format!(
                    "{who} may {action} the duress alert on their own visit: {status}, now `{}`",
                    body["status"]
                ));
            }
        }
        let (_, after) = responder.api.raw(Method::GET, &format!("/api/v1/alerts/{alert_id}"), None).await.unwrap();
        if after["status"] != "escalating" {
            problems.push(format!(
                "{who}'s duress alert is now `{}` (resolved by {})",
                after["status"], after["resolved_by"]
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

on_both_databases!(
    sign_in_with_right_and_wrong_credentials,
    five_failed_sign_ins_lock_the_account_for_fifteen_minutes,
    logout_revokes_only_that_token,
    access_tokens_expire_after_their_lifetime,
    missing_or_garbage_authorization_is_refused,
    authorization_matrix_covers_every_endpoint,
    another_school_cannot_see_or_touch_anything,
    a_duress_alarm_is_hidden_from_the_workers_phone_whatever_their_role,
    nobody_can_close_the_alarm_on_their_own_visit,
);
