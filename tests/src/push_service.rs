//! A real Web Push protocol peer (RFC 8030 push service) for the black-box tests.
//!
//! Every POST to `{url}/push/{subscription_id}` is checked the way a browser vendor's push service
//! would check it before it is answered:
//!
//! 1. VAPID (RFC 8292): `Authorization: vapid t=<JWT>, k=<key>` (or the older
//!    `Authorization: WebPush <JWT>` + `Crypto-Key: p256ecdsa=<key>`). `k` must be the configured
//!    VAPID public key, the JWT must be ES256-signed by it, `aud` must be this service's origin
//!    (`http://127.0.0.1:PORT`, port included), `exp` in the future and at most 24 h ahead, and `sub`
//!    a `mailto:` or `https:` URL. Missing or unparseable authorization answers 401, anything else
//!    wrong answers 403.
//! 2. Unknown subscription answers 404.
//! 3. RFC 8030/8291: a `TTL` header (non-negative integer), `Urgency` (if present) one of
//!    `very-low|low|normal|high`, `Topic` (if present) at most 32 base64url characters,
//!    `Content-Encoding: aes128gcm`, a body of at most 4096 bytes that decrypts with the subscription's
//!    private key and auth secret to JSON. Failures answer 400 (413 for an oversized body).
//! 4. The next scripted status for the subscription (default 201). Only a 2xx answer is recorded in
//!    [`PushService::received`]; every request, with its answer and the reason for a refusal, is
//!    recorded in [`PushService::attempts`].
//!
//! The whole service can be taken down ([`PushService::go_down`]) and brought back
//! ([`PushService::come_back`]) on the same address: down, it either refuses connections (nothing
//! listens on its port) or answers every request 503.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jwt_simple::prelude::{ECDSAP256PublicKeyLike, ES256PublicKey, NoCustomClaims, VerificationOptions};
use serde_json::Value;

/// Largest body a push service must accept (RFC 8030 section 7.2).
const MAX_BODY: usize = 4096;
/// RFC 8292 section 2: `exp` MUST NOT be more than 24 hours from the time of the request.
const MAX_EXP_AHEAD_SECS: u64 = 24 * 60 * 60;

/// An in-process push service. Cheap to clone; the HTTP server stops when the last clone is dropped.
#[derive(Clone)]
pub struct PushService {
    shared: Arc<Shared>,
    server: Arc<ServerGuard>,
}

/// How the service is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Nothing listens on the port: every connection is refused.
    Refused,
    /// It answers every request `503 Service Unavailable` (with `Retry-After: 1`), before any check.
    Unavailable,
}

/// A browser's push subscription (what `PushManager.subscribe()` hands to the application).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub endpoint: String,
    /// The subscription's P-256 public key, uncompressed point, base64url without padding.
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url without padding.
    pub auth: String,
}

impl Subscription {
    /// The JSON a browser's `PushSubscription.toJSON()` produces.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": { "p256dh": self.p256dh, "auth": self.auth },
        })
    }
}

/// A push message accepted (answered 2xx) by the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub subscription_id: String,
    /// The decrypted payload, parsed as JSON.
    pub payload: Value,
    pub urgency: Option<String>,
    pub ttl: Option<u64>,
    pub topic: Option<String>,
    pub at: DateTime<Utc>,
}

/// Any request to a push endpoint, with the status answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub subscription_id: String,
    pub status: u16,
    /// Why the request was refused (`None` when it was valid and answered with a scripted status).
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

struct Shared {
    origin: String,
    address: std::net::SocketAddr,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Answering 503 to everything.
    unavailable: bool,
    vapid_public_key: String,
    subscriptions: HashMap<String, SubscriptionKeys>,
    received: Vec<Received>,
    attempts: Vec<Attempt>,
}

struct SubscriptionKeys {
    components: ece::EcKeyComponents,
    auth: Vec<u8>,
    script: VecDeque<u16>,
}

/// The running HTTP server, if it is listening.
struct ServerGuard(Mutex<Option<ServerHandle>>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Some(handle) = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            // The stop command is sent eagerly; the returned future only waits for completion.
            drop(handle.stop(false));
        }
    }
}

