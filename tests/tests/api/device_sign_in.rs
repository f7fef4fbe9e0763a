//! Device sign-in: a short access token renewed by a rotating refresh token, so a worker is never asked
//! for a password during a visit; a copied refresh token ends the device; people and admins sign
//! devices out.

use chrono::{Duration, Utc};
use homeward_server::clock::ManualClock;
use homeward_shared::api::{ClientEventKind, RefreshRequest, UpdateUserRequest};
use homeward_shared::client::{ApiClient, RawBody};
use homeward_shared::session::SessionStatus;
use homeward_tests::{Backend, PASSWORD, TestApp, low_risk_visit, on_both_databases, spawn_app_with_clock};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_databases!(
    a_visit_across_the_old_sign_in_expiry_needs_no_password,
    a_copied_refresh_token_used_after_rotation_ends_the_device,
    a_renewal_whose_answer_was_lost_is_answered_again,
    deactivating_someone_stops_their_devices_at_once,
    signing_out_one_device_or_every_device,
    a_device_stays_signed_in_while_it_is_used,
    requests_that_find_the_token_expired_together_renew_once,
);

async fn app_for(backend: Backend) -> (TestApp, ManualClock) {
    let clock = ManualClock::new(Utc::now());
    (spawn_app_with_clock(backend, clock.clone()).await, clock)
}

async fn refresh(app: &TestApp, refresh_token: &str, next: &str) -> (StatusCode, serde_json::Value) {
    let body = RefreshRequest { refresh_token: refresh_token.into(), next_refresh_token: next.into() };
    app.api
        .raw(Method::POST, "/api/v1/auth/refresh", Some(RawBody::Json(serde_json::to_value(body).unwrap())))
        .await
        .expect("the server answers")
}

fn next_token(tag: &str) -> String {
    format!("test-{tag}-{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn message(body: &serde_json::Value) -> String {
    body["message"].as_str().unwrap_or_default().to_string()
}

/// Send one event as the phone's queue does: the same event (same id) again while the server answers
/// 503 (a write that lost a deadlock to the scheduler), which it applies once.
async fn send_as_the_phone(app: &TestApp, worker: &ApiClient, visit: uuid::Uuid, kind: ClientEventKind) {
    let event = app.event_now(kind);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match worker.send_events(visit, std::slice::from_ref(&event)).await {
            Ok(_) => return,
            Err(e) if e.status() == Some(StatusCode::SERVICE_UNAVAILABLE) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{:?} refused: {e}", event.kind),
        }
    }
}

/// Signed in at 07:00 with the old 12-hour token, a worker starting at 18:30 was signed out at 19:00 in
/// the middle of the visit. Now the phone renews by itself: check-ins, extend, panic and end all go
/// through across that point, with no password. (The visit keeps to its 20-minute check-ins, so
/// nothing but the panic escalates.)
async fn a_visit_across_the_old_sign_in_expiry_needs_no_password(backend: Backend) {
    let (app, clock) = app_for(backend).await;
    let school = app.school("Renewal School").await;
    let worker = &school.staff.api;
    let signed_in_with = worker.token().expect("signed in");

    clock.advance(Duration::hours(11) + Duration::minutes(45));
    let visit = app.start_visit(worker, low_risk_visit()).await;
    clock.advance(Duration::minutes(10));
    send_as_the_phone(&app, worker, visit, ClientEventKind::CheckIn).await;
    clock.advance(Duration::minutes(10));
    // 12 h 05 min after signing in.
    send_as_the_phone(&app, worker, visit, ClientEventKind::CheckIn).await;
    clock.advance(Duration::minutes(10));
    send_as_the_phone(&app, worker, visit, ClientEventKind::Extend { minutes: 30 }).await;
    clock.advance(Duration::minutes(5));
    send_as_the_phone(&app, worker, visit, ClientEventKind::Panic { location: None }).await;
    assert_eq!(worker.session(visit).await.expect("read the visit").status, SessionStatus::Alarm);
    clock.advance(Duration::minutes(5));
    send_as_the_phone(&app, worker, visit, ClientEventKind::End).await;
    // The end is recorded; the panic's alarm stays until a leader resolves it.
    let ended = worker.session(visit).await.expect("read the visit");
    assert!(ended.ended_at.is_some(), "the visit ended");
    assert_eq!(ended.late_check_ins, 0, "every check-in was on time");

    assert_ne!(worker.token().expect("still signed in"), signed_in_with, "the access token was renewed");
    let old = ApiClient::new(&app.address).with_token(signed_in_with);
    let expired = old.me().await.expect_err("the first access token has expired");
    assert_eq!(expired.status(), Some(StatusCode::UNAUTHORIZED));
}

