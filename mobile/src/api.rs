//! The only module that talks HTTP: the shared typed client, with its errors sorted into what the app
//! does about them (retry later, sign in again, or tell the worker).

use std::future::Future;

use homeward_shared::api::{
    AlertMessage, AlertView, ApprovalRules, AuditChainReport, AuditEntry, BoardView, CreateUserRequest,
    EscalationPlanRequest, EscalationPlanView, ImportErrors, ImportReport, LoginResponse, MonthlyFigures, NoSignalMark,
    NoSignalMarkRequest, PlanSessionRequest, PushStatus, PushSubscriptionRequest, PushSubscriptionView,
    ResolveAlertRequest, ReviewItem, SessionView, SignalMap, UpdateUserRequest, UserView,
};
use homeward_shared::client::{ApiClient, ClientError, OnSignInChange, SignIn};
use uuid::Uuid;

use crate::queue::{Batch, SendResult, Sender};

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The server could not be reached.
    Offline(String),
    /// The sign-in is missing or has expired.
    SignedOut(String),
    /// The server is there but cannot answer now (5xx, 429, an unreadable answer).
    Unavailable(String),
    /// The server refused the request; `code` is its stable error code.
    Refused { status: u16, code: String, message: String },
}

impl ApiError {
    pub fn message(&self) -> String {
        match self {
            ApiError::Offline(_) => "You are offline: the server cannot be reached.".into(),
            ApiError::SignedOut(message) | ApiError::Unavailable(message) => message.clone(),
            ApiError::Refused { message, .. } => message.clone(),
        }
    }

    pub fn is_offline(&self) -> bool {
        matches!(self, ApiError::Offline(_))
    }

    /// The message to show beside the field a refusal names, without the field's name in front.
    pub fn field_message(&self) -> String {
        let message = self.message();
        match (self.field(), message.split_once(": ")) {
            (Some(_), Some((field, rest))) if !field.contains(' ') => rest.to_string(),
            _ => message,
        }
    }

