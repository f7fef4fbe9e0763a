//! The words of an alert for e-mail and text messages: the same short content as the push
//! notification (who, what happened, what to do) and a link to the alert. Never the visit's address or
//! anything about the child: a message can be read on a lock screen or a shared inbox.

use homeward_shared::api::PushPayload;

/// The link that opens the alert (or the settings page, for a test message) in the app.
pub fn link(payload: &PushPayload, public_url: &str) -> String {
    format!("{}{}", public_url.trim_end_matches('/'), payload.url)
}

pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn email(payload: &PushPayload, public_url: &str) -> Email {
    let link = link(payload, public_url);
    let step = payload.step.map(|n| format!(" (step {n} of the escalation plan)")).unwrap_or_default();
    let text = format!(
        "{title}{step}\n\n{body}\n\nOpen the alert: {link}\n\nTake ownership in the app so everyone knows it is in hand.\n-- Homeward\n",
        title = payload.title,
        body = payload.body,
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h1 style=\"font-size:1.3em\">{title}</h1>\
         <p>{step}</p><p style=\"font-size:1.2em\"><strong>{body}</strong></p>\
         <p><a href=\"{href}\" style=\"font-size:1.2em\">Open the alert</a></p>\
         <p>Take ownership in the app so everyone knows it is in hand.</p></body></html>",
        title = escape(&payload.title),
        step = escape(step.trim()),
        body = escape(&payload.body),
        href = escape(&link),
    );
    Email { subject: payload.title.clone(), text, html }
}

/// A text message: title, instruction and link, kept within two SMS segments where it can be.
pub fn sms(payload: &PushPayload, public_url: &str) -> String {
    const MAX_CHARS: usize = 306;
    let link = link(payload, public_url);
    let head = format!("{}: ", payload.title);
    let room = MAX_CHARS.saturating_sub(head.chars().count() + link.chars().count() + 1);
    let mut body: String = payload.body.chars().take(room).collect();
    if body.chars().count() < payload.body.chars().count() {
        body.pop();
        body.push('…');
    }
    format!("{head}{body} {link}")
}

fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use homeward_shared::api::AlertKind;
    use uuid::Uuid;

    fn payload(body: &str) -> PushPayload {
        let id = Uuid::new_v4();
        PushPayload {
            alert_id: id,
            kind: AlertKind::Panic,
            purpose: "step".into(),
            step: Some(2),
            title: "PANIC: Sam <Smith>".into(),
            body: body.into(),
            url: format!("/alerts/{id}"),
        }
    }

    #[test]
    fn email_has_the_alert_the_instruction_and_a_link_and_escapes_html() {
        let p = payload("Call 999 & give the visit details");
        let e = email(&p, "https://homeward.example/");
        let link = format!("https://homeward.example/alerts/{}", p.alert_id);
        assert_eq!(e.subject, "PANIC: Sam <Smith>");
        assert!(e.text.contains("Call 999 & give the visit details") && e.text.contains(&link), "{}", e.text);
        assert!(e.text.contains("step 2"));
        assert!(e.html.contains("Sam &lt;Smith&gt;") && e.html.contains("Call 999 &amp; give"), "{}", e.html);
        assert!(e.html.contains(&format!("href=\"{link}\"")), "{}", e.html);
    }

    #[test]
    fn sms_stays_short_and_keeps_the_link() {
        let p = payload(&"Phone the worker now. ".repeat(40));
        let text = sms(&p, "https://h.example");
        assert!(text.chars().count() <= 306, "{} chars", text.chars().count());
        assert!(text.ends_with(&format!("https://h.example/alerts/{}", p.alert_id)), "{text}");
        assert!(text.starts_with("PANIC: Sam <Smith>: Phone the worker now."));
        assert!(text.contains('…'));
        let short = sms(&payload("Check in now."), "https://h.example");
        assert!(short.contains("Check in now. https://"), "{short}");
    }
}
