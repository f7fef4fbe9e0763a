//! Self-test of the Web Push protocol peer: messages built by the `web-push` crate, as the server
//! builds them, are verified, decrypted and scripted.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use homeward_tests::push_service::{PushService, Subscription};
use jwt_simple::prelude::{ECDSAP256PublicKeyLike, ES256KeyPair};
use serde_json::{Value, json};
use web_push::{ContentEncoding, SubscriptionInfo, Urgency, VapidSignatureBuilder, WebPushMessageBuilder};

/// A VAPID key pair generated the way the server does: (private, public), both base64url.
fn vapid_keys() -> (String, String) {
    let key_pair = ES256KeyPair::generate();
    let private = URL_SAFE_NO_PAD.encode(key_pair.to_bytes());
    let public = URL_SAFE_NO_PAD.encode(key_pair.public_key().public_key().to_bytes_uncompressed());
    (private, public)
}

struct Message<'a> {
    payload: Value,
    ttl: u32,
    urgency: Option<Urgency>,
    topic: Option<&'a str>,
    /// `None`: leave `aud` to `web-push` (which drops the port).
    aud: Option<String>,
    sub: &'a str,
}

impl Message<'_> {
    fn to(push: &PushService) -> Message<'static> {
        Message {
            payload: json!({ "kind": "overdue", "session": 7 }),
            ttl: 3600,
            urgency: Some(Urgency::High),
            topic: Some("session-7"),
            aud: Some(push.url()),
            sub: "mailto:test@homeward.test",
        }
    }
}

/// What a headers-and-status view of one request looks like.
struct Sent {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// Build a message with `web-push` and POST it with reqwest, copying exactly the headers
/// `web_push::request_builder::build_request` produces.
async fn send_web_push(vapid_private: &str, subscription: &Subscription, message: Message<'_>) -> Sent {
    let info =
        SubscriptionInfo::new(subscription.endpoint.as_str(), subscription.p256dh.as_str(), subscription.auth.as_str());
    let mut signature = VapidSignatureBuilder::from_base64(vapid_private, &info).expect("a valid VAPID key");
    signature.add_claim("sub", message.sub);
    if let Some(aud) = message.aud {
        signature.add_claim("aud", aud);
    }
    let payload = serde_json::to_vec(&message.payload).unwrap();
    let mut builder = WebPushMessageBuilder::new(&info);
    builder.set_payload(ContentEncoding::Aes128Gcm, &payload);
    builder.set_ttl(message.ttl);
    if let Some(urgency) = message.urgency {
        builder.set_urgency(urgency);
    }
    if let Some(topic) = message.topic {
        builder.set_topic(topic.to_owned());
    }
    builder.set_vapid_signature(signature.build().expect("the VAPID JWT is signed"));
    let request = web_push::request_builder::build_request::<Vec<u8>>(builder.build().expect("the message builds"));

    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
        .collect();
    let mut post = reqwest::Client::new().post(request.uri().to_string());
    for (name, value) in &headers {
        // reqwest sets Content-Length from the body.
        if name != "content-length" {
            post = post.header(name, value);
        }
    }
    let response = post.body(request.body().clone()).send().await.expect("the push service answers");
    let status = response.status().as_u16();
    Sent { status, headers, body: response.text().await.unwrap() }
}

fn header<'a>(sent: &'a Sent, name: &str) -> &'a str {
    sent.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or_default()
}

#[tokio::test]
async fn a_good_message_is_received_decrypted_with_its_headers() {
    let (private, public) = vapid_keys();
    let push = PushService::start(public.clone()).await;
    let subscription = push.subscribe();
    assert_eq!(subscription.endpoint, format!("{}/push/{}", push.url(), subscription.id));
    assert_eq!(URL_SAFE_NO_PAD.decode(&subscription.p256dh).unwrap().len(), 65);
    assert_eq!(URL_SAFE_NO_PAD.decode(&subscription.auth).unwrap().len(), 16);

    let sent = send_web_push(&private, &subscription, Message::to(&push)).await;
    assert_eq!(sent.status, 201, "{}", sent.body);

    // The exact shape of what web-push 0.11 sends.
    assert_eq!(header(&sent, "ttl"), "3600");
    assert_eq!(header(&sent, "urgency"), "high");
    assert_eq!(header(&sent, "topic"), "session-7");
    assert_eq!(header(&sent, "content-encoding"), "aes128gcm");
    assert_eq!(header(&sent, "content-type"), "application/octet-stream");
    let authorization = header(&sent, "authorization");
    let (t, k) = authorization.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
    assert_eq!(t.split('.').count(), 3);
    assert_eq!(k, public);
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(t.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["aud"], push.url());
    assert_eq!(claims["sub"], "mailto:test@homeward.test");
    println!("headers sent by web-push 0.11: {:?}", sent.headers);
    println!("VAPID JWT claims: {claims}");

    let received = push.wait_for(Duration::from_secs(5), |r| !r.is_empty()).await;
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.subscription_id, subscription.id);
    assert_eq!(message.payload, json!({ "kind": "overdue", "session": 7 }));
    assert_eq!(message.urgency.as_deref(), Some("high"));
    assert_eq!(message.ttl, Some(3600));
    assert_eq!(message.topic.as_deref(), Some("session-7"));
    assert_eq!(push.received_by(&subscription.id), received);
    assert!(push.received_by(&push.subscribe().id).is_empty());

    let attempts = push.attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0].status, attempts[0].reason.as_deref()), (201, None));
}

