//! The API's one error type. 4xx variants carry a message for the user; anything unexpected becomes an
//! opaque 500 with the whole chain logged; an unreachable database is a 503, never a silent drop.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use homeward_shared::{ErrorBody, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("sign in first: {0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the service is unavailable: {0}")]
    Unavailable(String),
    #[error("something went wrong on our side")]
    Unexpected(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict { code, message: message.into() }
    }

    pub fn code(&self) -> String {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::Conflict { code, .. } => (*code).to_string(),
            ApiError::Invalid(e) => format!("invalid_{}", e.field.replace('.', "_")),
            ApiError::Unauthorized(_) => "unauthorized".into(),
            ApiError::Forbidden(_) => "forbidden".into(),
            ApiError::NotFound(_) => "not_found".into(),
            ApiError::TooManyRequests { .. } => "too_many_requests".into(),
            ApiError::PayloadTooLarge(_) => "payload_too_large".into(),
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type".into(),
            ApiError::Unavailable(_) => "unavailable".into(),
            ApiError::Unexpected(_) => "internal".into(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody { code: self.code(), message: self.to_string() }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::Unavailable("the database cannot be reached; try again shortly".into())
            }
            sqlx::Error::Database(db) if is_unavailable_code(db.code().as_deref()) => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::Unavailable("the database is busy or unavailable; try again shortly".into())
            }
            _ => ApiError::Unexpected(anyhow::Error::new(e)),
        }
    }
}

/// SQLite busy/locked/full/io-error and PostgreSQL's connection and resource classes.
fn is_unavailable_code(code: Option<&str>) -> bool {
    match code {
        Some(c) => {
            matches!(c, "5" | "6" | "10" | "13" | "517" | "261")
                || c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57P")
        }
        None => false,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Unexpected(e) = self {
            tracing::error!(error = ?e, "unexpected error");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::TooManyRequests { retry_after_secs, .. } = self {
            response.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        if let ApiError::Unauthorized(_) = self {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(self.body())
    }
}
