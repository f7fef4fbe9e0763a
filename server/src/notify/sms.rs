//! Text messages through an HTTP SMS provider: one POST per message, JSON or form-encoded, with the
//! provider's URL, credentials and field names from configuration. 2xx is delivered; 429 and 5xx are
//! retried (honouring `Retry-After`); any other answer is final.

use std::time::Duration;

use anyhow::Context;

use super::{Address, Channel, Message, SendOutcome, render};
use crate::configuration::{SmsFormat, SmsSettings};

pub struct Sms {
    http: reqwest::Client,
    url: String,
    settings: SmsSettings,
    extra: Vec<(String, String)>,
    public_url: String,
}

impl Sms {
    /// `None` when no provider is configured.
    pub fn from_settings(
        settings: &SmsSettings,
        public_url: String,
        timeout: Duration,
    ) -> anyhow::Result<Option<Self>> {
        let Some(url) = settings.sms_url.clone() else { return Ok(None) };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            anyhow::bail!("HOMEWARD_SMS_URL must be an http(s) URL");
        }
        let extra = form_urlencoded::parse(settings.sms_extra_fields.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let http =
            reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build().context("SMS client")?;
        Ok(Some(Self { http, url, settings: settings.clone(), extra, public_url }))
    }

    /// The fields of one message, in the provider's names.
    fn fields(&self, to: &str, text: String) -> Vec<(String, String)> {
        let s = &self.settings;
        let mut fields = self.extra.clone();
        fields.push((s.sms_to_field.clone(), to.to_string()));
        fields.push((s.sms_body_field.clone(), text));
        if let Some(from) = &s.sms_from {
            fields.push((s.sms_from_field.clone(), from.clone()));
        }
        fields
    }
}

#[async_trait::async_trait]
impl Channel for Sms {
    fn name(&self) -> &'static str {
        "sms"
    }

    async fn send(&self, to: &Address, message: &Message) -> SendOutcome {
        let Address::Phone(number) = to else {
            return SendOutcome::Failed { status: None, error: "SMS needs a phone number".into() };
        };
        let fields = self.fields(number, render::sms(&message.payload, &self.public_url));
        let mut request = self.http.post(&self.url);
        request = match self.settings.sms_format {
            SmsFormat::Json => {
                let body: serde_json::Map<String, serde_json::Value> =
                    fields.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
                request.json(&body)
            }
            SmsFormat::Form => request.form(&fields),
        };
        if let Some(user) = &self.settings.sms_username {
            request = request.basic_auth(user, self.settings.sms_password.as_deref());
        }
        if let Some(token) = &self.settings.sms_bearer_token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return SendOutcome::Retry {
                    status: None,
                    error: format!("no answer from the SMS provider: {e}"),
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if (200..=299).contains(&status) {
            return SendOutcome::Delivered { status };
        }
        let said: String = response.text().await.unwrap_or_default().chars().take(200).collect();
        match status {
            429 | 500..=599 => SendOutcome::Retry {
                status: Some(status),
                error: format!("the SMS provider answered {status}: {said}"),
                retry_after,
            },
            _ => SendOutcome::Failed {
                status: Some(status),
                error: format!("the SMS provider refused it ({status}): {said}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_use_the_configured_names_and_extras() {
        let settings = SmsSettings {
            sms_url: Some("http://127.0.0.1:9/send".into()),
            sms_to_field: "To".into(),
            sms_body_field: "Body".into(),
            sms_from_field: "From".into(),
            sms_from: Some("Homeward".into()),
            sms_extra_fields: Some("api_key=k%201&channel=sms".into()),
            ..SmsSettings::default()
        };
        let sms = Sms::from_settings(&settings, "https://h".into(), Duration::from_secs(1)).unwrap().unwrap();
        let fields = sms.fields("+447700900123", "hi".into());
        let want: Vec<(String, String)> =
            [("api_key", "k 1"), ("channel", "sms"), ("To", "+447700900123"), ("Body", "hi"), ("From", "Homeward")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(fields, want);
        assert!(Sms::from_settings(&SmsSettings::default(), String::new(), Duration::from_secs(1)).unwrap().is_none());
        let bad = SmsSettings { sms_url: Some("ftp://x".into()), ..SmsSettings::default() };
        assert!(Sms::from_settings(&bad, String::new(), Duration::from_secs(1)).is_err());
    }
}
