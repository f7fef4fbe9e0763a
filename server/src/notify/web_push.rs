//! Web Push (RFC 8030) with aes128gcm payloads (RFC 8291) and VAPID (RFC 8292), through the `web-push`
//! crate for encryption and signing and `reqwest` for the request, every send under a timeout.

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::algorithms::ES256KeyPair;
use web_push::{ContentEncoding, SubscriptionInfo, Urgency, VapidSignatureBuilder, WebPushMessageBuilder};

use super::endpoint_guard::{EndpointGuard, NotPublicAddress};
use super::{Address, Channel, Device, Message, SendOutcome};
use crate::db::Db;

/// The server's VAPID key pair, generated on first start and kept in the database so every server
/// process signs with the same key and browsers' subscriptions survive restarts.
#[derive(Clone)]
pub struct VapidKeys {
    private_b64: String,
    pub public_b64: String,
}

impl VapidKeys {
    pub async fn load_or_generate(db: &Db) -> anyhow::Result<Self> {
        let generated = URL_SAFE_NO_PAD.encode(ES256KeyPair::generate().to_bytes());
        // Insert-if-absent, then read back: when several processes start at once they agree on one key.
        sqlx::query("insert into server_keys (name, value, created_at) values ('vapid_private', $1, $2) on conflict (name) do nothing")
            .bind(&generated)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&db.writer)
            .await?;
        let (private_b64,): (String,) =
            sqlx::query_as("select value from server_keys where name = 'vapid_private'").fetch_one(&db.pool).await?;
        let public = VapidSignatureBuilder::from_base64_no_sub(&private_b64)
            .context("the stored VAPID key is invalid")?
            .get_public_key();
        Ok(Self { private_b64, public_b64: URL_SAFE_NO_PAD.encode(public) })
    }
}

/// The most of a push service's answer that is read (for the server's log); the rest is never read.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How much of a refusal's answer goes into the server's log.
const LOGGED_ANSWER_CHARS: usize = 200;

pub struct WebPush {
    http: reqwest::Client,
    keys: VapidKeys,
    subject: String,
    guard: EndpointGuard,
}

impl WebPush {
    /// A push sender that reaches only public HTTPS endpoints (and the hosts `guard` allows): no
    /// redirects followed, no proxy from the environment (the proxy would do the resolving), only
    /// public addresses connected to, at most [`MAX_ANSWER_BYTES`] of an answer read.
    pub fn new(keys: VapidKeys, subject: String, timeout: Duration, guard: EndpointGuard) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(guard.resolver())
            .build()?;
        Ok(Self { http, keys, subject, guard })
    }

    fn build(&self, device: &Device, message: &Message) -> Result<web_push::WebPushMessage, String> {
        let payload = serde_json::to_vec(&message.payload).map_err(|e| e.to_string())?;
        let info = SubscriptionInfo::new(device.endpoint.as_str(), device.p256dh.as_str(), device.auth.as_str());
        let origin = origin(&device.endpoint).ok_or_else(|| format!("`{}` is not an http(s) URL", device.endpoint))?;
        let mut signature =
            VapidSignatureBuilder::from_base64(&self.keys.private_b64, &info).map_err(|e| e.to_string())?;
        signature.add_claim("sub", self.subject.as_str());
        // The audience is the push service's origin, port included (RFC 8292 §2).
        signature.add_claim("aud", origin.as_str());
        let signature = signature.build().map_err(|e| e.to_string())?;
        let mut builder = WebPushMessageBuilder::new(&info);
        builder.set_payload(ContentEncoding::Aes128Gcm, &payload);
        builder.set_ttl(message.ttl_seconds);
        builder.set_urgency(if message.urgent { Urgency::High } else { Urgency::Normal });
        builder.set_topic(message.topic.clone());
        builder.set_vapid_signature(signature);
        builder.build().map_err(|e| e.to_string())
    }
}

fn origin(endpoint: &str) -> Option<String> {
    let (scheme, rest) = endpoint.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{host}"))
}

