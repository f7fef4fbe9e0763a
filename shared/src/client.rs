//! A typed client for the Homeward API, on `reqwest`. Used by the phone and by the black-box tests; it
//! decodes the server's error body with the same [`ErrorBody`] type the server writes.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ErrorBody;
use crate::api::*;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{status}: {body}")]
    Api { status: StatusCode, body: ErrorBody },
    /// The server could not be reached, or the answer could not be read.
    #[error("could not reach the server: {0}")]
    Transport(#[from] reqwest::Error),
}

impl ClientError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Transport(e) => e.status(),
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => Some(&body.code),
            ClientError::Transport(_) => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// How long an idle connection is kept for the next request: well inside the server's
/// [`crate::api::SERVER_KEEP_ALIVE_SECS`], so a request is never written into a connection the server is
/// closing at that moment (which fails at the connection, with nothing to say whether it arrived).
pub const IDLE_CONNECTION_SECS: u64 = crate::api::SERVER_KEEP_ALIVE_SECS / 2;
const _: () = assert!(IDLE_CONNECTION_SECS < crate::api::SERVER_KEEP_ALIVE_SECS);

fn http_client() -> reqwest::Client {
    #[cfg(not(target_arch = "wasm32"))]
    {
        reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(IDLE_CONNECTION_SECS))
            .build()
            .unwrap_or_default()
    }
    // The browser keeps the connections.
    #[cfg(target_arch = "wasm32")]
    reqwest::Client::new()
}

/// A device sign-in as the client holds it; the phone saves it so it stays signed in across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignIn {
    /// (`token` and `expires_at` as saved before device sign-ins.)
    #[serde(alias = "token")]
    pub access_token: String,
    #[serde(alias = "expires_at")]
    pub access_expires_at: DateTime<Utc>,
    /// When to renew ahead of expiry, by this device's clock (a 401 renews too, whatever the clocks say).
    #[serde(default)]
    pub renew_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub device_id: Option<Uuid>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// The refresh token this device proposed in a renewal whose answer has not arrived: it is proposed
    /// again, so a lost answer never costs the sign-in.
    #[serde(default)]
    pub pending_refresh_token: Option<String>,
}

impl SignIn {
    /// A bare access token, with no way to renew it.
    pub fn token_only(access_token: impl Into<String>) -> Self {
        Self {
            access_token: access_token.into(),
            access_expires_at: DateTime::<Utc>::MAX_UTC,
            renew_at: None,
            device_id: None,
            refresh_token: None,
            refresh_expires_at: None,
            pending_refresh_token: None,
        }
    }

    /// The sign-in a login or a renewal answered with, received `now`.
    pub fn from_response(response: &LoginResponse, now: DateTime<Utc>) -> Self {
        Self {
            access_token: response.token.clone(),
            access_expires_at: response.expires_at,
            renew_at: Some(renew_at(now, response.expires_at)),
            device_id: Some(response.device_id),
            refresh_token: Some(response.refresh_token.clone()),
            refresh_expires_at: Some(response.refresh_expires_at),
            pending_refresh_token: None,
        }
    }

    fn can_renew(&self) -> bool {
        self.refresh_token.is_some()
    }
}

/// Renew once three quarters of the token's life (as this device measures it) have passed.
fn renew_at(now: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
    let life = (expires_at - now).clamp(chrono::Duration::zero(), chrono::Duration::days(1));
    now + life * 3 / 4
}