async fn a_copied_refresh_token_used_after_rotation_ends_the_device(backend: Backend) {
    let (app, _clock) = app_for(backend).await;
    let school = app.school("Theft School").await;
    let phone = school.staff.api.sign_in().expect("signed in");
    let stolen = phone.refresh_token.clone().expect("a refresh token");

    let next = next_token("phone");
    let (status, renewed) = refresh(&app, &stolen, &next).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let renewed_access = renewed["token"].as_str().expect("an access token").to_string();
    assert_eq!(renewed["refresh_token"], json!(next));

    // Someone who copied the first refresh token tries it now that it has been replaced.
    let (status, refused) = refresh(&app, &stolen, &next_token("thief")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert!(message(&refused).contains("used from somewhere else"), "{refused}");

    // The whole chain has ended: the device's current refresh and access tokens too.
    let (status, body) = refresh(&app, &next, &next_token("phone-again")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let phone_now = ApiClient::new(&app.address).with_token(renewed_access);
    assert_eq!(phone_now.me().await.expect_err("signed out").status(), Some(StatusCode::UNAUTHORIZED));
    // The person's other devices are not touched, and the DSL can see what happened.
    let (other, _) = app.api.login(&school.staff.user.email, PASSWORD).await.expect("sign in elsewhere");
    other.me().await.expect("another device still works");
    let audit = school.dsl.api.audit(0, 1000).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "auth.refresh_reused"), "the reuse is audited");
}

/// A phone on a poor signal sends a renewal and never hears the answer: it asks again with the same
/// next token and is answered, without losing the sign-in. Once it has moved on, the old request is
/// a copy.
async fn a_renewal_whose_answer_was_lost_is_answered_again(backend: Backend) {
    let (app, _clock) = app_for(backend).await;
    let school = app.school("Lost Answer School").await;
    let first = school.staff.api.sign_in().expect("signed in").refresh_token.expect("a refresh token");
    let next = next_token("next");
    let (status, once) = refresh(&app, &first, &next).await;
    assert_eq!(status, StatusCode::OK, "{once}");
    let (status, twice) = refresh(&app, &first, &next).await;
    assert_eq!(status, StatusCode::OK, "the same renewal asked again: {twice}");
    assert_ne!(once["token"], twice["token"], "each answer carries an access token of its own");
    assert_eq!(once["device_id"], twice["device_id"]);

    let after = next_token("after");
    let (status, body) = refresh(&app, &next, &after).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = refresh(&app, &first, &next).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "two renewals old is a copy: {body}");
    let (status, _) = refresh(&app, &after, &next_token("later")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the device was signed out");

    // Bad proposals are refused, naming the field, and change nothing.
    let (other, _) = app.api.login(&school.staff.user.email, PASSWORD).await.expect("sign in");
    let current = other.sign_in().unwrap().refresh_token.unwrap();
    let (status, body) = refresh(&app, &current, "short").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(&body).contains("next_refresh_token"), "{body}");
    let (status, body) = refresh(&app, &current, &current).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = refresh(&app, &current, &next_token("fine")).await;
    assert_eq!(status, StatusCode::OK, "the refused proposals used nothing up: {body}");
}

