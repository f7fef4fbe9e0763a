//! The server is not a proxy into the school's network: a push subscription's endpoint must be an https
//! URL on a public address (checked after resolving the name, and again on every send), redirects are
//! not followed, no more than a small part of an answer is read, and what a push service said is never
//! shown to the person who subscribed. Loopback push peers are reached only because the tests list
//! `127.0.0.1` in `push_allow_hosts`; the tests that need the rule itself clear that list.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, Instant};

use homeward_shared::api::{ClientEventKind, EscalationPlanRequest, PushSubscriptionKeys, PushSubscriptionRequest};
use homeward_shared::{EscalationStep, Recipient};
use homeward_tests::push_service::PushService;
use homeward_tests::{Backend, Member, TestApp, low_risk_visit, on_both_databases, spawn_app, spawn_app_shifted};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

/// What a push service might answer that must never reach a user.
const SECRET: &str = "ami-secret-AKIAIOSFODNN7EXAMPLE-internal-only";

/// A 50 MB answer.
const HUGE: u64 = 50 * 1024 * 1024;

/// A subscription request with keys that make a valid Web Push message (from the tests' push peer).
fn subscription_to(endpoint: &str) -> PushSubscriptionRequest {
    let keys = keys();
    PushSubscriptionRequest { endpoint: endpoint.into(), keys }
}

fn keys() -> PushSubscriptionKeys {
    let (key_pair, auth) = ece::generate_keypair_and_auth_secret().expect("ece generates a key pair");
    let components = key_pair.raw_components().expect("ece exports the key pair");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    PushSubscriptionKeys { p256dh: b64.encode(components.public_key()), auth: b64.encode(auth) }
}

/// Subscribing `endpoint` is refused with a 422 that names the field `endpoint`.
async fn assert_refused(member: &Member, endpoint: &str) {
    match member.api.subscribe_push(&subscription_to(endpoint)).await {
        Ok(view) => panic!("{endpoint} was accepted: {view:?}"),
        Err(e) => {
            assert_eq!(e.status().map(|s| s.as_u16()), Some(422), "{endpoint}: {e}");
            assert_eq!(e.code(), Some("invalid_endpoint"), "{endpoint}: {e}");
        }
    }
}

/// A name other than `localhost` that resolves here only to loopback addresses (from /etc/hosts: the
/// machine's own name, usually), if there is one.
async fn a_name_resolving_to_loopback() -> Option<String> {
    let mut candidates: Vec<String> =
        std::fs::read_to_string("/etc/hostname").into_iter().map(|h| h.trim().into()).collect();
    candidates.extend(["vm", "runsc", "ip6-localhost", "ip6-loopback"].map(String::from));
    for name in candidates {
        if name.is_empty() || name.eq_ignore_ascii_case("localhost") || name.contains(':') {
            continue;
        }
        let addresses: Vec<_> = match tokio::net::lookup_host((name.as_str(), 443)).await {
            Ok(addresses) => addresses.collect(),
            Err(_) => continue,
        };
        if !addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback()) {
            return Some(name);
        }
    }
    None
}

/// How a peer answers every request.
#[derive(Clone)]
enum Answer {
    /// A complete answer: status, extra headers, body.
    Whole(u16, Vec<(String, String)>, String),
    /// `status` with a body of `length` bytes, written for as long as the other side reads.
    Endless(u16, u64),
}

/// A loopback HTTP peer that answers every request the same way and counts connections and the bytes of
/// answer it managed to write.
struct Peer {
    url: String,
    port: u16,
    connections: Arc<AtomicUsize>,
    written: Arc<AtomicU64>,
    answered: Arc<AtomicUsize>,
}

