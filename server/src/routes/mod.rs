//! The HTTP surface: one module per area, every route registered in [`configure`].

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod board;
pub mod channels;
pub mod extract;
pub mod figures;
pub mod health;
pub mod messages;
pub mod on_call;
pub mod plans;
pub mod push;
pub mod reviews;
pub mod school;
pub mod session_events;
pub mod sessions;
pub mod signal_map;
pub mod users;
pub mod web_client;

use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// Every route of the API, then the web client. The OpenAPI document lists the same API routes
/// (checked by a test).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .route("/api/openapi.json", web::get().to(crate::openapi::document))
        .service(
            web::scope("/api/v1")
                // Phones' reports first: actix tries the routes in order, matching each `{id}` pattern
                // by regular expression, and these are most of the requests.
                .route("/sessions/{id}/pings", web::post().to(session_events::record_pings))
                .route("/sessions/{id}/events", web::post().to(session_events::record_events))
                .route("/auth/login", web::post().to(auth::login))
                .route("/auth/refresh", web::post().to(auth::refresh))
                .route("/auth/logout", web::post().to(auth::logout))
                .route("/auth/logout-everywhere", web::post().to(auth::logout_everywhere))
                .route("/me/devices", web::get().to(auth::devices))
                .route("/me/devices/{id}", web::delete().to(auth::sign_out_device))
                .route("/me", web::get().to(auth::me))
                .route("/me/pins", web::put().to(auth::set_pins))
                .route("/me/test-message", web::post().to(channels::test_message))
                .route("/users", web::get().to(users::list))
                .route("/users", web::post().to(users::create))
                .route("/users/import", web::post().to(users::import))
                .route("/users/{id}/phone", web::put().to(users::set_phone))
                .route("/school/rules", web::get().to(school::get_rules))
                .route("/school/rules", web::put().to(school::put_rules))
                .route("/school/on-call-rota", web::get().to(on_call::get))
                .route("/school/on-call-rota", web::put().to(on_call::put))
                .route("/school/reachability", web::get().to(channels::reachability))
                .route("/users/{id}", web::put().to(users::update))
                .route("/school/retention", web::get().to(school::get_retention))
                .route("/school/retention", web::put().to(school::put_retention))
                .route("/sessions", web::get().to(sessions::list))
                .route("/sessions", web::post().to(sessions::plan))
                .route("/sessions/{id}", web::get().to(sessions::get))
                .route("/sessions/{id}/safety-net", web::get().to(channels::safety_net))
                .route("/sessions/{id}/approval/request", web::post().to(sessions::request_approval))
                .route("/sessions/{id}/approval/approve", web::post().to(sessions::approve))
                .route("/sessions/{id}/approval/reject", web::post().to(sessions::reject))
                .route("/sessions/{id}/outcome", web::post().to(session_events::record_outcome))
                .route("/sessions/{id}/messages", web::get().to(messages::list))
                .route("/sessions/{id}/messages", web::post().to(messages::reply))
                .route("/escalation-plans", web::get().to(plans::list))
                .route("/escalation-plans", web::post().to(plans::create))
                .route("/escalation-plans/{id}", web::put().to(plans::update))
                .route("/alerts", web::get().to(alerts::list))
                .route("/alerts/{id}", web::get().to(alerts::get))
                .route("/alerts/{id}/acknowledge", web::post().to(alerts::acknowledge))
                .route("/alerts/{id}/resolve", web::post().to(alerts::resolve))
                .route("/alerts/{id}/messages", web::post().to(alerts::message))
                .route("/board", web::get().to(board::get))
                .route("/board/events", web::get().to(board::events))
                .route("/reviews", web::get().to(reviews::list))
                .route("/reviews/{id}", web::post().to(reviews::mark))
                .route("/figures", web::get().to(figures::monthly))
                .route("/export/sessions", web::get().to(figures::sessions_csv))
                .route("/signal-map", web::get().to(signal_map::get))
                .route("/signal-marks", web::get().to(signal_map::mine))
                .route("/signal-marks", web::post().to(signal_map::mark))
                .route("/push/vapid-public-key", web::get().to(push::vapid_public_key))
                .route("/push/subscriptions", web::get().to(push::list))
                .route("/push/subscriptions", web::post().to(push::subscribe))
                .route("/push/subscriptions", web::delete().to(push::unsubscribe))
                .route("/push/test", web::post().to(push::test))
                .route("/push/status", web::get().to(push::status))
                .route("/audit", web::get().to(audit::list))
                .route("/audit/verify", web::get().to(audit::verify))
                .default_service(web::to(not_found)),
        )
        // Last: everything else is the web client (or the API's 404 under /api/).
        .configure(web_client::configure);
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("endpoint"))
}

/// Path ids that are not UUIDs name nothing that exists.
pub fn parse_path_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("resource"))
}
