//! Browsers may call the API only from the origins a deployment configured and from the server's own
//! origin (the web client it serves). A page on any other site gets no CORS permission, and its
//! request is refused before a handler runs.

use homeward_tests::{Backend, TestApp, spawn_app_shifted};
use reqwest::StatusCode;
use reqwest::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN};

const PARTNER: &str = "https://app.partner-school.example";
const STRANGER: &str = "https://evil.example";

async fn app(backend: Backend) -> TestApp {
    spawn_app_shifted(backend, |settings| settings.cors_origins = vec![PARTNER.to_owned()]).await
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/api/v1/auth/login", app.address))
        .header(ORIGIN, origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .expect("preflight")
}

async fn sign_in_from(app: &TestApp, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.address))
        .header(ORIGIN, origin)
        .json(&serde_json::json!({ "email": "nobody@school.test", "password": "not-the-password" }))
        .send()
        .await
        .expect("sign in")
}

async fn configured_origin_is_allowed(backend: Backend) {
    let app = app(backend).await;
    let response = preflight(&app, PARTNER).await;
    assert!(response.status().is_success(), "preflight from the configured origin: {}", response.status());
    assert_eq!(response.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).map(|v| v.to_str().unwrap()), Some(PARTNER));
    let response = sign_in_from(&app, PARTNER).await;
    // The handler ran (a wrong password) and the browser may read its answer.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).map(|v| v.to_str().unwrap()), Some(PARTNER));
}

async fn other_origins_are_refused(backend: Backend) {
    let app = app(backend).await;
    let response = preflight(&app, STRANGER).await;
    assert!(!response.status().is_success(), "preflight from a stranger: {}", response.status());
    assert!(response.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let response = sign_in_from(&app, STRANGER).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "a request from another site never reaches sign-in");
    assert!(response.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

async fn the_servers_own_origin_is_allowed(backend: Backend) {
    let app = app(backend).await;
    // The web client is served from the same address it calls: browsers still send Origin on a POST.
    let own = app.address.clone();
    let response = sign_in_from(&app, &own).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Requests without an Origin (the phone app, curl, the tests' client) are not affected at all.
    let response = reqwest::get(format!("{}/health", app.address)).await.expect("health");
    assert_eq!(response.status(), StatusCode::OK);
}

homeward_tests::on_both_databases!(
    configured_origin_is_allowed,
    other_origins_are_refused,
    the_servers_own_origin_is_allowed
);
