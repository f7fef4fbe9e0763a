//! The OpenAPI 3 document, generated from the handlers' annotations and served at `/api/openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Homeward API", description = "Lone-worker safety for schools: plan, run and escalate visits."),
    paths(
        routes::health::health,
        routes::health::ready,
        routes::auth::login,
        routes::auth::logout,
        routes::auth::me,
        routes::auth::set_pins,
        routes::channels::test_message,
        routes::users::list,
        routes::users::create,
        routes::users::import,
        routes::users::set_phone,
        routes::school::get_rules,
        routes::school::put_rules,
        routes::on_call::get,
        routes::on_call::put,
        routes::channels::reachability,
        routes::users::update,
        routes::school::get_retention,
        routes::school::put_retention,
        routes::sessions::list,
        routes::sessions::plan,
        routes::sessions::get,
        routes::channels::safety_net,
        routes::sessions::request_approval,
        routes::sessions::approve,
        routes::sessions::reject,
        routes::session_events::record_events,
        routes::session_events::record_pings,
        routes::session_events::record_outcome,
        routes::messages::list,
        routes::messages::reply,
        routes::plans::list,
        routes::plans::create,
        routes::plans::update,
        routes::alerts::list,
        routes::alerts::get,
        routes::alerts::acknowledge,
        routes::alerts::resolve,
        routes::alerts::message,
        routes::board::get,
        routes::board::events,
        routes::reviews::list,
        routes::reviews::mark,
        routes::figures::monthly,
        routes::figures::sessions_csv,
        routes::signal_map::get,
        routes::signal_map::mine,
        routes::signal_map::mark,
        routes::push::vapid_public_key,
        routes::push::list,
        routes::push::subscribe,
        routes::push::unsubscribe,
        routes::push::test,
        routes::push::status,
        routes::audit::list,
        routes::audit::verify,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
