//! An SMTP server for the black-box tests, on loopback: speaks enough of RFC 5321 for a real client
//! (EHLO/HELO, MAIL FROM, RCPT TO, DATA with dot-stuffing, RSET, NOOP, QUIT) and records every message
//! it accepts. It can be told to refuse recipients with a given reply code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent: headers, a blank line, the body (transfer-encoded as the client chose).
    pub data: String,
    pub at: DateTime<Utc>,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        head.lines().find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
        })
    }

    /// The whole message with quoted-printable soft breaks and escapes undone, for searching.
    pub fn decoded(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    /// Refuse every RCPT TO with this reply code (e.g. 550, or 451 for a temporary failure).
    refuse_recipients: Option<u16>,
    /// Every RCPT TO seen, accepted or not.
    recipients_tried: Vec<String>,
}

/// Cheap to clone; the listener stops when the test's runtime ends.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the SMTP sink binds a port");
        let port = listener.local_addr().expect("an address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = session(socket, state).await;
                });
            }
        });
        SmtpSink { port, state }
    }

    /// The URL to give the server as `HOMEWARD_SMTP_URL` (plain SMTP: loopback only).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn refuse_recipients(&self, code: Option<u16>) {
        self.state.lock().expect("sink state").refuse_recipients = code;
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().expect("sink state").mails.clone()
    }

    pub fn recipients_tried(&self) -> Vec<String> {
        self.state.lock().expect("sink state").recipients_tried.clone()
    }

    pub fn mails_to(&self, address: &str) -> Vec<Mail> {
        self.mails().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address))).collect()
    }

    /// Wait until `pred` holds for the mails so far, or `timeout` passes; returns the mails either way.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Mail]) -> bool) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if pred(&mails) || tokio::time::Instant::now() >= deadline {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(open), Some(close)) if close > open => arg[open + 1..close].to_string(),
        _ => arg.to_string(),
    }
}

async fn session(socket: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']).to_string();
        let upper = command.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
        } else if upper.starts_with("HELO") {
            "250 sink.test\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command[10..]);
            to.clear();
            "250 OK\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = address(&command[8..]);
            let refuse = {
                let mut s = state.lock().expect("sink state");
                s.recipients_tried.push(rcpt.clone());
                s.refuse_recipients
            };
            match refuse {
                Some(code) => format!("{code} not accepted here\r\n"),
                None => {
                    to.push(rcpt);
                    "250 OK\r\n".into()
                }
            }
        } else if upper == "DATA" {
            if to.is_empty() {
                "503 no valid recipients\r\n".into()
            } else {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line);
                    data.push_str(unstuffed);
                }
                state.lock().expect("sink state").mails.push(Mail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                    at: Utc::now(),
                });
                "250 queued\r\n".into()
            }
        } else if upper == "RSET" {
            to.clear();
            "250 OK\r\n".into()
        } else if upper == "NOOP" {
            "250 OK\r\n".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            "502 not implemented\r\n".into()
        };
        write.write_all(reply.as_bytes()).await?;
    }
}