fn serve(listener: TcpListener, shared: &Arc<Shared>) -> ServerHandle {
    let data = web::Data::from(shared.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 * 1024))
            .route("/push/{subscription_id}", web::post().to(push))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .expect("the push service listens")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PushService {
    /// Start on 127.0.0.1:0. `vapid_public_key` is the server's VAPID public key (base64url,
    /// uncompressed point) that every request must be signed with; pass an empty string and call
    /// [`PushService::set_vapid_public_key`] if it is only known later.
    pub async fn start(vapid_public_key: String) -> PushService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the push service binds a port");
        let address = listener.local_addr().expect("the push service has an address");
        let shared = Arc::new(Shared {
            origin: format!("http://{address}"),
            address,
            state: Mutex::new(State { vapid_public_key, ..State::default() }),
        });
        let handle = serve(listener, &shared);
        PushService { shared, server: Arc::new(ServerGuard(Mutex::new(Some(handle)))) }
    }

    /// Take the whole service down until [`PushService::come_back`].
    pub async fn go_down(&self, how: Outage) {
        match how {
            Outage::Unavailable => self.shared.lock().unavailable = true,
            Outage::Refused => {
                let handle = self.server.0.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(handle) = handle {
                    // Graceful: requests already being answered finish; then the port is closed.
                    handle.stop(true).await;
                }
            }
        }
    }

    /// Answer again, on the same address (so every subscription's endpoint still works).
    pub async fn come_back(&self) {
        self.shared.lock().unavailable = false;
        let mut server = self.server.0.lock().unwrap_or_else(|p| p.into_inner());
        if server.is_none() {
            // The port was released a moment ago; std sets SO_REUSEADDR, so it can be bound again.
            let listener = TcpListener::bind(self.shared.address).expect("the push service binds its port again");
            *server = Some(serve(listener, &self.shared));
        }
    }

    pub fn set_vapid_public_key(&self, key: String) {
        self.shared.lock().vapid_public_key = key;
    }

    /// A new browser subscription: a fresh P-256 key pair and 16-byte auth secret from `ece`.
    pub fn subscribe(&self) -> Subscription {
        let (key_pair, auth) = ece::generate_keypair_and_auth_secret().expect("ece generates a key pair");
        let components = key_pair.raw_components().expect("ece exports the key pair");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let subscription = Subscription {
            endpoint: format!("{}/push/{id}", self.shared.origin),
            p256dh: URL_SAFE_NO_PAD.encode(components.public_key()),
            auth: URL_SAFE_NO_PAD.encode(auth),
            id: id.clone(),
        };
        self.shared
            .lock()
            .subscriptions
            .insert(id, SubscriptionKeys { components, auth: auth.to_vec(), script: VecDeque::new() });
        subscription
    }

    /// Script the next answers to valid requests for this subscription, e.g. `[500, 201]`; once the
    /// script runs out every valid request is answered 201. Meant for 201, 404, 410, 429 (sent with
    /// `Retry-After: 1`) and 500, but any status 200..=599 is played back. Requests refused by the
    /// protocol checks do not consume the script.
    pub fn respond_with(&self, subscription_id: &str, statuses: &[u16]) {
        for &status in statuses {
            assert!((200..=599).contains(&status), "cannot script status {status}");
        }
        let mut state = self.shared.lock();
        let subscription = state
            .subscriptions
            .get_mut(subscription_id)
            .unwrap_or_else(|| panic!("no subscription {subscription_id} on this push service"));
        subscription.script.extend(statuses.iter().copied());
    }

    /// Everything received and accepted (2xx), in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    pub fn received_by(&self, subscription_id: &str) -> Vec<Received> {
        self.shared.lock().received.iter().filter(|r| r.subscription_id == subscription_id).cloned().collect()
    }

    /// Every request, including refused ones, with the status answered, in arrival order.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.lock().attempts.clone()
    }

    /// Wait until `pred(&received())` holds or the timeout passes; returns the final received list.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let received = self.received();
            if pred(&received) || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The base URL, which is also the origin a VAPID `aud` claim must name: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.origin.clone()
    }
}

/// A refusal: the status to answer and why.
struct Refusal(StatusCode, String);

fn refuse<T>(status: StatusCode, reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(status, reason.into()))
}

async fn push(
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let subscription_id = path.into_inner();
    let at = Utc::now();
    let down = shared.lock().unavailable;
    let outcome = if down {
        refuse(StatusCode::SERVICE_UNAVAILABLE, "the push service is down")
    } else {
        accept(&request, &subscription_id, &body, &shared, at)
    };
    let mut state = shared.lock();
    let (status, reason) = match outcome {
        Ok(message) => {
            let status = state
                .subscriptions
                .get_mut(&subscription_id)
                .and_then(|subscription| subscription.script.pop_front())
                .unwrap_or(201);
            if (200..300).contains(&status) {
                state.received.push(message);
            }
            (StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED), None)
        }
        Err(Refusal(status, reason)) => (status, Some(reason)),
    };
    state.attempts.push(Attempt {
        subscription_id: subscription_id.clone(),
        status: status.as_u16(),
        reason: reason.clone(),
        at,
    });
    drop(state);

    let mut response = HttpResponse::build(status);
    if status == StatusCode::CREATED {
        response.insert_header(("Location", format!("{}/message/{}", shared.origin, uuid::Uuid::new_v4().simple())));
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header(("Retry-After", "1"));
    }
    match reason {
        Some(reason) => response.json(serde_json::json!({
            "code": status.as_u16(),
            "errno": 999,
            "error": status.canonical_reason().unwrap_or("error"),
            "message": reason,
        })),
        None => response.finish(),
    }
}

