//! The OpenAPI 3 document, generated from the handlers' annotations and served at `/api/openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Homeward API", description = "Lone-worker safety for schools: plan, run and escalate visits."),
    paths(
        routes::health::health,
        routes::health::ready,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::logout_everywhere,
        routes::auth::devices,
        routes::auth::sign_out_device,
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
    modifiers(&BearerAuth, &SharedRefusals)
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

/// The refusals every operation of a shape can give, whatever its handler does, because they come from
/// the extractors and the database in front of it. Documented here once rather than on each handler, so
/// that no operation can forget one (the API fuzzing in scripts/fuzz-api checks every status it sees
/// is documented).
struct SharedRefusals;

fn add_refusal(operation: &mut Operation, status: u16, why: &str) {
    let response = ResponseBuilder::new()
        .description(why)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
        .build();
    operation.responses.responses.entry(status.to_string()).or_insert_with(|| response.into());
}

impl Modify for SharedRefusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let has = |place: ParameterIn| operation.parameters.iter().flatten().any(|p| p.parameter_in == place);
                let (by_path, by_query) = (has(ParameterIn::Path), has(ParameterIn::Query));
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add_refusal(operation, 401, "No valid bearer token: sign in first");
                }
                if operation.request_body.is_some() {
                    add_refusal(operation, 400, "The body cannot be read as the documented content");
                    add_refusal(operation, 413, "The body is larger than the server accepts");
                    add_refusal(operation, 415, "The body is not sent with the documented content type");
                }
                if by_query {
                    add_refusal(operation, 400, "A query parameter is not valid");
                }
                if by_path {
                    add_refusal(operation, 404, "Nothing with that id exists in your school");
                }
                if path.starts_with("/api/") {
                    add_refusal(operation, 503, "The database is unavailable; try again shortly");
                }
            }
        }
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