    /// The form field a refusal names (the server's codes are `invalid_<field>`).
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::Refused { code, .. } => code.strip_prefix("invalid_"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_refusal_names_its_field_and_reads_without_it() {
        let refused = ApiError::Refused {
            status: 422,
            code: "invalid_risk_assessment_overall".into(),
            message: "risk_assessment.overall: the overall level (low) cannot be lower".into(),
        };
        assert_eq!(refused.field(), Some("risk_assessment_overall"));
        assert_eq!(refused.field_message(), "the overall level (low) cannot be lower");
        let conflict = ApiError::Refused { status: 409, code: "no_pin_set".into(), message: "no PIN: set one".into() };
        assert_eq!(conflict.field(), None);
        assert_eq!(conflict.field_message(), "no PIN: set one");
    }

    /// The server's storage failing (disk full, database read-only) answers 503 with the shared error
    /// body: the phone keeps the batch, saved, and sends the same events again later, once.
    #[cfg(not(target_arch = "wasm32"))]
    mod storage_unavailable {
        use std::cell::RefCell;
        use std::io::{BufRead, BufReader, Read, Write};
        use std::net::TcpListener;
        use std::sync::{Arc, Mutex};

        use homeward_shared::api::{ClientEvent, ClientEventKind, EventBatch, EventBatchResponse};
        use uuid::Uuid;

        use crate::api::Api;
        use crate::platform::MemoryStorage;
        use crate::projection::tests::{active_view, t};
        use crate::queue::{FlushEnd, Queue, QueueCell, Queued, flush};

        /// Each request the scripted server took: its path and body.
        type Requests = Arc<Mutex<Vec<(String, String)>>>;

        /// An HTTP server on a real socket that answers each request with the next scripted status and
        /// body, and keeps every request's path and body.
        fn scripted_server(answers: Vec<(u16, String)>) -> (String, Requests) {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let seen = requests.clone();
            std::thread::spawn(move || {
                for (status, body) in answers {
                    let (stream, _) = listener.accept().unwrap();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    reader.read_line(&mut request_line).unwrap();
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        if header == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    let mut sent = vec![0; length];
                    reader.read_exact(&mut sent).unwrap();
                    let path = request_line.split(' ').nth(1).unwrap_or_default().to_string();
                    seen.lock().unwrap().push((path, String::from_utf8(sent).unwrap()));
                    let mut stream = stream;
                    write!(
                        stream,
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .unwrap();
                }
            });
            (base, requests)
        }

        struct Saved {
            queue: RefCell<Queue>,
            storage: MemoryStorage,
        }

        impl QueueCell for Saved {
            fn update<R>(&self, f: impl FnOnce(&mut Queue) -> R) -> R {
                let mut queue = self.queue.borrow_mut();
                let result = f(&mut queue);
                queue.save(&self.storage).unwrap();
                result
            }
        }

        #[tokio::test]
        async fn a_503_keeps_the_batch_queued_and_a_later_success_removes_it() {
            let session = active_view(None);
            let events: Vec<ClientEvent> = (1..=2u8)
                .map(|n| ClientEvent {
                    id: Uuid::from_u128(u128::from(n)),
                    at: t(i64::from(n)),
                    kind: ClientEventKind::CheckIn,
                })
                .collect();
            let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
            let unavailable = serde_json::json!({
                "code": "unavailable",
                "message": "the service is unavailable: the database is busy or unavailable; try again shortly",
            });
            let accepted = EventBatchResponse { applied: ids.clone(), duplicates: vec![], session: session.clone() };
            let (base, requests) =
                scripted_server(vec![(503, unavailable.to_string()), (200, serde_json::to_string(&accepted).unwrap())]);
            let cell = Saved { queue: RefCell::new(Queue::default()), storage: MemoryStorage::default() };
            for event in &events {
                cell.update(|q| q.push(Queued::Event { session_id: session.id, event: event.clone() }));
            }
            let api = Api::new(&base, Some("a-token"));

            let report = flush(&cell, &api, |_| {}).await;
            assert_eq!(
                report.end,
                FlushEnd::Retry {
                    reason: "the service is unavailable: the database is busy or unavailable; try again shortly".into(),
                    offline: false
                },
                "a 503 is \"try again later\", not a refusal and not offline"
            );
            assert_eq!((report.confirmed, report.refused), (0, 0));
            let kept: Vec<Uuid> = Queue::load(&cell.storage).items().iter().map(Queued::id).collect();
            assert_eq!(kept, ids, "both events are still queued, in order, in storage");
            assert!(cell.queue.borrow().rejected().is_empty(), "nothing is shown as refused");

            let report = flush(&cell, &api, |_| {}).await;
            assert_eq!((report.end, report.confirmed), (FlushEnd::Drained, 2));
            assert!(Queue::load(&cell.storage).is_empty(), "the confirmed events left the queue");

            let requests = requests.lock().unwrap().clone();
            assert_eq!(requests.len(), 2, "one refused try and one accepted, nothing more");
            for (path, body) in &requests {
                assert_eq!(path, &format!("/api/v1/sessions/{}/events", session.id));
                let batch: EventBatch = serde_json::from_str(body).unwrap();
                assert_eq!(batch.events, events, "the same batch, with the same client ids, both times");
            }
        }

        fn renewed_answer(session: &homeward_shared::api::SessionView) -> String {
            serde_json::json!({
                "token": "renewed-access-token",
                "expires_at": "2099-01-01T00:00:00Z",
                "device_id": "00000000-0000-0000-0000-0000000000d1",
                "refresh_token": "ignored: the device keeps the one it proposed",
                "refresh_expires_at": "2099-02-01T00:00:00Z",
                "user": {
                    "id": session.worker_id, "school_id": session.school_id, "school_name": "Demo School",
                    "email": "dana@school.test", "name": "Dana", "roles": ["staff"], "line_manager_id": null,
                    "active": true, "has_pin": false
                }
            })
            .to_string()
        }

        fn device_sign_in(renew_at: chrono::DateTime<chrono::Utc>) -> homeward_shared::client::SignIn {
            homeward_shared::client::SignIn {
                access_token: "first-access-token".into(),
                access_expires_at: renew_at + chrono::Duration::minutes(5),
                renew_at: Some(renew_at),
                device_id: Some(Uuid::from_u128(0xd1)),
                refresh_token: Some("first-refresh-token".into()),
                refresh_expires_at: Some(renew_at + chrono::Duration::days(30)),
                pending_refresh_token: None,
            }
        }

        /// Sends the queue through a server that answers `answers`; returns the requests it took and the
        /// sign-ins the client reported.
        async fn flush_through(
            answers: Vec<(u16, String)>,
            sign_in: homeward_shared::client::SignIn,
            events: &[ClientEvent],
            session: &homeward_shared::api::SessionView,
        ) -> (Vec<(String, String)>, Vec<homeward_shared::client::SignIn>, crate::queue::FlushReport) {
            let (base, requests) = scripted_server(answers);
            let cell = Saved { queue: RefCell::new(Queue::default()), storage: MemoryStorage::default() };
            for event in events {
                cell.update(|q| q.push(Queued::Event { session_id: session.id, event: event.clone() }));
            }
            let changes = Arc::new(Mutex::new(Vec::new()));
            let seen = changes.clone();
            let api = Api::signed_in(
                &base,
                sign_in,
                Arc::new(move |s: Option<&homeward_shared::client::SignIn>| {
                    seen.lock().unwrap().extend(s.cloned());
                }),
            );
            let report = flush(&cell, &api, |_| {}).await;
            assert!(Queue::load(&cell.storage).is_empty(), "everything was confirmed and left the queue");
            let requests = requests.lock().unwrap().clone();
            let changes = changes.lock().unwrap().clone();
            (requests, changes, report)
        }

        fn check_ins(session: &homeward_shared::api::SessionView) -> (Vec<ClientEvent>, String) {
            let events: Vec<ClientEvent> = (1..=3u8)
                .map(|n| ClientEvent {
                    id: Uuid::from_u128(u128::from(n)),
                    at: t(i64::from(n)),
                    kind: ClientEventKind::CheckIn,
                })
                .collect();
            let ids = events.iter().map(|e| e.id).collect();
            let accepted = EventBatchResponse { applied: ids, duplicates: vec![], session: session.clone() };
            (events, serde_json::to_string(&accepted).unwrap())
        }

        /// The access token ran out during a visit: the server's 401 is answered by renewing the device
        /// sign-in, and the same batch goes again, once, in order, with nobody asked to sign in.
        #[tokio::test]
        async fn a_401_renews_the_sign_in_and_sends_the_same_batch_once() {
            let session = active_view(None);
            let (events, accepted) = check_ins(&session);
            let expired = serde_json::json!({"code": "unauthorized", "message": "the access token has expired"});
            let answers = vec![(401, expired.to_string()), (200, renewed_answer(&session)), (200, accepted)];
            let later = chrono::Utc::now() + chrono::Duration::hours(1);
            let (requests, changes, report) = flush_through(answers, device_sign_in(later), &events, &session).await;
            assert_eq!((report.end, report.confirmed), (FlushEnd::Drained, 3));
            let paths: Vec<&str> = requests.iter().map(|(p, _)| p.as_str()).collect();
            let events_path = format!("/api/v1/sessions/{}/events", session.id);
            assert_eq!(paths, [events_path.as_str(), "/api/v1/auth/refresh", events_path.as_str()]);
            for (_, body) in [&requests[0], &requests[2]] {
                let batch: EventBatch = serde_json::from_str(body).unwrap();
                assert_eq!(batch.events, events, "the same batch, same ids, same order");
            }
            let renewal: homeward_shared::api::RefreshRequest = serde_json::from_str(&requests[1].1).unwrap();
            assert_eq!(renewal.refresh_token, "first-refresh-token");
            // The proposed token was saved before the renewal was sent, then became the device's own.
            assert_eq!(changes.len(), 2, "{changes:?}");
            assert_eq!(changes[0].pending_refresh_token.as_deref(), Some(renewal.next_refresh_token.as_str()));
            assert_eq!(changes[1].refresh_token.as_deref(), Some(renewal.next_refresh_token.as_str()));
            assert_eq!(changes[1].access_token, "renewed-access-token");
            assert_eq!(changes[1].pending_refresh_token, None);
        }

        /// Due for renewal by its own clock, the phone renews before it sends, so the events go once.
        #[tokio::test]
        async fn a_sign_in_due_for_renewal_is_renewed_before_the_queue_is_sent() {
            let session = active_view(None);
            let (events, accepted) = check_ins(&session);
            let answers = vec![(200, renewed_answer(&session)), (200, accepted)];
            let due = chrono::Utc::now() - chrono::Duration::seconds(1);
            let (requests, changes, report) = flush_through(answers, device_sign_in(due), &events, &session).await;
            assert_eq!((report.end, report.confirmed), (FlushEnd::Drained, 3));
            let paths: Vec<&str> = requests.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(paths, ["/api/v1/auth/refresh".to_string(), format!("/api/v1/sessions/{}/events", session.id)]);
            assert_eq!(changes.last().map(|s| s.access_token.as_str()), Some("renewed-access-token"));
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Transport(e) if e.is_decode() => {
                ApiError::Unavailable(format!("The server's answer could not be read: {e}"))
            }
            ClientError::Transport(e) => ApiError::Offline(e.to_string()),
            ClientError::Api { status, body } => match status.as_u16() {
                401 => ApiError::SignedOut(body.message),
                408 | 429 | 500..=599 => ApiError::Unavailable(body.message),
                code => ApiError::Refused { status: code, code: body.code, message: body.message },
            },
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, Clone)]
pub struct Api {
    client: ApiClient,
}

impl Api {
    pub fn new(base: &str, token: Option<&str>) -> Self {
        let client = ApiClient::new(base);
        Self {
            client: match token {
                Some(token) => client.with_token(token),
                None => client,
            },
        }
    }

    /// The client of a signed-in device: renews its sign-in as needed and tells `on_change`.
    pub fn signed_in(base: &str, sign_in: SignIn, on_change: OnSignInChange) -> Self {
        let client = ApiClient::new(base).with_sign_in(sign_in);
        client.on_sign_in_change(on_change);
        Self { client }
    }

    pub async fn login(&self, email: &str, password: &str) -> ApiResult<LoginResponse> {
        Ok(self.client.login(email, password).await?.1)
    }

    pub async fn logout(&self) -> ApiResult<()> {
        Ok(self.client.logout().await?)
    }

    /// Sign out every device of mine.
    pub async fn logout_everywhere(&self) -> ApiResult<()> {
        Ok(self.client.logout_everywhere().await?)
    }

    pub async fn me(&self) -> ApiResult<UserView> {
        Ok(self.client.me().await?)
    }

    pub async fn my_sessions(&self) -> ApiResult<Vec<SessionView>> {
        Ok(self.client.sessions("mine").await?)
    }

    pub async fn awaiting_my_approval(&self) -> ApiResult<Vec<SessionView>> {
        Ok(self.client.sessions("pending_approval").await?)
    }

    pub async fn session(&self, id: Uuid) -> ApiResult<SessionView> {
        Ok(self.client.session(id).await?)
    }

    pub async fn plan(&self, request: &PlanSessionRequest) -> ApiResult<SessionView> {
        Ok(self.client.plan_session(request).await?)
    }

    pub async fn request_approval(&self, id: Uuid) -> ApiResult<SessionView> {
        Ok(self.client.request_approval(id).await?)
    }

    /// Colleagues who could come along; only leaders, the DSL and admins may list staff.
    pub async fn colleagues(&self) -> ApiResult<Vec<UserView>> {
        Ok(self.client.users().await?)
    }

    pub async fn open_alerts(&self) -> ApiResult<Vec<AlertView>> {
        Ok(self.client.alerts("open").await?)
    }

    pub async fn alert(&self, id: Uuid) -> ApiResult<AlertView> {
        Ok(self.client.alert(id).await?)
    }

    pub async fn vapid_public_key(&self) -> ApiResult<String> {
        Ok(self.client.vapid_public_key().await?.public_key)
    }

    pub async fn subscribe_push(&self, subscription: &PushSubscriptionRequest) -> ApiResult<PushSubscriptionView> {
        Ok(self.client.subscribe_push(subscription).await?)
    }

    pub async fn push_subscriptions(&self) -> ApiResult<Vec<PushSubscriptionView>> {
        Ok(self.client.push_subscriptions().await?)
    }

    /// Ask the server to send a test notification to all this user's devices now.
    pub async fn test_push(&self) -> ApiResult<homeward_shared::api::TestPushReport> {
        Ok(self.client.test_push().await?)
    }

    /// Will the visit's plan reach someone at every step? Shown before the visit starts.
    pub async fn safety_net(&self, id: Uuid) -> ApiResult<homeward_shared::api::SafetyNetReport> {
        Ok(self.client.safety_net(id).await?)
    }

    /// Follow the live board: `on_board` gets every board the server pushes. Returns when the stream
    /// ends or fails; the caller reconnects. On the web this reads the Server-Sent Events through
    /// `fetch` (an `EventSource` cannot send the bearer token).
    pub async fn watch_board(&self, on_board: impl FnMut(BoardView)) -> ApiResult<()> {
        board_stream::watch(&self.client, on_board).await
    }

    pub async fn acknowledge(&self, id: Uuid) -> ApiResult<AlertView> {
        Ok(self.client.acknowledge_alert(id).await?)
    }

    pub async fn resolve(&self, id: Uuid, request: &ResolveAlertRequest) -> ApiResult<AlertView> {
        Ok(self.client.resolve_alert(id, request).await?)
    }

    pub async fn message_worker(&self, id: Uuid, text: &str) -> ApiResult<AlertView> {
        Ok(self.client.message_worker(id, text).await?)
    }

    pub async fn session_messages(&self, session_id: Uuid) -> ApiResult<Vec<AlertMessage>> {
        Ok(self.client.session_messages(session_id).await?)
    }

    pub async fn answer(&self, session_id: Uuid, text: &str) -> ApiResult<AlertMessage> {
        Ok(self.client.answer_message(session_id, text).await?)
    }

    pub async fn approve(&self, id: Uuid) -> ApiResult<SessionView> {
        Ok(self.client.approve(id).await?)
    }

    pub async fn reject(&self, id: Uuid, reason: &str) -> ApiResult<SessionView> {
        Ok(self.client.reject(id, reason).await?)
    }

    pub async fn reviews(&self, status: &str) -> ApiResult<Vec<ReviewItem>> {
        Ok(self.client.reviews(status).await?)
    }

    pub async fn mark_reviewed(&self, id: Uuid, action: &str) -> ApiResult<ReviewItem> {
        Ok(self.client.mark_reviewed(id, action).await?)
    }

    pub async fn figures(&self, month: &str) -> ApiResult<MonthlyFigures> {
        Ok(self.client.figures(month).await?)
    }

    pub async fn export_sessions(&self, from: &str, to: &str) -> ApiResult<String> {
        Ok(self.client.export_sessions(from, to).await?)
    }

    pub async fn audit(&self, after_seq: i64, limit: i64) -> ApiResult<Vec<AuditEntry>> {
        Ok(self.client.audit(after_seq, limit).await?)
    }

    pub async fn verify_audit(&self) -> ApiResult<AuditChainReport> {
        Ok(self.client.verify_audit().await?)
    }

    pub async fn signal_map(&self, days: i64) -> ApiResult<SignalMap> {
        Ok(self.client.signal_map(days).await?)
    }

    pub async fn mark_no_signal(&self, request: &NoSignalMarkRequest) -> ApiResult<NoSignalMark> {
        Ok(self.client.mark_no_signal(request).await?)
    }

    pub async fn push_status(&self) -> ApiResult<PushStatus> {
        Ok(self.client.push_status().await?)
    }

    pub async fn create_user(&self, request: &CreateUserRequest) -> ApiResult<UserView> {
        Ok(self.client.create_user(request).await?)
    }

    pub async fn update_user(&self, id: Uuid, request: &UpdateUserRequest) -> ApiResult<UserView> {
        Ok(self.client.update_user(id, request).await?)
    }

    /// A refused file comes back as `Ok(Err(rows))`.
    pub async fn import_staff(&self, csv: &str) -> ApiResult<Result<ImportReport, ImportErrors>> {
        Ok(self.client.import_staff(csv).await?)
    }

    pub async fn escalation_plans(&self) -> ApiResult<Vec<EscalationPlanView>> {
        Ok(self.client.escalation_plans().await?)
    }

    pub async fn save_plan(&self, id: Option<Uuid>, request: &EscalationPlanRequest) -> ApiResult<EscalationPlanView> {
        Ok(match id {
            Some(id) => self.client.update_escalation_plan(id, request).await?,
            None => self.client.create_escalation_plan(request).await?,
        })
    }

    pub async fn approval_rules(&self) -> ApiResult<ApprovalRules> {
        Ok(self.client.approval_rules().await?)
    }

    pub async fn set_approval_rules(&self, rules: &ApprovalRules) -> ApiResult<ApprovalRules> {
        Ok(self.client.set_approval_rules(rules).await?)
    }

    pub async fn retention(&self) -> ApiResult<i64> {
        Ok(self.client.retention().await?.location_retention_days)
    }

    pub async fn set_retention(&self, days: i64) -> ApiResult<i64> {
        Ok(self.client.set_retention(days).await?.location_retention_days)
    }

    /// `GET /health`: is the server there and well?
    pub async fn health(&self) -> ApiResult<()> {
        let (status, body) = self.client.raw(reqwest::Method::GET, "/health", None).await?;
        match status.as_u16() {
            200..=299 => Ok(()),
            code => Err(ApiError::Unavailable(format!("the server answered {code}: {body}"))),
        }
    }
}

fn send_result(error: ApiError) -> SendResult {
    match error {
        ApiError::Offline(reason) => SendResult::Retry { reason, offline: true },
        ApiError::Unavailable(reason) => SendResult::Retry { reason, offline: false },
        ApiError::SignedOut(_) => SendResult::SignedOut,
        refused @ ApiError::Refused { .. } => SendResult::Refused { message: refused.field_message() },
    }
}

impl Sender for Api {
    fn send(&self, batch: &Batch) -> impl Future<Output = SendResult> {
        let client = self.client.clone();
        let batch = batch.clone();
        async move {
            match &batch {
                Batch::Events { session_id, events } => match client.send_events(*session_id, events).await {
                    Ok(response) => SendResult::Confirmed {
                        ids: response.applied.into_iter().chain(response.duplicates).collect(),
                        session: Some(Box::new(response.session)),
                    },
                    Err(e) => send_result(e.into()),
                },
                Batch::Pings { session_id, pings } => match client.send_pings(*session_id, pings).await {
                    Ok(_) => SendResult::Confirmed { ids: batch.ids(), session: None },
                    Err(e) => send_result(e.into()),
                },
            }
        }
    }
}

/// Reading the board's Server-Sent Events.
#[cfg(not(target_arch = "wasm32"))]
mod board_stream {
    use homeward_shared::ErrorBody;
    use homeward_shared::api::BoardView;
    use homeward_shared::client::{ApiClient, ClientError, parse_board_event};

    use super::ApiResult;

    /// The stream is kept as bytes and cut into events at their blank line before any is decoded, as
    /// the web client does: a network chunk can end inside a character (an "é" in a worker's name), and
    /// decoding each chunk on its own would turn both halves into replacement characters.
    pub async fn watch(client: &ApiClient, mut on_board: impl FnMut(BoardView)) -> ApiResult<()> {
        let mut request = reqwest::Client::new()
            .get(format!("{}/api/v1/board/events", client.base()))
            .header("accept", "text/event-stream");
        let token = client.fresh_token().await;
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await.map_err(ClientError::from)?;
        let status = response.status();
        if let (reqwest::StatusCode::UNAUTHORIZED, Some(stale)) = (status, &token)
            && client.can_renew()
        {
            // The token ran out: renew the device sign-in and let the caller reconnect at once.
            client.renew(stale).await?;
            return Ok(());
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or_else(|_| ErrorBody {
                code: "unexpected_response".into(),
                message: format!("HTTP {status}: {text}"),
            });
            return Err(ClientError::Api { status, body }.into());
        }
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(ClientError::from)? {
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buffer.drain(..end + 2).collect();
                if let Some(board) = parse_board_event(&String::from_utf8_lossy(&event)) {
                    on_board(board);
                }
            }
        }
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
mod board_stream {
    use homeward_shared::api::BoardView;
    use homeward_shared::client::{ApiClient, parse_board_event};
    use js_sys::{Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    use super::{ApiError, ApiResult};

    fn offline(what: &str, e: JsValue) -> ApiError {
        ApiError::Offline(format!("{what}: {e:?}"))
    }

    /// Aborts the request when the screen that follows the board goes away.
    struct Abort(web_sys::AbortController);

    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    pub async fn watch(client: &ApiClient, mut on_board: impl FnMut(BoardView)) -> ApiResult<()> {
        let window = web_sys::window().ok_or_else(|| ApiError::Offline("no window".into()))?;
        let abort = Abort(web_sys::AbortController::new().map_err(|e| offline("abort controller", e))?);
        let init = web_sys::RequestInit::new();
        init.set_method("GET");
        init.set_signal(Some(&abort.0.signal()));
        let headers = web_sys::Headers::new().map_err(|e| offline("headers", e))?;
        let _ = headers.set("accept", "text/event-stream");
        let token = client.fresh_token().await;
        if let Some(token) = &token {
            let _ = headers.set("authorization", &format!("Bearer {token}"));
        }
        init.set_headers(&headers);
        let url = format!("{}/api/v1/board/events", client.base());
        let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(&url, &init))
            .await
            .map_err(|e| offline("the board could not be reached", e))?
            .dyn_into()
            .map_err(|e| offline("not a response", e))?;
        let status = response.status();
        if !response.ok() {
            let text = match response.text() {
                Ok(promise) => JsFuture::from(promise).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
                Err(_) => String::new(),
            };
            let body =
                serde_json::from_str::<homeward_shared::ErrorBody>(&text).unwrap_or(homeward_shared::ErrorBody {
                    code: "unexpected_response".into(),
                    message: format!("HTTP {status}"),
                });
            if let (401, Some(stale)) = (status, &token)
                && client.can_renew()
            {
                // The token ran out: renew the device sign-in and let the caller reconnect at once.
                return match client.renew(stale).await {
                    Ok(()) => Ok(()),
                    Err(e) => Err(e.into()),
                };
            }
            return Err(match status {
                401 => ApiError::SignedOut(body.message),
                408 | 429 | 500..=599 => ApiError::Unavailable(body.message),
                code => ApiError::Refused { status: code, code: body.code, message: body.message },
            });
        }
        let body = response.body().ok_or_else(|| ApiError::Unavailable("the board stream has no body".into()))?;
        let reader: web_sys::ReadableStreamDefaultReader =
            body.get_reader().dyn_into().map_err(|e| offline("no stream reader", e.into()))?;
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            let chunk = JsFuture::from(reader.read()).await.map_err(|e| offline("the board stream broke", e))?;
            if Reflect::get(&chunk, &JsValue::from_str("done")).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
                return Ok(());
            }
            if let Ok(value) = Reflect::get(&chunk, &JsValue::from_str("value")) {
                buffer.extend(Uint8Array::new(&value).to_vec());
            }
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buffer.drain(..end + 2).collect();
                if let Some(board) = parse_board_event(&String::from_utf8_lossy(&event)) {
                    on_board(board);
                }
            }
        }
    }
}

/// The native board stream against a real socket whose chunks end inside characters.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod board_stream_chunks {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use homeward_shared::api::{BoardEntry, BoardView};
    use homeward_shared::client::ApiClient;
    use homeward_shared::session::SessionStatus;
    use uuid::Uuid;