/// Run every protocol check; on success, the message as it would be delivered.
fn accept(
    request: &HttpRequest,
    subscription_id: &str,
    body: &[u8],
    shared: &Shared,
    at: DateTime<Utc>,
) -> Result<Received, Refusal> {
    let (vapid_public_key, keys) = {
        let state = shared.lock();
        let keys = state.subscriptions.get(subscription_id).map(|s| (s.components.clone(), s.auth.clone()));
        (state.vapid_public_key.clone(), keys)
    };

    check_vapid(request, &vapid_public_key, &shared.origin)?;

    let Some((components, auth)) = keys else {
        return refuse(StatusCode::NOT_FOUND, format!("no subscription {subscription_id}"));
    };

    let ttl = match header(request, "TTL")? {
        None => return refuse(StatusCode::BAD_REQUEST, "missing TTL header"),
        Some(ttl) => match ttl.trim().parse::<u64>() {
            Ok(ttl) => ttl,
            Err(_) => {
                return refuse(StatusCode::BAD_REQUEST, format!("TTL header {ttl:?} is not a non-negative integer"));
            }
        },
    };
    let urgency = header(request, "Urgency")?;
    if let Some(urgency) = &urgency
        && !matches!(urgency.as_str(), "very-low" | "low" | "normal" | "high")
    {
        return refuse(StatusCode::BAD_REQUEST, format!("Urgency {urgency:?} is not very-low, low, normal or high"));
    }
    let topic = header(request, "Topic")?;
    if let Some(topic) = &topic
        && (topic.is_empty()
            || topic.len() > 32
            || !topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return refuse(StatusCode::BAD_REQUEST, format!("Topic {topic:?} is not 1 to 32 base64url characters"));
    }

    match header(request, "Content-Encoding")? {
        Some(encoding) if encoding.trim().eq_ignore_ascii_case("aes128gcm") => {}
        Some(encoding) => {
            return refuse(StatusCode::BAD_REQUEST, format!("Content-Encoding {encoding:?} is not aes128gcm"));
        }
        None => return refuse(StatusCode::BAD_REQUEST, "missing Content-Encoding header (aes128gcm required)"),
    }
    if body.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "empty body: the payload must be an encrypted JSON document");
    }
    if body.len() > MAX_BODY {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body of {} bytes is over the {MAX_BODY} bytes a push service must accept", body.len()),
        );
    }
    // `ece::decrypt` unwraps internally on some malformed inputs; a panic is a decryption failure too.
    let decrypted = std::panic::catch_unwind(|| ece::decrypt(&components, &auth, body));
    let plaintext = match decrypted {
        Ok(Ok(plaintext)) => plaintext,
        Ok(Err(e)) => return refuse(StatusCode::BAD_REQUEST, format!("aes128gcm decryption failed: {e}")),
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "aes128gcm decryption failed (panicked)"),
    };
    let payload = match serde_json::from_slice::<Value>(&plaintext) {
        Ok(payload) => payload,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("decrypted payload is not JSON ({e}): {:?}", String::from_utf8_lossy(&plaintext)),
            );
        }
    };
    Ok(Received { subscription_id: subscription_id.to_owned(), payload, urgency, ttl: Some(ttl), topic, at })
}

/// A header as a string; a header that is not visible ASCII is a 400.
fn header(request: &HttpRequest, name: &str) -> Result<Option<String>, Refusal> {
    match request.headers().get(name) {
        None => Ok(None),
        Some(value) => match value.to_str() {
            Ok(value) => Ok(Some(value.to_owned())),
            Err(_) => refuse(StatusCode::BAD_REQUEST, format!("{name} header is not ASCII")),
        },
    }
}

fn decode_base64url(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value.trim().trim_end_matches('=')).ok()
}