/// A new refresh token made on this device: two random (version 4) UUIDs, 244 random bits.
fn new_refresh_token() -> String {
    format!("hw1.{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// Told of every change to the sign-in (a renewal, a renewal under way), so the device can save it.
pub type OnSignInChange = Arc<dyn Fn(Option<&SignIn>) + Send + Sync>;

/// The sign-in shared by every clone of one client, so a renewal made for one request serves all.
#[derive(Default)]
struct Credentials {
    sign_in: Mutex<Option<SignIn>>,
    /// One renewal at a time: two at once would present the same refresh token twice, which the
    /// server takes for a copied credential.
    renewing: futures::lock::Mutex<()>,
    on_change: Mutex<Option<OnSignInChange>>,
}

impl Credentials {
    fn with(sign_in: Option<SignIn>) -> Arc<Self> {
        Arc::new(Self { sign_in: Mutex::new(sign_in), ..Default::default() })
    }

    fn current(&self) -> Option<SignIn> {
        self.sign_in.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, sign_in: Option<SignIn>) {
        *self.sign_in.lock().unwrap_or_else(|e| e.into_inner()) = sign_in.clone();
        let callback = self.on_change.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(callback) = callback {
            callback(sign_in.as_ref());
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("signed_in", &self.current().is_some()).finish()
    }
}

#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    credentials: Arc<Credentials>,
}

impl ApiClient {
    /// `base` is the server's root, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_string(),
            http: http_client(),
            credentials: Credentials::with(None),
        }
    }

    /// This client with a bare access token (no renewal), sharing nothing with `self`'s sign-in.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        self.with_sign_in(SignIn::token_only(token))
    }

    /// This client with a device sign-in of its own, renewed as needed.
    pub fn with_sign_in(&self, sign_in: SignIn) -> Self {
        Self { credentials: Credentials::with(Some(sign_in)), ..self.clone() }
    }

    /// The same sign-in (renewals shared) sent to another server of the same deployment.
    pub fn at(&self, base: impl Into<String>) -> Self {
        Self { base: base.into().trim_end_matches('/').to_string(), ..self.clone() }
    }

    /// Be told whenever the sign-in changes (to save it on the device).
    pub fn on_sign_in_change(&self, callback: OnSignInChange) {
        *self.credentials.on_change.lock().unwrap_or_else(|e| e.into_inner()) = Some(callback);
    }

    /// The access token sent now.
    pub fn token(&self) -> Option<String> {
        self.credentials.current().map(|s| s.access_token)
    }

    pub fn sign_in(&self) -> Option<SignIn> {
        self.credentials.current()
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path))
    }

    /// The access token to send now, renewed first when it is due (for requests made outside this
    /// client, such as the web's `fetch` of the board stream). Renewal is best effort here: a 401 from
    /// the request is answered by [`ApiClient::renew`].
    pub async fn fresh_token(&self) -> Option<String> {
        let due = self
            .credentials
            .current()
            .filter(|s| s.can_renew() && s.renew_at.is_none_or(|at| Utc::now() >= at))
            .map(|s| s.access_token);
        if let Some(stale) = due {
            let _ = self.renew(&stale).await;
        }
        self.token()
    }

    /// Whether a refused token can be renewed (the device sign-in has not ended).
    pub fn can_renew(&self) -> bool {
        self.credentials.current().is_some_and(|s| s.can_renew())
    }

    /// Send with the current access token: renewed first when it is due, and once more after a 401
    /// (then the request is sent again), so a live visit's events never wait for a sign-in while the
    /// device's sign-in holds.
    async fn execute(&self, builder: reqwest::RequestBuilder) -> ClientResult<reqwest::Response> {
        let again = builder.try_clone();
        let sent = self.fresh_token().await;
        let response = authorised(builder, sent.as_deref()).send().await?;
        match (response.status(), again, sent) {
            (StatusCode::UNAUTHORIZED, Some(again), Some(sent)) if self.can_renew() => {
                self.renew(&sent).await?;
                let token = self.credentials.current().map(|s| s.access_token);
                Ok(authorised(again, token.as_deref()).send().await?)
            }
            _ => Ok(response),
        }
    }

    /// Renew the device sign-in, unless another request already replaced `stale`.
    pub async fn renew(&self, stale: &str) -> ClientResult<()> {
        let _one_at_a_time = self.credentials.renewing.lock().await;
        let Some(mut sign_in) = self.credentials.current() else { return Ok(()) };
        if sign_in.access_token != stale {
            return Ok(());
        }
        let Some(refresh_token) = sign_in.refresh_token.clone() else { return Ok(()) };
        let next = sign_in.pending_refresh_token.clone().unwrap_or_else(new_refresh_token);
        if sign_in.pending_refresh_token.is_none() {
            // Saved before it is sent: if the answer is lost, the same renewal is asked for again.
            sign_in.pending_refresh_token = Some(next.clone());
            self.credentials.set(Some(sign_in.clone()));
        }
        let body = RefreshRequest { refresh_token, next_refresh_token: next.clone() };
        let response = self.request(Method::POST, "/api/v1/auth/refresh").json(&body).send().await?;
        let status = response.status();
        if status.is_success() {
            let renewed: LoginResponse = response.json().await?;
            // The server keeps only the hash of the token this device proposed: that is the one to hold.
            let renewed = SignIn { refresh_token: Some(next), ..SignIn::from_response(&renewed, Utc::now()) };
            self.credentials.set(Some(renewed));
            return Ok(());
        }
        let error = error_from(status, response).await;
        if status == StatusCode::UNAUTHORIZED {
            // The device's sign-in is over: only a new sign-in helps now.
            sign_in.refresh_token = None;
            sign_in.pending_refresh_token = None;
            self.credentials.set(Some(sign_in));
        }
        Err(error)
    }

    async fn send<T: DeserializeOwned>(&self, builder: reqwest::RequestBuilder) -> ClientResult<T> {
        let response = self.execute(builder).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        Err(error_from(status, response).await)
    }

    async fn send_empty(&self, builder: reqwest::RequestBuilder) -> ClientResult<()> {
        let response = self.execute(builder).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(error_from(status, response).await)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        self.send(self.request(Method::GET, path)).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> ClientResult<T> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> ClientResult<T> {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    /// Sign in; the returned client carries the device sign-in and renews it as needed.
    pub async fn login(&self, email: &str, password: &str) -> ClientResult<(ApiClient, LoginResponse)> {
        let body = LoginRequest { email: email.into(), password: password.into() };
        let response = self.request(Method::POST, "/api/v1/auth/login").json(&body).send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(error_from(status, response).await);
        }
        let response: LoginResponse = response.json().await?;
        Ok((self.with_sign_in(SignIn::from_response(&response, Utc::now())), response))
    }

    /// Sign out every device of mine.
    pub async fn logout_everywhere(&self) -> ClientResult<()> {
        self.send_empty(self.request(Method::POST, "/api/v1/auth/logout-everywhere")).await
    }

    pub async fn devices(&self) -> ClientResult<Vec<DeviceView>> {
        self.get("/api/v1/me/devices").await
    }

    pub async fn sign_out_device(&self, id: Uuid) -> ClientResult<()> {
        self.send_empty(self.request(Method::DELETE, &format!("/api/v1/me/devices/{id}"))).await
    }

    pub async fn logout(&self) -> ClientResult<()> {
        self.send_empty(self.request(Method::POST, "/api/v1/auth/logout")).await
    }

    pub async fn me(&self) -> ClientResult<UserView> {
        self.get("/api/v1/me").await
    }

    pub async fn set_pins(&self, safe_pin: &str, duress_pin: &str) -> ClientResult<()> {
        let body = SetPinsRequest { safe_pin: safe_pin.into(), duress_pin: duress_pin.into() };
        self.send_empty(self.request(Method::PUT, "/api/v1/me/pins").json(&body)).await
    }

    pub async fn users(&self) -> ClientResult<Vec<UserView>> {
        self.get("/api/v1/users").await
    }

    pub async fn create_user(&self, body: &CreateUserRequest) -> ClientResult<UserView> {
        self.post("/api/v1/users", body).await
    }

    /// Import staff from CSV text. A refused import comes back as `Err(Ok(ImportErrors))`.
    pub async fn import_staff(&self, csv: &str) -> ClientResult<Result<ImportReport, ImportErrors>> {
        let response = self
            .execute(
                self.request(Method::POST, "/api/v1/users/import")
                    .header("content-type", "text/csv")
                    .body(csv.to_string()),
            )
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(Ok(response.json().await?));
        }
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            return Ok(Err(response.json().await?));
        }
        Err(error_from(status, response).await)
    }

    pub async fn approval_rules(&self) -> ClientResult<ApprovalRules> {
        self.get("/api/v1/school/rules").await
    }

    pub async fn set_approval_rules(&self, rules: &ApprovalRules) -> ClientResult<ApprovalRules> {
        self.put("/api/v1/school/rules", rules).await
    }

    /// `scope`: `mine`, `school` or `pending_approval`.
    pub async fn sessions(&self, scope: &str) -> ClientResult<Vec<SessionView>> {
        self.get(&format!("/api/v1/sessions?scope={scope}")).await
    }

    pub async fn plan_session(&self, body: &PlanSessionRequest) -> ClientResult<SessionView> {
        self.post("/api/v1/sessions", body).await
    }

    pub async fn session(&self, id: Uuid) -> ClientResult<SessionView> {
        self.get(&format!("/api/v1/sessions/{id}")).await
    }

    pub async fn request_approval(&self, id: Uuid) -> ClientResult<SessionView> {
        self.post(&format!("/api/v1/sessions/{id}/approval/request"), &serde_json::json!({})).await
    }

    pub async fn approve(&self, id: Uuid) -> ClientResult<SessionView> {
        self.post(&format!("/api/v1/sessions/{id}/approval/approve"), &serde_json::json!({})).await
    }

    pub async fn reject(&self, id: Uuid, reason: &str) -> ClientResult<SessionView> {
        self.post(&format!("/api/v1/sessions/{id}/approval/reject"), &RejectRequest { reason: reason.into() }).await
    }

    pub async fn send_events(&self, id: Uuid, events: &[ClientEvent]) -> ClientResult<EventBatchResponse> {
        self.post(&format!("/api/v1/sessions/{id}/events"), &EventBatch { events: events.to_vec() }).await
    }

    pub async fn send_pings(&self, id: Uuid, pings: &[LocationPing]) -> ClientResult<PingBatchResponse> {
        self.post(&format!("/api/v1/sessions/{id}/pings"), &PingBatch { pings: pings.to_vec() }).await
    }

    pub async fn record_outcome(&self, id: Uuid, body: &OutcomeRequest) -> ClientResult<SessionView> {
        self.post(&format!("/api/v1/sessions/{id}/outcome"), body).await
    }

    pub async fn escalation_plans(&self) -> ClientResult<Vec<EscalationPlanView>> {
        self.get("/api/v1/escalation-plans").await
    }

    pub async fn create_escalation_plan(&self, body: &EscalationPlanRequest) -> ClientResult<EscalationPlanView> {
        self.post("/api/v1/escalation-plans", body).await
    }

    pub async fn update_escalation_plan(
        &self,
        id: Uuid,
        body: &EscalationPlanRequest,
    ) -> ClientResult<EscalationPlanView> {
        self.put(&format!("/api/v1/escalation-plans/{id}"), body).await
    }

    pub async fn audit(&self, after_seq: i64, limit: i64) -> ClientResult<Vec<AuditEntry>> {
        self.get(&format!("/api/v1/audit?after_seq={after_seq}&limit={limit}")).await
    }

    pub async fn verify_audit(&self) -> ClientResult<AuditChainReport> {
        self.get("/api/v1/audit/verify").await
    }

    pub async fn vapid_public_key(&self) -> ClientResult<VapidPublicKey> {
        self.get("/api/v1/push/vapid-public-key").await
    }

    pub async fn subscribe_push(&self, body: &PushSubscriptionRequest) -> ClientResult<PushSubscriptionView> {
        self.post("/api/v1/push/subscriptions", body).await
    }

    pub async fn push_subscriptions(&self) -> ClientResult<Vec<PushSubscriptionView>> {
        self.get("/api/v1/push/subscriptions").await
    }

    pub async fn unsubscribe_push(&self, endpoint: &str) -> ClientResult<()> {
        let body = UnsubscribeRequest { endpoint: endpoint.into() };
        self.send_empty(self.request(Method::DELETE, "/api/v1/push/subscriptions").json(&body)).await
    }

    /// Send a test notification to all my devices now.
    pub async fn test_push(&self) -> ClientResult<TestPushReport> {
        self.post("/api/v1/push/test", &serde_json::json!({})).await
    }

    /// Send a test message on one channel to me now.
    pub async fn test_message(&self, channel: crate::escalation::Channel) -> ClientResult<TestMessageReport> {
        self.post("/api/v1/me/test-message", &TestMessageRequest { channel }).await
    }

    /// Set or clear a user's mobile number (admins, or the person themself).
    pub async fn set_phone(&self, user_id: Uuid, phone: Option<&str>) -> ClientResult<UserView> {
        self.put(&format!("/api/v1/users/{user_id}/phone"), &SetPhoneRequest { phone: phone.map(String::from) }).await
    }

    pub async fn on_call_rota(&self) -> ClientResult<crate::OnCallRota> {
        self.get("/api/v1/school/on-call-rota").await
    }

    pub async fn set_on_call_rota(&self, rota: &crate::OnCallRota) -> ClientResult<crate::OnCallRota> {
        self.put("/api/v1/school/on-call-rota", rota).await
    }

    /// Will the visit's plan reach someone at every step? For the start screen.
    pub async fn safety_net(&self, session_id: Uuid) -> ClientResult<SafetyNetReport> {
        self.get(&format!("/api/v1/sessions/{session_id}/safety-net")).await
    }

    /// Can each leader be reached, and how?
    pub async fn reachability(&self) -> ClientResult<ReachabilityReport> {
        self.get("/api/v1/school/reachability").await
    }

    /// `status`: `open` or `all`.
    pub async fn alerts(&self, status: &str) -> ClientResult<Vec<AlertView>> {
        self.get(&format!("/api/v1/alerts?status={status}")).await
    }

    pub async fn alert(&self, id: Uuid) -> ClientResult<AlertView> {
        self.get(&format!("/api/v1/alerts/{id}")).await
    }

    pub async fn acknowledge_alert(&self, id: Uuid) -> ClientResult<AlertView> {
        self.post(&format!("/api/v1/alerts/{id}/acknowledge"), &serde_json::json!({})).await
    }

    pub async fn resolve_alert(&self, id: Uuid, body: &ResolveAlertRequest) -> ClientResult<AlertView> {
        self.post(&format!("/api/v1/alerts/{id}/resolve"), body).await
    }

    pub async fn board(&self) -> ClientResult<BoardView> {
        self.get("/api/v1/board").await
    }

    /// Open the live board's event stream (`text/event-stream`); read it with [`BoardEvents::next`].
    /// Not on wasm32, whose `reqwest` cannot read a body as it arrives: the web client reads the stream
    /// through `fetch` itself.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn board_events(&self) -> ClientResult<BoardEvents> {
        let response = self
            .execute(self.request(Method::GET, "/api/v1/board/events").header("accept", "text/event-stream"))
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(error_from(status, response).await);
        }
        Ok(BoardEvents { response, buffer: Vec::new() })
    }

    pub async fn message_worker(&self, alert_id: Uuid, text: &str) -> ClientResult<AlertView> {
        self.post(&format!("/api/v1/alerts/{alert_id}/messages"), &SendMessageRequest { text: text.into() }).await
    }

    pub async fn session_messages(&self, session_id: Uuid) -> ClientResult<Vec<AlertMessage>> {
        self.get(&format!("/api/v1/sessions/{session_id}/messages")).await
    }

    pub async fn answer_message(&self, session_id: Uuid, text: &str) -> ClientResult<AlertMessage> {
        self.post(&format!("/api/v1/sessions/{session_id}/messages"), &SendMessageRequest { text: text.into() }).await
    }

    /// `status`: `pending`, `done` or `all`.
    pub async fn reviews(&self, status: &str) -> ClientResult<Vec<ReviewItem>> {
        self.get(&format!("/api/v1/reviews?status={status}")).await
    }

    pub async fn mark_reviewed(&self, subject_id: Uuid, action_taken: &str) -> ClientResult<ReviewItem> {
        self.post(&format!("/api/v1/reviews/{subject_id}"), &MarkReviewedRequest { action_taken: action_taken.into() })
            .await
    }

    /// `month`: `YYYY-MM`.
    pub async fn figures(&self, month: &str) -> ClientResult<MonthlyFigures> {
        self.get(&format!("/api/v1/figures?month={month}")).await
    }

    /// Sessions planned from `from` to `to` (inclusive, `YYYY-MM-DD`) as CSV text.
    pub async fn export_sessions(&self, from: &str, to: &str) -> ClientResult<String> {
        let response =
            self.execute(self.request(Method::GET, &format!("/api/v1/export/sessions?from={from}&to={to}"))).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.text().await?);
        }
        Err(error_from(status, response).await)
    }

    pub async fn signal_map(&self, days: i64) -> ClientResult<SignalMap> {
        self.get(&format!("/api/v1/signal-map?days={days}")).await
    }

    pub async fn mark_no_signal(&self, body: &NoSignalMarkRequest) -> ClientResult<NoSignalMark> {
        self.post("/api/v1/signal-marks", body).await
    }

    pub async fn push_status(&self) -> ClientResult<PushStatus> {
        self.get("/api/v1/push/status").await
    }

    pub async fn update_user(&self, id: Uuid, body: &UpdateUserRequest) -> ClientResult<UserView> {
        self.put(&format!("/api/v1/users/{id}"), body).await
    }

    pub async fn retention(&self) -> ClientResult<RetentionSettings> {
        self.get("/api/v1/school/retention").await
    }

    pub async fn set_retention(&self, days: i64) -> ClientResult<RetentionSettings> {
        self.put("/api/v1/school/retention", &RetentionSettings { location_retention_days: days }).await
    }

    /// A raw request, for tests of bad input: returns the status and the body as JSON (or `null`).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<RawBody>,
    ) -> ClientResult<(StatusCode, serde_json::Value)> {
        let mut builder = self.request(method, path);
        match body {
            Some(RawBody::Json(value)) => builder = builder.json(&value),
            Some(RawBody::Text { content_type, text }) => {
                builder = builder.header("content-type", content_type).body(text)
            }
            Some(RawBody::Bytes { content_type, bytes }) => {
                builder = builder.header("content-type", content_type).body(bytes)
            }
            None => {}
        }
        let response = self.execute(builder).await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)))
    }
}

