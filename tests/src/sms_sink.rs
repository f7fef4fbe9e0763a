//! An SMS provider for the black-box tests, on loopback: takes `POST /send` in JSON or form encoding,
//! records every request (headers and fields) with the status it answered, and answers from a script
//! (default 200), so a test can make it fail.

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// One request to the provider.
#[derive(Debug, Clone)]
pub struct SmsRequest {
    pub content_type: String,
    pub authorization: Option<String>,
    /// The body's fields, whichever encoding was used.
    pub fields: BTreeMap<String, String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    requests: Vec<SmsRequest>,
    script: VecDeque<u16>,
    always: Option<u16>,
}

struct ServerGuard(ServerHandle);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        drop(self.0.stop(false));
    }
}

#[derive(Clone)]
pub struct SmsSink {
    pub url: String,
    state: Arc<Mutex<State>>,
    _server: Arc<ServerGuard>,
}

async fn send(req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>) -> HttpResponse {
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(String::from);
    let fields: BTreeMap<String, String> = if content_type.starts_with("application/json") {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body)
            .map(|m| m.into_iter().map(|(k, v)| (k, v.as_str().map(String::from).unwrap_or(v.to_string()))).collect())
            .unwrap_or_default()
    } else {
        form_fields(&body)
    };
    let mut s = state.lock().expect("sink state");
    let status = s.script.pop_front().or(s.always).unwrap_or(200);
    s.requests.push(SmsRequest { content_type, authorization, fields, status });
    let code = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    HttpResponse::build(code).json(serde_json::json!({ "status": status }))
}

fn form_fields(body: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(raw: &str) -> String {
    let raw = raw.replace('+', " ");
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&raw[i + 1..i + 3], 16)
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

impl SmsSink {
    pub async fn start() -> SmsSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the SMS sink binds a port");
        let address = listener.local_addr().expect("an address");
        let state = web::Data::new(Mutex::new(State::default()));
        let shared = state.clone().into_inner();
        let server = HttpServer::new(move || App::new().app_data(state.clone()).route("/send", web::post().to(send)))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("the SMS sink listens")
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        SmsSink { url: format!("http://{address}/send"), state: shared, _server: Arc::new(ServerGuard(handle)) }
    }

    /// Answer the next requests with these statuses, then as before.
    pub fn script(&self, statuses: &[u16]) {
        self.state.lock().expect("sink state").script.extend(statuses);
    }

    /// Answer every request with `status` (`None`: 200 again).
    pub fn always(&self, status: Option<u16>) {
        self.state.lock().expect("sink state").always = status;
    }

    pub fn requests(&self) -> Vec<SmsRequest> {
        self.state.lock().expect("sink state").requests.clone()
    }

    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[SmsRequest]) -> bool) -> Vec<SmsRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if pred(&requests) || tokio::time::Instant::now() >= deadline {
                return requests;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_decoded() {
        let fields = form_fields(b"To=%2B447700900123&Body=Call+999+now%21&From=Homeward");
        assert_eq!(fields["To"], "+447700900123");
        assert_eq!(fields["Body"], "Call 999 now!");
        assert_eq!(fields["From"], "Homeward");
    }
}