#[tokio::test]
async fn optional_headers_may_be_left_out() {
    let (private, public) = vapid_keys();
    let push = PushService::start(public).await;
    let subscription = push.subscribe();
    let message = Message { urgency: None, topic: None, ttl: 0, ..Message::to(&push) };
    let sent = send_web_push(&private, &subscription, message).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let received = push.received();
    assert_eq!((received[0].urgency.as_deref(), received[0].topic.as_deref(), received[0].ttl), (None, None, Some(0)));
}

#[tokio::test]
async fn the_key_can_be_configured_after_start() {
    let (private, public) = vapid_keys();
    let push = PushService::start(String::new()).await;
    let subscription = push.subscribe();
    let sent = send_web_push(&private, &subscription, Message::to(&push)).await;
    assert_eq!(sent.status, 403);
    push.set_vapid_public_key(public);
    let sent = send_web_push(&private, &subscription, Message::to(&push)).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    assert_eq!(push.received().len(), 1);
}

#[tokio::test]
async fn a_message_signed_with_another_key_is_refused_and_recorded() {
    let (_, public) = vapid_keys();
    let (other_private, _) = vapid_keys();
    let push = PushService::start(public).await;
    let subscription = push.subscribe();

    let sent = send_web_push(&other_private, &subscription, Message::to(&push)).await;
    assert_eq!(sent.status, 403, "{}", sent.body);
    let body: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body["code"], 403);

    assert!(push.received().is_empty());
    let attempts = push.attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].subscription_id, subscription.id);
    assert_eq!(attempts[0].status, 403);
    let reason = attempts[0].reason.as_deref().unwrap();
    assert!(reason.contains("does not match the configured VAPID public key"), "{reason}");
}

