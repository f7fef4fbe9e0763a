//! Behind a reverse proxy every request comes from the proxy's address: the sign-in limit must count the
//! people behind it apart, and must not believe a forwarded-for header from anyone but a trusted proxy.

use homeward_tests::{Backend, PASSWORD, TestApp, on_both_databases, spawn_app_shifted};
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(
    a_forged_forwarded_for_from_an_untrusted_peer_is_ignored,
    through_a_trusted_proxy_two_peoples_failures_count_apart,
);

/// The per-address limit (30 failures in 15 minutes), spent from `forwarded_for`, each failure on an
/// account of its own so no per-account lock comes first.
async fn fail_thirty_times(app: &TestApp, header: (&str, &str)) {
    let http = reqwest::Client::new();
    for i in 0..30 {
        let response = http
            .post(format!("{}/api/v1/auth/login", app.address))
            .header(header.0, header.1)
            .json(&json!({"email": format!("nobody-{i}@school.test"), "password": "wrong-password"}))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
}

async fn sign_in_from(app: &TestApp, header: (&str, &str), email: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.address))
        .header(header.0, header.1)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("the server answers")
        .status()
}

/// Straight to the server (no proxy configured): whatever address a client claims, its failures are
/// counted against the address it really comes from.
async fn a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(backend: Backend) {
    let app = spawn_app_shifted(backend, |_| {}).await;
    let school = app.school("Untrusted School").await;
    fail_thirty_times(&app, ("x-forwarded-for", "198.51.100.1")).await;
    let status = sign_in_from(&app, ("x-forwarded-for", "198.51.100.2"), &school.staff.user.email).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "a claimed address does not escape the limit");
    let status = sign_in_from(&app, ("forwarded", "for=198.51.100.3"), &school.staff.user.email).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

/// Behind a trusted proxy (the test's requests come from 127.0.0.1), one person's failed sign-ins do
/// not lock out the rest of the school.
async fn through_a_trusted_proxy_two_peoples_failures_count_apart(backend: Backend) {
    let app = spawn_app_shifted(backend, |s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let school = app.school("Proxied School").await;
    fail_thirty_times(&app, ("x-forwarded-for", "198.51.100.1")).await;
    let locked = sign_in_from(&app, ("x-forwarded-for", "198.51.100.1"), &school.staff.user.email).await;
    assert_eq!(locked, StatusCode::TOO_MANY_REQUESTS, "the failing address is limited");
    let other = sign_in_from(&app, ("x-forwarded-for", "198.51.100.2"), &school.staff.user.email).await;
    assert_eq!(other, StatusCode::OK, "someone else behind the same proxy signs in");
    // A client that writes its own header in front of the proxy's gains nothing: the proxy's hop counts.
    let forged = sign_in_from(&app, ("x-forwarded-for", "203.0.113.5, 198.51.100.1"), &school.staff.user.email).await;
    assert_eq!(forged, StatusCode::TOO_MANY_REQUESTS);
    let rfc7239 = sign_in_from(&app, ("forwarded", "for=\"198.51.100.4:5000\""), &school.leader.user.email).await;
    assert_eq!(rfc7239, StatusCode::OK);
}