async fn deactivating_someone_stops_their_devices_at_once(backend: Backend) {
    let (app, _clock) = app_for(backend).await;
    let school = app.school("Deactivation School").await;
    let phone = school.staff.api.clone();
    let refresh_token = phone.sign_in().unwrap().refresh_token.unwrap();
    phone.me().await.expect("signed in");
    let update =
        UpdateUserRequest { roles: None, line_manager_id: None, clear_line_manager: false, active: Some(false) };
    school.admin.api.update_user(school.staff.id(), &update).await.expect("deactivate");
    // Within one access-token lifetime, and in fact at once: the token and its renewal are refused.
    assert_eq!(phone.me().await.expect_err("deactivated").status(), Some(StatusCode::UNAUTHORIZED));
    let (status, body) = refresh(&app, &refresh_token, &next_token("after")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Reactivated, they sign in again: the old device stays signed out.
    let update = UpdateUserRequest { active: Some(true), ..update };
    school.admin.api.update_user(school.staff.id(), &update).await.expect("reactivate");
    assert_eq!(phone.me().await.expect_err("still signed out").status(), Some(StatusCode::UNAUTHORIZED));
    let (again, _) = app.api.login(&school.staff.user.email, PASSWORD).await.expect("sign in again");
    again.me().await.expect("a new sign-in works");
}

async fn signing_out_one_device_or_every_device(backend: Backend) {
    let (app, _clock) = app_for(backend).await;
    let school = app.school("Sign Out School").await;
    let email = &school.staff.user.email;
    let phone = school.staff.api.clone();
    let (laptop, _) = app.api.login(email, PASSWORD).await.expect("second device");
    let (tablet, _) = app.api.login(email, PASSWORD).await.expect("third device");
    let devices = phone.devices().await.expect("my devices");
    assert_eq!(devices.len(), 3);
    assert_eq!(devices.iter().filter(|d| d.current).count(), 1);

    // Sign out this device: only it stops, renewal included.
    let laptop_refresh = laptop.sign_in().unwrap().refresh_token.unwrap();
    laptop.logout().await.expect("sign out the laptop");
    assert_eq!(laptop.me().await.expect_err("signed out").status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(refresh(&app, &laptop_refresh, &next_token("laptop")).await.0, StatusCode::UNAUTHORIZED);
    phone.me().await.expect("the phone still works");

    // Sign out another device of mine from this one; someone else's device is not mine to end.
    let tablet_id = tablet.sign_in().unwrap().device_id.unwrap();
    let (status, _) =
        school.other_staff.api.raw(Method::DELETE, &format!("/api/v1/me/devices/{tablet_id}"), None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    tablet.me().await.expect("still signed in");
    phone.sign_out_device(tablet_id).await.expect("sign out the tablet");
    assert_eq!(tablet.me().await.expect_err("signed out").status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(phone.devices().await.expect("my devices").len(), 1);

    // Every device: this one too.
    let (laptop, _) = app.api.login(email, PASSWORD).await.expect("sign in again");
    let phone_refresh = phone.sign_in().unwrap().refresh_token.unwrap();
    phone.logout_everywhere().await.expect("sign out everywhere");
    assert_eq!(laptop.me().await.expect_err("signed out").status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(phone.me().await.expect_err("signed out").status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(refresh(&app, &phone_refresh, &next_token("phone")).await.0, StatusCode::UNAUTHORIZED);
    school.other_staff.api.me().await.expect("nobody else is signed out");
}

/// Thirty days from the last renewal, not from the sign-in: a phone in use stays signed in.
async fn a_device_stays_signed_in_while_it_is_used(backend: Backend) {
    let (app, clock) = app_for(backend).await;
    let school = app.school("Sliding School").await;
    let phone = school.staff.api.clone();
    for _ in 0..3 {
        clock.advance(Duration::days(25));
        phone.me().await.expect("used within 30 days: renewed without a password");
    }
    let refresh_token = phone.sign_in().unwrap().refresh_token.unwrap();
    clock.advance(Duration::days(31));
    let refused = phone.me().await.expect_err("unused for 31 days");
    assert_eq!(refused.status(), Some(StatusCode::UNAUTHORIZED));
    let (status, body) = refresh(&app, &refresh_token, &next_token("late")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&body).contains("expired"), "{body}");
}

/// The phone's queue, its board stream and a screen all find the token expired at once: one renewal
/// serves them all (two would present the same refresh token twice and end the device).
async fn requests_that_find_the_token_expired_together_renew_once(backend: Backend) {
    let (app, clock) = app_for(backend).await;
    let school = app.school("Together School").await;
    let phone = school.staff.api.clone();
    clock.advance(Duration::hours(1));
    let requests = (0..6).map(|_| {
        let phone = phone.clone();
        async move { phone.me().await }
    });
    for answer in futures::future::join_all(requests).await {
        answer.expect("every request is answered after one renewal");
    }
    phone.me().await.expect("the device is still signed in");
    let audit = school.dsl.api.audit(0, 1000).await.expect("audit");
    assert!(!audit.iter().any(|e| e.action == "auth.refresh_reused"), "no renewal looked like a copy");
}
