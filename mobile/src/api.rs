//! The only module that talks HTTP: the shared typed client, with its errors sorted into what the app
//! does about them (retry later, sign in again, or tell the worker).

use std::future::Future;

use homeward_shared::api::{
    AlertMessage, AlertView, ApprovalRules, AuditChainReport, AuditEntry, BoardView, CreateUserRequest,
    EscalationPlanRequest, EscalationPlanView, ImportErrors, ImportReport, LoginResponse, MonthlyFigures, NoSignalMark,
    NoSignalMarkRequest, PlanSessionRequest, PushStatus, PushSubscriptionRequest, PushSubscriptionView,
    ResolveAlertRequest, ReviewItem, SessionView, SignalMap, UpdateUserRequest, UserView,
};
use homeward_shared::client::{ApiClient, ClientError};
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

    pub async fn login(&self, email: &str, password: &str) -> ApiResult<LoginResponse> {
        Ok(self.client.login(email, password).await?.1)
    }

    pub async fn logout(&self) -> ApiResult<()> {
        Ok(self.client.logout().await?)
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
    use homeward_shared::api::BoardView;
    use homeward_shared::client::ApiClient;

    use super::ApiResult;

    pub async fn watch(client: &ApiClient, mut on_board: impl FnMut(BoardView)) -> ApiResult<()> {
        let mut events = client.board_events().await?;
        while let Some(board) = events.next().await? {
            on_board(board);
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
        if let Some(token) = client.token() {
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