#[async_trait::async_trait]
impl Channel for WebPush {
    fn name(&self) -> &'static str {
        "push"
    }

    async fn send(&self, to: &Address, message: &Message) -> SendOutcome {
        let Address::Device(device) = to else {
            return SendOutcome::Failed { status: None, error: "push needs a subscribed device".into() };
        };
        // The log names the push service, not the device's whole endpoint.
        let service = origin(&device.endpoint).unwrap_or_default();
        // Checked on every send, not only at subscription: rows written before the rule, and a literal
        // address, which never reaches the resolver.
        if let Err(refusal) = self.guard.check_url(&device.endpoint) {
            tracing::warn!(%service, ?refusal, "push endpoint not allowed; not sent");
            return SendOutcome::Failed { status: None, error: NOT_ALLOWED.into() };
        }
        let built = match self.build(device, message) {
            Ok(m) => m,
            Err(error) => {
                return SendOutcome::Failed { status: None, error: format!("cannot build the message: {error}") };
            }
        };
        let mut request = self.http.post(built.endpoint.to_string()).header("TTL", built.ttl.to_string());
        if let Some(urgency) = built.urgency {
            request = request.header("Urgency", urgency.to_string());
        }
        if let Some(topic) = built.topic {
            request = request.header("Topic", topic);
        }
        if let Some(payload) = built.payload {
            request = request
                .header("Content-Encoding", payload.content_encoding.to_str())
                .header("Content-Type", "application/octet-stream");
            for (name, value) in payload.crypto_headers {
                request = request.header(name, value);
            }
            request = request.body(payload.content);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return unsent(&service, &e),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // What the caller and the alert's history are told is only the class of the answer and its status:
        // the answer's text stays in the server's log, so a subscription cannot be used to read pages.
        match status {
            200..=299 => SendOutcome::Delivered { status },
            404 | 410 => SendOutcome::Gone { status },
            // 408: the service gave up waiting for our request (a loaded machine); it took nothing.
            408 | 429 | 500..=599 => {
                tracing::debug!(%service, status, "push service busy");
                SendOutcome::Retry {
                    status: Some(status),
                    error: format!("the push service is busy or unavailable (HTTP {status})"),
                    retry_after,
                }
            }
            300..=399 => {
                tracing::warn!(%service, status, "push service answered a redirect; not followed");
                SendOutcome::Failed {
                    status: Some(status),
                    error: format!("the push service answered with a redirect (HTTP {status}), which is not followed"),
                }
            }
            _ => {
                let answer = read_capped(response, MAX_ANSWER_BYTES).await;
                let said: String = String::from_utf8_lossy(&answer).chars().take(LOGGED_ANSWER_CHARS).collect();
                tracing::warn!(%service, status, answer = %said, "push service refused a message");
                SendOutcome::Failed {
                    status: Some(status),
                    error: format!("the push service refused the message (HTTP {status})"),
                }
            }
        }
    }
}

/// What a refused endpoint is recorded as.
const NOT_ALLOWED: &str = "address not allowed: the endpoint is not a push service on a public https address";

/// A send that got no answer, in classes (timed out, could not connect, address not allowed); the
/// error itself goes to the log.
fn unsent(service: &str, error: &reqwest::Error) -> SendOutcome {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<NotPublicAddress>() {
            tracing::warn!(%service, "push endpoint resolves to no public address; not sent");
            return SendOutcome::Failed { status: None, error: NOT_ALLOWED.into() };
        }
        source = e.source();
    }
    tracing::warn!(%service, error = ?error, "no answer from a push service");
    let error = if error.is_timeout() {
        "the push service did not answer in time (timed out)"
    } else if error.is_connect() {
        "could not connect to the push service"
    } else {
        "no answer from the push service"
    };
    SendOutcome::Retry { status: None, error: error.into(), retry_after: None }
}

/// At most `cap` bytes of the answer's body; whatever follows is never read (the connection is dropped).
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut read = Vec::new();
    while read.len() < cap {
        match response.chunk().await {
            Ok(Some(chunk)) => read.extend_from_slice(&chunk[..chunk.len().min(cap - read.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    read
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origin_keeps_the_port() {
        assert_eq!(origin("http://127.0.0.1:4000/push/abc").as_deref(), Some("http://127.0.0.1:4000"));
        assert_eq!(origin("https://fcm.googleapis.com/fcm/send/x").as_deref(), Some("https://fcm.googleapis.com"));
        assert_eq!(origin("ftp://x/y"), None);
    }
}
