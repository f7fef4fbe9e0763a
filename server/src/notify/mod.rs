//! Getting alerts to people: the outbox of deliveries, the channels that carry them (Web Push, e-mail
//! over SMTP, SMS through an HTTP provider), and the loop that sends, retries, falls back to the next
//! channel and records every attempt.

pub mod deliverer;
pub mod email;
pub mod endpoint_guard;
pub mod outbox;
pub mod render;
pub mod sms;
pub mod web_push;

use std::sync::Arc;
use std::time::Duration;

use homeward_shared::api::PushPayload;
use homeward_shared::escalation::Channel as ChannelKind;

/// What a channel reports back for one message to one destination.
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

/// A browser subscribed to Web Push.
#[derive(Debug, Clone)]
pub struct Device {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// Where one message goes.
#[derive(Debug, Clone)]
pub enum Address {
    Device(Device),
    Email(String),
    Phone(String),
}

/// One message as a channel sends it: the notification's content, and how urgently.
#[derive(Debug, Clone)]
pub struct Message {
    pub payload: PushPayload,
    pub urgent: bool,
    pub ttl_seconds: u32,
    pub topic: String,
}

#[async_trait::async_trait]
pub trait Channel: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn send(&self, to: &Address, message: &Message) -> SendOutcome;
    /// A plain-text message that is not an alert (the audit log's signed daily head). Only e-mail
    /// carries one.
    async fn send_text(&self, _to: &Address, _subject: &str, _text: &str) -> SendOutcome {
        SendOutcome::Failed { status: None, error: format!("{} does not carry plain messages", self.name()) }
    }
}

/// The channels this deployment has configured. Push is always there when serving; e-mail and SMS
/// only when their settings are given.
#[derive(Clone, Default)]
pub struct Channels {
    pub push: Option<Arc<dyn Channel>>,
    pub email: Option<Arc<dyn Channel>>,
    pub sms: Option<Arc<dyn Channel>>,
}

impl Channels {
    pub fn get(&self, kind: ChannelKind) -> Option<&Arc<dyn Channel>> {
        match kind {
            ChannelKind::Push => self.push.as_ref(),
            ChannelKind::Email => self.email.as_ref(),
            ChannelKind::Sms => self.sms.as_ref(),
        }
    }

    pub fn configured(&self) -> Configured {
        Configured { push: self.push.is_some(), email: self.email.is_some(), sms: self.sms.is_some() }
    }
}

/// Which channels exist, without the senders: travels with every write transaction so the outbox knows
/// which channels it may queue for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Configured {
    pub push: bool,
    pub email: bool,
    pub sms: bool,
}

impl Default for Configured {
    /// Push only, as before other channels existed.
    fn default() -> Self {
        Self { push: true, email: false, sms: false }
    }
}

impl Configured {
    pub fn has(&self, kind: ChannelKind) -> bool {
        match kind {
            ChannelKind::Push => self.push,
            ChannelKind::Email => self.email,
            ChannelKind::Sms => self.sms,
        }
    }
}
