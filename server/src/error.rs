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
    /// PostgreSQL failed this transaction to break a deadlock or a serialization conflict with another
    /// (40P01, 40001): the same request succeeds when sent again, so it is a 503 the client retries
    /// (keeping its events queued), and callers that can may simply run it again.
    #[error("the service is unavailable: the database was busy with a conflicting change; try again")]
    Contended(#[source] sqlx::Error),
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
            ApiError::Unavailable(_) | ApiError::Contended(_) => "unavailable".into(),
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
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")) => {
                tracing::warn!(error = %e, "a transaction lost a deadlock or serialization conflict");
                ApiError::Contended(e)
            }
            sqlx::Error::Database(db) if is_unavailable_code(db.code().as_deref()) => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::Unavailable("the database is busy or unavailable; try again shortly".into())
            }
            _ => ApiError::Unexpected(anyhow::Error::new(e)),
        }
    }
}

/// Whether the database refused for a reason outside the request: the client should retry later.
///
/// PostgreSQL reports a five-character SQLSTATE: class 08 (connection), 53 (insufficient resources,
/// such as a full disk), 57P (the server shutting down or refusing connections), 58 (system and I/O
/// errors) and 25006 (a read-only transaction: a standby after failover, or a database an operator
/// made read-only). SQLite reports a number of at most four digits, often an extended code whose low
/// byte is the primary one: busy (5), locked (6), read-only (8), I/O error (10, e.g. 778 for a
/// failed write), full (13), cannot open (14).
fn is_unavailable_code(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    if code.len() == 5 {
        return code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P")
            || code.starts_with("58")
            || code == "25006";
    }
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
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
            ApiError::Unavailable(_) | ApiError::Contended(_) => StatusCode::SERVICE_UNAVAILABLE,
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

#[cfg(test)]
mod tests {
    use super::is_unavailable_code;

    #[test]
    fn storage_that_cannot_take_a_write_is_unavailable_and_a_bad_write_is_not() {
        // SQLite: full, a failed write (SQLITE_IOERR_WRITE), busy, locked in shared cache, read-only.
        for code in ["13", "778", "5", "262", "8", "1032", "14"] {
            assert!(is_unavailable_code(Some(code)), "SQLite {code}");
        }
        // SQLite: a constraint (19, 2067 unique) and an SQL error (1) are the request's fault.
        for code in ["19", "2067", "1"] {
            assert!(!is_unavailable_code(Some(code)), "SQLite {code}");
        }
        // PostgreSQL: read-only, connection failure, disk full, admin shutdown, I/O error.
        for code in ["25006", "08006", "53100", "57P01", "58030"] {
            assert!(is_unavailable_code(Some(code)), "PostgreSQL {code}");
        }
        // PostgreSQL: unique violation, syntax error, invalid text for a type.
        for code in ["23505", "42601", "22P02"] {
            assert!(!is_unavailable_code(Some(code)), "PostgreSQL {code}");
        }
        assert!(!is_unavailable_code(None));
    }
}
