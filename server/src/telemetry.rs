//! Structured logs through `tracing`; `RUST_LOG` sets the level.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    // `try_init` so tests that start several servers in one process do not panic.
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).try_init();
}

/// The root span of every request, as tracing-actix-web's default, except that a refused request is
/// logged with its status only: an error's message can quote what was sent (a child's address in a
/// field of the wrong type), and the log must never hold a child's details. Server errors keep their
/// message, which names what failed on our side.
pub struct PrivateRootSpan;

impl RootSpanBuilder for PrivateRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(request)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error().map(ToString::to_string)),
            Err(error) => (error.as_response_error().status_code(), Some(error.to_string())),
        };
        span.record("http.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
            tracing::error!(parent: &span, status = status.as_u16(), error = error.unwrap_or_default(), "request failed");
        } else {
            span.record("otel.status_code", "OK");
            if status.is_client_error() {
                tracing::info!(parent: &span, status = status.as_u16(), "request refused");
            }
        }
    }
}