async fn peer(answer: Answer) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("the peer binds");
    let port = listener.local_addr().expect("an address").port();
    let (connections, written, answered) = (Arc::default(), Arc::default(), Arc::default());
    let peer = Peer {
        url: format!("http://127.0.0.1:{port}"),
        port,
        connections: Arc::clone(&connections),
        written: Arc::clone(&written),
        answered: Arc::clone(&answered),
    };
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            connections.fetch_add(1, Ordering::SeqCst);
            let (answer, written, answered) = (answer.clone(), Arc::clone(&written), Arc::clone(&answered));
            tokio::spawn(async move {
                serve(socket, answer, &written).await;
                answered.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    peer
}

/// Read one request (headers and a `Content-Length` body), then answer it and close.
async fn serve(mut socket: TcpStream, answer: Answer, written: &AtomicU64) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match tokio::time::timeout(StdDuration::from_secs(5), socket.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buffer[..n]),
            // Not HTTP (a TLS hello, say), or nothing at all: counted as a connection, not answered.
            _ => return,
        }
        if request.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while request.len() < head_end + length {
        match socket.read(&mut buffer).await {
            Ok(n) if n > 0 => request.extend_from_slice(&buffer[..n]),
            _ => return,
        }
    }
    match answer {
        Answer::Whole(status, headers, body) => {
            let mut out =
                format!("HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
            for (name, value) in headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str("Content-Type: text/plain\r\n\r\n");
            out.push_str(&body);
            if socket.write_all(out.as_bytes()).await.is_ok() {
                written.fetch_add(body.len() as u64, Ordering::SeqCst);
            }
        }
        Answer::Endless(status, length) => {
            let head = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Length: {length}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
            );
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = SECRET.repeat(64 * 1024 / SECRET.len() + 1).into_bytes();
            let mut sent = 0u64;
            while sent < length {
                let n = chunk.len().min((length - sent) as usize);
                // A reader that stopped reading, and never closes, would block this forever.
                match tokio::time::timeout(StdDuration::from_secs(20), socket.write_all(&chunk[..n])).await {
                    Ok(Ok(())) => {
                        sent += n as u64;
                        written.store(sent, Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
        }
    }
}

async fn wait_until(what: &str, timeout: StdDuration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// Internal addresses, plain http and names that are loopback by definition are refused when
/// subscribing, with a 422 naming `endpoint`, once the tests' allow-list is gone; a public https
/// address is accepted.
async fn internal_endpoints_are_refused_when_subscribing(backend: Backend) {
    let app = spawn_app_shifted(backend, |s| s.push_allow_hosts.clear()).await;
    let school = app.school("Guarded School").await;
    let staff = &school.staff;
    for endpoint in [
        "https://127.0.0.1/push/a",
        "https://127.0.0.1:8443/push/a",
        "https://2130706433/push/a",
        "https://10.1.2.3/",
        "https://172.16.5.4/push",
        "https://192.168.1.1/push",
        "https://100.64.0.1/push",
        "https://169.254.169.254/latest/meta-data",
        "https://0.0.0.0/push",
        "https://224.0.0.1/push",
        "https://255.255.255.255/push",
        "https://192.0.2.7/push",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/push",
        "https://[::ffff:a9fe:a9fe]/latest/meta-data",
        "https://[fe80::1]/push",
        "https://[fd00::1]/push",
        "https://[::]/push",
        "http://push.example.com/send/abc",
        "http://8.8.8.8/push",
        "https://localhost/push",
        "https://localhost:9/push",
        "https://something.localhost/push",
        "ftp://push.example.com/x",
    ] {
        assert_refused(staff, endpoint).await;
    }
    // The rule is the same without the tests' allow-list for loopback.
    let push = PushService::start(String::new()).await;
    assert_refused(staff, &push.subscribe().endpoint).await;
    // A public https address is fine (nothing is sent by subscribing).
    staff.api.subscribe_push(&subscription_to("https://8.8.8.8/push/abc")).await.expect("a public address");
    assert_eq!(staff.api.push_subscriptions().await.expect("devices").len(), 1, "only the public one was kept");
}

/// A name is checked by what it resolves to: `*.localhost`, and a name that resolves to loopback
/// through the system's resolver (the machine's own name in /etc/hosts), are refused although the
/// allow-list has `127.0.0.1` and `localhost`.
async fn a_name_resolving_to_loopback_is_refused_when_subscribing(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Resolving School").await;
    assert_refused(&school.staff, "https://push.localhost/send/a").await;
    match a_name_resolving_to_loopback().await {
        Some(name) => {
            assert_refused(&school.staff, &format!("https://{name}/send/a")).await;
            assert_refused(&school.staff, &format!("https://{name}:8443/send/a")).await;
        }
        None => eprintln!("no name here resolves to loopback other than localhost; checked *.localhost only"),
    }
    // Allowed hosts still work: the tests' push peers.
    let push = app.push_service().await;
    app.subscribe(&school.staff, &push).await;
}

/// A stored endpoint is checked again on every send: a literal loopback address (a row from before the
/// rule) is never connected to, nor is a name that resolves to loopback now (the push client's resolver
/// drops non-public addresses). The test report says "address not allowed" and nothing else.
async fn a_stored_endpoint_is_checked_again_when_sending(backend: Backend) {
    let app = spawn_app_shifted(backend, |s| s.push_allow_hosts.clear()).await;
    let school = app.school("Stored School").await;
    let target = peer(Answer::Whole(201, Vec::new(), String::new())).await;
    let mut endpoints = vec![format!("https://127.0.0.1:{}/push/literal", target.port)];
    if let Some(name) = a_name_resolving_to_loopback().await {
        endpoints.push(format!("https://{name}:{}/push/named", target.port));
    }
    for endpoint in &endpoints {
        insert_subscription(&app, &school.staff, endpoint).await;
    }
    let report = school.staff.api.test_push().await.expect("a test push");
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert_eq!(target.connections.load(Ordering::SeqCst), 0, "the loopback listener was contacted: {report:?}");
    assert_eq!(report.devices.len(), endpoints.len(), "{report:?}");
    for device in &report.devices {
        assert!(!device.delivered, "{device:?}");
        assert!(device.detail.starts_with("address not allowed"), "{device:?}");
    }
}

/// A subscription written straight into the database, as a row from before the rule would be.
async fn insert_subscription(app: &TestApp, member: &Member, endpoint: &str) {
    let keys = keys();
    sqlx::query(
        "insert into push_subscriptions (subscription_id, user_id, school_id, endpoint, p256dh, auth, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(member.id().to_string())
    .bind(member.user.school_id.to_string())
    .bind(endpoint)
    .bind(keys.p256dh)
    .bind(keys.auth)
    .bind(app.now().timestamp_millis())
    .execute(&app.state.db.writer)
    .await
    .expect("insert the subscription");
}

/// A push service answering 301, 302, 307 or 308 to another loopback listener: the redirect is not
/// followed (the second listener is never contacted) and the report says so, with the status.
async fn a_redirect_is_not_followed(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Redirect School").await;
    let inside = peer(Answer::Whole(201, Vec::new(), String::new())).await;
    for status in [301, 302, 307, 308] {
        let location = format!("{}/latest/meta-data/{status}", inside.url);
        let redirecting = peer(Answer::Whole(status, vec![("Location".into(), location)], String::new())).await;
        let endpoint = format!("{}/push/{status}", redirecting.url);
        school.leader.api.subscribe_push(&subscription_to(&endpoint)).await.expect("an allowed host");
        let report = school.leader.api.test_push().await.expect("a test push");
        assert_eq!(inside.connections.load(Ordering::SeqCst), 0, "the redirect was followed: {report:?}");
        let device = report.devices.iter().find(|d| d.endpoint == endpoint).expect("the device");
        assert!(!device.delivered, "{device:?}");
        assert!(device.detail.contains("redirect") && device.detail.contains(&status.to_string()), "{device:?}");
        assert_eq!(redirecting.connections.load(Ordering::SeqCst), 1, "the push service was asked once");
    }
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert_eq!(inside.connections.load(Ordering::SeqCst), 0, "the redirect's target was never contacted");
}

/// A push service that answers a refusal with 50 MB: the server reads a little of it and drops the
/// connection, so the peer cannot write much more than the sockets' buffers hold; the test push
/// returns promptly and shows none of the answer.
async fn a_huge_answer_is_cut(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Huge School").await;
    let huge = peer(Answer::Endless(400, HUGE)).await;
    let endpoint = format!("{}/push/huge", huge.url);
    school.leader.api.subscribe_push(&subscription_to(&endpoint)).await.expect("an allowed host");
    let started = Instant::now();
    let report = school.leader.api.test_push().await.expect("a test push");
    let took = started.elapsed();
    wait_until("the peer to stop writing", StdDuration::from_secs(30), || huge.answered.load(Ordering::SeqCst) == 1)
        .await;
    // What the sockets' buffers hold (a few MB on loopback) is written whatever the reader does.
    let written = huge.written.load(Ordering::SeqCst);
    assert!(written < 16 * 1024 * 1024, "the peer wrote {written} of {HUGE} bytes before the server hung up");
    assert!(took < StdDuration::from_secs(8), "the test push took {took:?}");
    let device = &report.devices[0];
    assert!(!device.delivered && device.detail.contains("400"), "{device:?}");
    assert!(!device.detail.contains("secret"), "{device:?}");
}

/// A push service that refuses with a secret-looking text: neither the test push report nor the alert's
/// deliveries (views, history, summary) contain it; the HTTP status is kept.
async fn the_push_services_answer_is_never_shown(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Quiet School").await;
    let refusing = peer(Answer::Whole(403, Vec::new(), format!("{{\"error\": \"{SECRET}\"}}"))).await;
    for (n, member) in [&school.staff, &school.leader, &school.dsl].into_iter().enumerate() {
        let endpoint = format!("{}/push/{n}", refusing.url);
        member.api.subscribe_push(&subscription_to(&endpoint)).await.expect("an allowed host");
    }
    let report = school.leader.api.test_push().await.expect("a test push");
    let device = &report.devices[0];
    assert!(!device.delivered && device.detail.contains("403"), "{device:?}");
    let json = serde_json::to_string(&report).expect("json");
    assert!(!json.contains("secret") && !json.contains("AKIA"), "{json}");

    // An alert whose pushes are all refused.
    let plan = school
        .admin
        .api
        .create_escalation_plan(&EscalationPlanRequest {
            name: "At once".into(),
            steps: vec![EscalationStep {
                delay_seconds: 0,
                recipients: vec![Recipient::Worker, Recipient::LineManager],
                channels: vec![],
                instruction: "Phone the worker now.".into(),
            }],
            repeat_every_seconds: None,
            is_default: false,
        })
        .await
        .expect("create the plan");
    let mut visit = low_risk_visit();
    visit.escalation_plan_id = Some(plan.id);
    let session = app.start_visit(&school.staff.api, visit).await;
    let panic = app.event_now(ClientEventKind::Panic { location: None });
    school.staff.api.send_events(session, &[panic]).await.expect("panic");
    let alert = school.leader.api.alerts("open").await.expect("alerts").first().expect("an alert").id;
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let alert = loop {
        let view = school.leader.api.alert(alert).await.expect("the alert");
        let refused = view
            .deliveries
            .iter()
            .filter(|d| d.channel == "push" && d.status == "failed" && d.last_status_code == Some(403))
            .filter(|d| d.history.iter().any(|h| h.status_code == Some(403)))
            .count();
        if refused >= 1 {
            break view;
        }
        assert!(Instant::now() < deadline, "the pushes were not refused in time: {view:#?}");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    // The status is kept, with the kind of failure.
    let refused = alert.deliveries.iter().find(|d| d.last_status_code == Some(403)).expect("a refused delivery");
    assert!(refused.last_error.as_deref().is_some_and(|e| e.contains("refused") && e.contains("403")), "{refused:?}");
    let json = serde_json::to_string(&alert).expect("json");
    assert!(!json.contains("secret") && !json.contains("AKIA"), "{json}");
}

on_both_databases!(
    internal_endpoints_are_refused_when_subscribing,
    a_name_resolving_to_loopback_is_refused_when_subscribing,
    a_stored_endpoint_is_checked_again_when_sending,
    a_redirect_is_not_followed,
    a_huge_answer_is_cut,
    the_push_services_answer_is_never_shown,
);