/// The live board's Server-Sent Events, read one board at a time.
#[cfg(not(target_arch = "wasm32"))]
pub struct BoardEvents {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

#[cfg(not(target_arch = "wasm32"))]
impl BoardEvents {
    /// The next board the server sends; `Ok(None)` when the stream ends.
    pub async fn next(&mut self) -> ClientResult<Option<BoardView>> {
        loop {
            // Events are cut on bytes and only then decoded: a chunk may end inside a character.
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buffer.drain(..end + 2).collect();
                if let Some(board) = parse_board_event(&String::from_utf8_lossy(&event)) {
                    return Ok(Some(board));
                }
            }
            match self.response.chunk().await? {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => return Ok(None),
            }
        }
    }
}

/// The board in one Server-Sent Event (`event: board` and its `data:` lines); `None` for comments and
/// other events.
pub fn parse_board_event(event: &str) -> Option<BoardView> {
    let mut name = "message";
    let mut data = String::new();
    for line in event.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim();
        } else if let Some(value) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if name != "board" || data.is_empty() {
        return None;
    }
    serde_json::from_str(&data).ok()
}

pub enum RawBody {
    Json(serde_json::Value),
    Text { content_type: &'static str, text: String },
    Bytes { content_type: &'static str, bytes: Vec<u8> },
}

fn authorised(builder: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    }
}

async fn error_from(status: StatusCode, response: reqwest::Response) -> ClientError {
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or_else(|_| ErrorBody {
        code: "unexpected_response".into(),
        message: format!("HTTP {status}: {text}"),
    });
    ClientError::Api { status, body }
}