#[tokio::test]
async fn a_jwt_not_signed_by_k_is_refused() {
    // `k` names the configured key but the JWT was signed by another one.
    let (_, public) = vapid_keys();
    let (other_private, _) = vapid_keys();
    let push = PushService::start(public.clone()).await;
    let subscription = push.subscribe();
    let info =
        SubscriptionInfo::new(subscription.endpoint.as_str(), subscription.p256dh.as_str(), subscription.auth.as_str());
    let mut signature = VapidSignatureBuilder::from_base64(&other_private, &info).unwrap();
    signature.add_claim("aud", push.url());
    let jwt = signature.build().unwrap().auth_t;
    let mut builder = WebPushMessageBuilder::new(&info);
    builder.set_payload(ContentEncoding::Aes128Gcm, b"{}");
    let request = web_push::request_builder::build_request::<Vec<u8>>(builder.build().unwrap());
    let response = reqwest::Client::new()
        .post(&subscription.endpoint)
        .header("TTL", "60")
        .header("Content-Encoding", "aes128gcm")
        .header("Authorization", format!("vapid t={jwt}, k={public}"))
        .body(request.body().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let reason = push.attempts()[0].reason.clone().unwrap();
    assert!(reason.contains("does not verify"), "{reason}");
    assert!(push.received().is_empty());
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let (private, public) = vapid_keys();
    let push = PushService::start(public).await;
    let subscription = push.subscribe();

    let message = Message { aud: Some("https://push.example.net".into()), ..Message::to(&push) };
    let sent = send_web_push(&private, &subscription, message).await;
    assert_eq!(sent.status, 403, "{}", sent.body);
    let reason = push.attempts()[0].reason.clone().unwrap();
    assert!(reason.contains("aud"), "{reason}");

    // web-push 0.11's default `aud` is `scheme://host`, without the port: not this origin.
    let message = Message { aud: None, ..Message::to(&push) };
    let sent = send_web_push(&private, &subscription, message).await;
    assert_eq!(sent.status, 403, "{}", sent.body);
    let reason = push.attempts()[1].reason.clone().unwrap();
    assert!(reason.contains(r#"aud "http://127.0.0.1" is not"#), "{reason}");

    assert!(push.received().is_empty());
}

#[tokio::test]
async fn a_subject_that_is_not_a_contact_url_is_refused() {
    let (private, public) = vapid_keys();
    let push = PushService::start(public).await;
    let subscription = push.subscribe();
    let sent = send_web_push(&private, &subscription, Message { sub: "homeward", ..Message::to(&push) }).await;
    assert_eq!(sent.status, 403, "{}", sent.body);
    assert!(push.attempts()[0].reason.as_deref().unwrap().contains("sub"));
    let sent =
        send_web_push(&private, &subscription, Message { sub: "https://homeward.test/contact", ..Message::to(&push) })
            .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
}

#[tokio::test]
async fn expired_or_far_future_tokens_are_refused() {
    let (private, public) = vapid_keys();
    let push = PushService::start(public.clone()).await;
    let subscription = push.subscribe();
    let info =
        SubscriptionInfo::new(subscription.endpoint.as_str(), subscription.p256dh.as_str(), subscription.auth.as_str());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for (exp, expected) in [(now - 60, "expired"), (now + 25 * 3600, "more than 24 h"), (now + 23 * 3600, "")] {
        let mut signature = VapidSignatureBuilder::from_base64(&private, &info).unwrap();
        signature.add_claim("aud", push.url());
        signature.add_claim("sub", "mailto:test@homeward.test");
        signature.add_claim("exp", exp);
        let mut builder = WebPushMessageBuilder::new(&info);
        builder.set_payload(ContentEncoding::Aes128Gcm, b"{\"n\":1}");
        builder.set_vapid_signature(signature.build().unwrap());
        let request = web_push::request_builder::build_request::<Vec<u8>>(builder.build().unwrap());
        let mut post = reqwest::Client::new().post(&subscription.endpoint);
        for (name, value) in request.headers() {
            if name.as_str() != "content-length" {
                post = post.header(name.as_str(), value.to_str().unwrap());
            }
        }
        let status = post.body(request.body().clone()).send().await.unwrap().status().as_u16();
        let attempt = push.attempts().pop().unwrap();
        if expected.is_empty() {
            assert_eq!(status, 201, "{attempt:?}");
        } else {
            assert_eq!(status, 403);
            assert!(attempt.reason.as_deref().unwrap().contains(expected), "{attempt:?}");
        }
    }
    assert_eq!(push.received().len(), 1);
}

#[tokio::test]
async fn missing_authorization_is_401_and_bad_bodies_are_400() {
    let (private, public) = vapid_keys();
    let push = PushService::start(public.clone()).await;
    let subscription = push.subscribe();
    let client = reqwest::Client::new();

    let response = client
        .post(&subscription.endpoint)
        .header("TTL", "60")
        .header("Content-Encoding", "aes128gcm")
        .body(vec![0u8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // A valid signature over a garbage body, then a valid body without TTL.
    let info =
        SubscriptionInfo::new(subscription.endpoint.as_str(), subscription.p256dh.as_str(), subscription.auth.as_str());
    let mut signature = VapidSignatureBuilder::from_base64(&private, &info).unwrap();
    signature.add_claim("aud", push.url());
    let authorization = format!("vapid t={}, k={public}", signature.build().unwrap().auth_t);
    let garbage = client
        .post(&subscription.endpoint)
        .header("TTL", "60")
        .header("Content-Encoding", "aes128gcm")
        .header("Authorization", &authorization)
        .body(vec![7u8; 200])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);

    let mut builder = WebPushMessageBuilder::new(&info);
    builder.set_payload(ContentEncoding::Aes128Gcm, b"not json");
    let not_json = web_push::request_builder::build_request::<Vec<u8>>(builder.build().unwrap());
    let response = client
        .post(&subscription.endpoint)
        .header("TTL", "60")
        .header("Content-Encoding", "aes128gcm")
        .header("Authorization", &authorization)
        .body(not_json.body().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let mut builder = WebPushMessageBuilder::new(&info);
    builder.set_payload(ContentEncoding::Aes128Gcm, b"{}");
    let good = web_push::request_builder::build_request::<Vec<u8>>(builder.build().unwrap());
    let no_ttl = client
        .post(&subscription.endpoint)
        .header("Content-Encoding", "aes128gcm")
        .header("Authorization", &authorization)
        .body(good.body().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(no_ttl.status(), 400);

    // The draft-VAPID header form is accepted too.
    let (t, _) = authorization.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
    let webpush = client
        .post(&subscription.endpoint)
        .header("TTL", "60")
        .header("Content-Encoding", "aes128gcm")
        .header("Authorization", format!("WebPush {t}"))
        .header("Crypto-Key", format!("p256ecdsa={public}"))
        .body(good.body().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(webpush.status(), 201);

    let attempts = push.attempts();
    let statuses: Vec<u16> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [401, 400, 400, 400, 201]);
    let reasons: Vec<&str> = attempts.iter().filter_map(|a| a.reason.as_deref()).collect();
    assert!(reasons[0].contains("missing Authorization"), "{reasons:?}");
    assert!(reasons[1].contains("decryption failed"), "{reasons:?}");
    assert!(reasons[2].contains("not JSON"), "{reasons:?}");
    assert!(reasons[3].contains("TTL"), "{reasons:?}");
    assert_eq!(push.received().len(), 1);
    assert_eq!(push.received()[0].payload, json!({}));
}

#[tokio::test]
async fn scripted_500_then_201_gives_exactly_one_received() {
    let (private, public) = vapid_keys();
    let push = PushService::start(public).await;
    let subscription = push.subscribe();
    push.respond_with(&subscription.id, &[500, 201]);

    let statuses = [
        send_web_push(&private, &subscription, Message::to(&push)).await.status,
        send_web_push(&private, &subscription, Message::to(&push)).await.status,
        send_web_push(&private, &subscription, Message::to(&push)).await.status,
    ];
    assert_eq!(statuses, [500, 201, 201]);
    let attempts = push.attempts();
    assert_eq!(attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [500, 201, 201]);
    assert!(attempts.iter().all(|a| a.reason.is_none()));
    assert_eq!(push.received_by(&subscription.id).len(), 2);
}

#[tokio::test]
async fn scripted_gone_not_found_and_too_many_requests() {
    let (private, public) = vapid_keys();
    let push = PushService::start(public).await;
    let gone = push.subscribe();
    let not_found = push.subscribe();
    let busy = push.subscribe();
    push.respond_with(&gone.id, &[410]);
    push.respond_with(&not_found.id, &[404]);
    push.respond_with(&busy.id, &[429]);

    assert_eq!(send_web_push(&private, &gone, Message::to(&push)).await.status, 410);
    assert_eq!(send_web_push(&private, &not_found, Message::to(&push)).await.status, 404);

    // 429 comes with Retry-After: 1.
    let info = SubscriptionInfo::new(busy.endpoint.as_str(), busy.p256dh.as_str(), busy.auth.as_str());
    let mut signature = VapidSignatureBuilder::from_base64(&private, &info).unwrap();
    signature.add_claim("aud", push.url());
    let mut builder = WebPushMessageBuilder::new(&info);
    builder.set_payload(ContentEncoding::Aes128Gcm, b"{}");
    builder.set_vapid_signature(signature.build().unwrap());
    let request = web_push::request_builder::build_request::<Vec<u8>>(builder.build().unwrap());
    let mut post = reqwest::Client::new().post(&busy.endpoint);
    for (name, value) in request.headers() {
        if name.as_str() != "content-length" {
            post = post.header(name.as_str(), value.to_str().unwrap());
        }
    }
    let response = post.body(request.body().clone()).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");

    assert!(push.received().is_empty());
    assert_eq!(push.attempts().iter().map(|a| a.status).collect::<Vec<_>>(), [410, 404, 429]);
    // The scripts ran out: back to 201.
    assert_eq!(send_web_push(&private, &gone, Message::to(&push)).await.status, 201);
    assert_eq!(push.received_by(&gone.id).len(), 1);
}

#[tokio::test]
async fn an_unknown_subscription_is_404() {
    let (private, public) = vapid_keys();
    let push = PushService::start(public).await;
    let real = push.subscribe();
    let unknown = Subscription {
        id: "no-such-subscription".into(),
        endpoint: format!("{}/push/no-such-subscription", push.url()),
        ..real.clone()
    };
    let sent = send_web_push(&private, &unknown, Message::to(&push)).await;
    assert_eq!(sent.status, 404, "{}", sent.body);
    let attempts = push.attempts();
    assert_eq!(attempts[0].subscription_id, "no-such-subscription");
    assert!(attempts[0].reason.as_deref().unwrap().contains("no subscription"));
    assert!(push.received().is_empty());
}

#[tokio::test]
async fn wait_for_times_out_with_what_arrived() {
    let (_, public) = vapid_keys();
    let push = PushService::start(public).await;
    let started = std::time::Instant::now();
    let received = push.wait_for(Duration::from_millis(100), |r| !r.is_empty()).await;
    assert!(received.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn subscription_json_is_what_a_browser_hands_over() {
    let (_, public) = vapid_keys();
    let push = PushService::start(public).await;
    let subscription = push.subscribe();
    let info: SubscriptionInfo = serde_json::from_value(subscription.to_json()).unwrap();
    assert_eq!(info.endpoint, subscription.endpoint);
    assert_eq!(info.keys.p256dh, subscription.p256dh);
    assert_eq!(info.keys.auth, subscription.auth);
}