    use crate::projection::tests::t;

    fn board() -> BoardView {
        BoardView {
            generated_at: t(0),
            map_tile_url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".into(),
            sessions: vec![BoardEntry {
                session_id: Uuid::from_u128(1),
                worker_id: Uuid::from_u128(2),
                worker_name: "Zoë Brontë-Ćwik".into(),
                kind: "home_visit".into(),
                sub_kind: Some("procedural".into()),
                address: "3 Lantern Court — Harbourside".into(),
                status: SessionStatus::Active,
                alarm: None,
                deadline: Some(t(30)),
                seconds_to_deadline: None,
                started_at: Some(t(0)),
                last_position: None,
                battery_percent: None,
                alerts: vec![],
            }],
        }
    }

    /// An HTTP server on a real socket that answers the board's stream request with `chunks`, each
    /// sent as its own HTTP chunk a moment after the last, then ends the stream.
    fn stream_server(chunks: Vec<Vec<u8>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_nodelay(true).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            assert!(request_line.starts_with("GET /api/v1/board/events "), "{request_line}");
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header == "\r\n" {
                    break;
                }
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                .unwrap();
            for chunk in chunks {
                stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).unwrap();
                stream.write_all(&chunk).unwrap();
                stream.write_all(b"\r\n").unwrap();
                stream.flush().unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
            stream.write_all(b"0\r\n\r\n").unwrap();
        });
        base
    }

    #[tokio::test]
    async fn a_character_split_across_chunks_arrives_whole() {
        let expected = board();
        let mut event =
            format!(": keep-alive\n\nevent: board\ndata: {}\n\n", serde_json::to_string(&expected).unwrap())
                .into_bytes();
        // A second board in the same stream, so the cut after the first is tested too.
        event.extend_from_within(..);
        // Cut inside "ë" (two bytes) and inside "—" (three bytes, after its first).
        let in_e = event.windows(2).position(|w| w == "ë".as_bytes()).unwrap() + 1;
        let in_dash = event.windows(3).position(|w| w == "—".as_bytes()).unwrap() + 1;
        let chunks = vec![event[..in_e].to_vec(), event[in_e..in_dash].to_vec(), event[in_dash..].to_vec()];
        let base = stream_server(chunks);

        let mut boards = Vec::new();
        let client = ApiClient::new(&base).with_token("a-token");
        tokio::time::timeout(Duration::from_secs(30), super::board_stream::watch(&client, |b| boards.push(b)))
            .await
            .expect("the stream ends")
            .expect("the stream is read");
        assert_eq!(boards.len(), 2, "{boards:#?}");
        for board in &boards {
            assert_eq!(board.sessions[0].worker_name, "Zoë Brontë-Ćwik");
            assert_eq!(board.sessions[0].address, "3 Lantern Court — Harbourside");
            assert_eq!(board, &expected);
        }
    }
}
