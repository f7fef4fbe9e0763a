//! E-mail over SMTP (the `lettre` crate): a plain-text and an HTML part with the alert, the instruction
//! and a link to it. SMTP 4xx replies and lost connections are retried; 5xx replies are final.

use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Address, Channel, Message, SendOutcome, render};
use crate::configuration::EmailSettings;

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
}

impl Email {
    /// `None` when no SMTP server is configured.
    pub fn from_settings(
        settings: &EmailSettings,
        public_url: String,
        timeout: Duration,
    ) -> anyhow::Result<Option<Self>> {
        let Some(url) = settings.smtp_url.as_deref() else { return Ok(None) };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("HOMEWARD_SMTP_URL is not a valid smtp:// or smtps:// URL")?
            .timeout(Some(timeout))
            .build();
        let from = settings.smtp_from.as_deref().unwrap_or("Homeward <alerts@homeward.invalid>");
        let from: Mailbox = from.parse().with_context(|| format!("HOMEWARD_SMTP_FROM `{from}` is not an address"))?;
        Ok(Some(Self { transport, from, public_url }))
    }
}

#[async_trait::async_trait]
impl Channel for Email {
    fn name(&self) -> &'static str {
        "email"
    }

    async fn send(&self, to: &Address, message: &Message) -> SendOutcome {
        let Address::Email(address) = to else {
            return SendOutcome::Failed { status: None, error: "e-mail needs an e-mail address".into() };
        };
        let mailbox: Mailbox = match address.parse() {
            Ok(m) => m,
            Err(e) => return SendOutcome::Failed { status: None, error: format!("`{address}` cannot be mailed: {e}") },
        };
        let content = render::email(&message.payload, &self.public_url);
        let builder = lettre::Message::builder().from(self.from.clone()).to(mailbox).subject(content.subject);
        let email = match builder.multipart(MultiPart::alternative_plain_html(content.text, content.html)) {
            Ok(e) => e,
            Err(e) => return SendOutcome::Failed { status: None, error: format!("cannot build the e-mail: {e}") },
        };
        self.deliver(email).await
    }

    async fn send_text(&self, to: &Address, subject: &str, text: &str) -> SendOutcome {
        let Address::Email(address) = to else {
            return SendOutcome::Failed { status: None, error: "e-mail needs an e-mail address".into() };
        };
        let mailbox: Mailbox = match address.parse() {
            Ok(m) => m,
            Err(e) => return SendOutcome::Failed { status: None, error: format!("`{address}` cannot be mailed: {e}") },
        };
        let builder = lettre::Message::builder().from(self.from.clone()).to(mailbox).subject(subject);
        match builder.singlepart(lettre::message::SinglePart::plain(text.to_string())) {
            Ok(email) => self.deliver(email).await,
            Err(e) => SendOutcome::Failed { status: None, error: format!("cannot build the e-mail: {e}") },
        }
    }
}

impl Email {
    async fn deliver(&self, email: lettre::Message) -> SendOutcome {
        match self.transport.send(email).await {
            Ok(response) => SendOutcome::Delivered { status: u16::from(response.code()) },
            Err(e) => {
                let status = e.status().map(u16::from);
                if e.is_permanent() {
                    SendOutcome::Failed { status, error: format!("the mail server refused it: {e}") }
                } else {
                    SendOutcome::Retry {
                        status,
                        error: format!("the mail server did not take it: {e}"),
                        retry_after: None,
                    }
                }
            }
        }
    }
}
