//! Getting alerts to people: the outbox of deliveries, the channels that carry them (Web Push today),
//! and the loop that sends, retries and records every attempt.

pub mod deliverer;
pub mod outbox;
pub mod web_push;

use std::time::Duration;

/// What a channel reports back for one message to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Delivered {
        status: u16,
    },
    /// The endpoint no longer exists (404/410): forget the device.
    Gone {
        status: u16,
    },
    /// Worth trying again (429, 5xx, timeouts), after at least `retry_after` if the service said so.
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    /// Will never work (bad keys, 4xx): record and move on.
    Failed {
        status: Option<u16>,
        error: String,
    },
}

/// A device to send to.
#[derive(Debug, Clone)]
pub struct Device {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// One message as the channel sends it.
#[derive(Debug, Clone)]
pub struct Message {
    pub payload: Vec<u8>,
    pub urgent: bool,
    pub ttl_seconds: u32,
    pub topic: String,
}

#[async_trait::async_trait]
pub trait Channel: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn send(&self, device: &Device, message: &Message) -> SendOutcome;
}