/// RFC 8292 checks of the `Authorization` (and `Crypto-Key`) headers.
fn check_vapid(request: &HttpRequest, configured_key: &str, origin: &str) -> Result<(), Refusal> {
    let Some(authorization) = header(request, "Authorization")? else {
        return refuse(StatusCode::UNAUTHORIZED, "missing Authorization header (VAPID required)");
    };
    let (token, key) = parse_authorization(&authorization, header(request, "Crypto-Key")?.as_deref())
        .map_err(|reason| Refusal(StatusCode::UNAUTHORIZED, reason))?;

    let forbidden = |reason: String| Refusal(StatusCode::FORBIDDEN, reason);
    if configured_key.is_empty() {
        return Err(forbidden("the push service has no VAPID public key configured".into()));
    }
    let Some(configured_bytes) = decode_base64url(configured_key) else {
        return Err(forbidden(format!("the configured VAPID public key {configured_key:?} is not base64url")));
    };
    match decode_base64url(&key) {
        Some(bytes) if bytes == configured_bytes => {}
        Some(_) => {
            return Err(forbidden(format!(
                "VAPID k={key} does not match the configured VAPID public key {configured_key}"
            )));
        }
        None => return Err(forbidden(format!("VAPID k={key:?} is not base64url"))),
    }
    let public_key = ES256PublicKey::from_bytes(&configured_bytes)
        .map_err(|e| forbidden(format!("the configured VAPID public key is not a P-256 point: {e}")))?;

    // Only the signature (and JWT structure) is checked by jwt-simple; the time and claim checks
    // below give precise reasons.
    let options = VerificationOptions {
        accept_future: true,
        time_tolerance: Some(jwt_simple::prelude::Duration::from_days(365)),
        ..VerificationOptions::default()
    };
    public_key
        .verify_token::<NoCustomClaims>(&token, Some(options))
        .map_err(|e| forbidden(format!("VAPID JWT does not verify with ES256 against the VAPID public key: {e}")))?;

    let claims = token
        .split('.')
        .nth(1)
        .and_then(decode_base64url)
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .ok_or_else(|| forbidden("VAPID JWT claims are not a base64url JSON object".into()))?;

    let audience_matches = match claims.get("aud") {
        Some(Value::String(aud)) => aud == origin,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(origin)),
        _ => return Err(forbidden(format!("VAPID JWT has no aud claim (expected {origin:?})"))),
    };
    if !audience_matches {
        return Err(forbidden(format!(
            "VAPID JWT aud {} is not the push resource's origin {origin:?} (the origin includes the port)",
            claims["aud"]
        )));
    }

    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let Some(exp) = claims.get("exp").and_then(Value::as_u64) else {
        return Err(forbidden("VAPID JWT has no numeric exp claim".into()));
    };
    if exp <= now {
        return Err(forbidden(format!("VAPID JWT expired: exp {exp} is not after now {now}")));
    }
    if exp - now > MAX_EXP_AHEAD_SECS {
        return Err(forbidden(format!(
            "VAPID JWT exp {exp} is {} s ahead, more than 24 h ({MAX_EXP_AHEAD_SECS} s)",
            exp - now
        )));
    }

    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if sub.starts_with("mailto:") || sub.starts_with("https:") => Ok(()),
        Some(sub) => Err(forbidden(format!("VAPID JWT sub {sub:?} is not a mailto: or https: URL"))),
        None => Err(forbidden("VAPID JWT has no sub claim".into())),
    }
}

/// `vapid t=<jwt>, k=<key>` (RFC 8292), or `WebPush <jwt>` with `Crypto-Key: p256ecdsa=<key>`
/// (draft versions of VAPID). Returns the token and the key.
fn parse_authorization(authorization: &str, crypto_key: Option<&str>) -> Result<(String, String), String> {
    let authorization = authorization.trim();
    let (scheme, rest) = authorization.split_once(char::is_whitespace).unwrap_or((authorization, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("vapid") {
        let mut token = None;
        let mut key = None;
        for param in rest.split(',') {
            let Some((name, value)) = param.trim().split_once('=') else {
                return Err(format!("malformed vapid Authorization parameter {param:?}"));
            };
            let value = value.trim().trim_matches('"').to_owned();
            match name.trim().to_ascii_lowercase().as_str() {
                "t" => token = Some(value),
                "k" => key = Some(value),
                _ => {}
            }
        }
        match (token, key) {
            (Some(token), Some(key)) => Ok((token, key)),
            (None, _) => Err(format!("vapid Authorization without t= (got {authorization:?})")),
            (_, None) => Err(format!("vapid Authorization without k= (got {authorization:?})")),
        }
    } else if scheme.eq_ignore_ascii_case("webpush") {
        if rest.is_empty() {
            return Err("WebPush Authorization without a token".into());
        }
        let key = crypto_key
            .into_iter()
            .flat_map(|value| value.split([',', ';']))
            .filter_map(|param| param.trim().split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("p256ecdsa"))
            .map(|(_, value)| value.trim().trim_matches('"').to_owned())
            .ok_or_else(|| "WebPush Authorization without Crypto-Key: p256ecdsa=<key>".to_owned())?;
        Ok((rest.to_owned(), key))
    } else {
        Err(format!("Authorization scheme {scheme:?} is not vapid (RFC 8292)"))
    }
}
