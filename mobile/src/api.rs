//! The only module that talks HTTP: the shared typed client, with its errors sorted into what the app
//! does about them (retry later, sign in again, or tell the worker).

use std::future::Future;

use homeward_shared::api::{
    AlertView, LoginResponse, PlanSessionRequest, PushSubscriptionRequest, PushSubscriptionView, SessionView, UserView,
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
