//! Web Push (RFC 8030) with aes128gcm payloads (RFC 8291) and VAPID (RFC 8292), through the `web-push`
//! crate for encryption and signing and `reqwest` for the request, every send under a timeout.

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::algorithms::ES256KeyPair;
use web_push::{ContentEncoding, SubscriptionInfo, Urgency, VapidSignatureBuilder, WebPushMessageBuilder};

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

pub struct WebPush {
    http: reqwest::Client,
    keys: VapidKeys,
    subject: String,
}

impl WebPush {
    pub fn new(keys: VapidKeys, subject: String, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(Self { http, keys, subject })
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
            Err(e) => return SendOutcome::Retry { status: None, error: format!("no answer: {e}"), retry_after: None },
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        match status {
            200..=299 => SendOutcome::Delivered { status },
            404 | 410 => SendOutcome::Gone { status },
            // 408: the service gave up waiting for our request (a loaded machine); it took nothing.
            408 | 429 | 500..=599 => SendOutcome::Retry {
                status: Some(status),
                error: format!("push service answered {status}"),
                retry_after,
            },
            _ => {
                let text = response.text().await.unwrap_or_default();
                SendOutcome::Failed {
                    status: Some(status),
                    error: format!(
                        "push service refused it ({status}): {}",
                        text.chars().take(200).collect::<String>()
                    ),
                }
            }
        }
    }
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
