//! The server serves the web build of the client at `/`: its files with the types browsers insist on,
//! `index.html` for the app's own routes, the client's Content-Security-Policy, revalidation for the files
//! that change with every build, and a page saying how to build the client when there is none. The API
//! is unaffected.

use std::path::PathBuf;

use homeward_tests::{Backend, TestApp, low_risk_visit, spawn_app, spawn_app_shifted};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderMap};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                   img-src 'self' data: https://tile.openstreetmap.org https://*.tile.openstreetmap.org; connect-src 'self'; worker-src 'self'; \
                   manifest-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

const INDEX: &str = "<!doctype html><html><head><title>Homeward</title>\
                     <script type=\"module\" src=\"/assets/boot.js\"></script></head><body></body></html>";
const WASM: &[u8] = b"\0asm\x01\0\0\0";

/// A web build in a directory of its own, with a secret beside it that must never be served.
struct WebBuild {
    root: PathBuf,
    dist: PathBuf,
}

impl WebBuild {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("homeward-web-{}", Uuid::new_v4().simple()));
        let dist = root.join("dist");
        for dir in ["pkg", "assets", "icons"] {
            std::fs::create_dir_all(dist.join(dir)).expect("create the web build");
        }
        let files: &[(&str, &[u8])] = &[
            ("index.html", INDEX.as_bytes()),
            ("pkg/homeward_bg.wasm", WASM),
            ("pkg/homeward.js", b"export default function init() {}\n"),
            ("assets/boot.js", b"import init from '/pkg/homeward.js'; init();\n"),
            ("assets/app.css", b"body { margin: 0 }\n"),
            ("assets/app-0123456789abcdef.css", b"body { margin: 0 }\n"),
            ("sw.js", b"self.addEventListener('install', () => {});\n"),
            ("manifest.webmanifest", b"{\"name\": \"Homeward\"}\n"),
            ("icons/icon-192.png", b"\x89PNG\r\n\x1a\n"),
            (".env", b"SECRET=1\n"),
        ];
        for (path, bytes) in files {
            std::fs::write(dist.join(path), bytes).expect("write a web file");
        }
        std::fs::write(root.join("secret.txt"), b"outside the web dir").expect("write the secret");
        Self { root, dist }
    }
}

impl Drop for WebBuild {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn app_serving(build: &WebBuild) -> TestApp {
    let dist = build.dist.clone();
    spawn_app_shifted(Backend::Sqlite, move |settings| settings.web_dir = dist).await
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: impl reqwest::header::AsHeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn get(app: &TestApp, path: &str) -> Answer {
    request(app, reqwest::Method::GET, path).await
}

async fn request(app: &TestApp, method: reqwest::Method, path: &str) -> Answer {
    let response =
        reqwest::Client::new().request(method, format!("{}{path}", app.address)).send().await.expect("a response");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("a body").to_vec();
    Answer { status, headers, body }
}

/// The status line and body of a request sent exactly as written (HTTP clients tidy `..` away).
async fn raw_get(app: &TestApp, path: &str) -> (String, String) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let status = answer.lines().next().unwrap_or("").to_string();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn assert_is_index(answer: &Answer, path: &str) {
    assert_eq!(answer.status, StatusCode::OK, "{path}");
    assert_eq!(answer.header(CONTENT_TYPE), "text/html; charset=utf-8", "{path}");
    assert_eq!(answer.text(), INDEX, "{path} answers index.html");
    assert_eq!(answer.header(CONTENT_SECURITY_POLICY), CSP, "{path}");
    assert_eq!(answer.header(CACHE_CONTROL), "no-cache", "{path}: index.html is revalidated on every load");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_serves_index_html_with_the_clients_security_headers() {
    let build = WebBuild::new();
    let app = app_serving(&build).await;
    let root = get(&app, "/").await;
    assert_is_index(&root, "/");
    assert_eq!(root.header("x-content-type-options"), "nosniff");
    assert_eq!(root.header("x-frame-options"), "DENY");
    // The page tells no one where it is; only the map's tiles send its origin (`referrerpolicy` on each).
    assert_eq!(root.header("referrer-policy"), "no-referrer");
    assert!(root.header("etag").len() > 2, "an ETag, so revalidation is a cheap 304");
    let etag = root.header("etag").to_string();

    let revalidated = reqwest::Client::new()
        .get(format!("{}/", app.address))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("a response");
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);

    let head = request(&app, reqwest::Method::HEAD, "/").await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_routes_load_index_html() {
    let build = WebBuild::new();
    let app = app_serving(&build).await;
    let visit = format!("/visit/{}", Uuid::new_v4());
    let outcome = format!("/visit/{}/outcome", Uuid::new_v4());
    for path in ["/today", "/signin", "/plan", "/settings", visit.as_str(), outcome.as_str(), "/pkg/"] {
        assert_is_index(&get(&app, path).await, path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_have_the_types_browsers_insist_on() {
    let build = WebBuild::new();
    let app = app_serving(&build).await;

    let wasm = get(&app, "/pkg/homeward_bg.wasm").await;
    assert_eq!(wasm.status, StatusCode::OK);
    assert_eq!(wasm.header(CONTENT_TYPE), "application/wasm", "streaming compilation needs application/wasm");
    assert_eq!(wasm.body, WASM);
    assert_eq!(wasm.header(CONTENT_SECURITY_POLICY), CSP);
    assert_eq!(wasm.header(CACHE_CONTROL), "no-cache", "unhashed pkg files must match the index that loads them");

    for path in ["/pkg/homeward.js", "/assets/boot.js", "/sw.js"] {
        let js = get(&app, path).await;
        assert_eq!(js.status, StatusCode::OK, "{path}");
        assert_eq!(js.header(CONTENT_TYPE), "text/javascript; charset=utf-8", "{path}");
    }
    assert_eq!(get(&app, "/sw.js").await.header(CACHE_CONTROL), "no-cache", "a new service worker is seen at once");

    let manifest = get(&app, "/manifest.webmanifest").await;
    assert_eq!(manifest.status, StatusCode::OK);
    assert_eq!(manifest.header(CONTENT_TYPE), "application/manifest+json");

    let css = get(&app, "/assets/app.css").await;
    assert_eq!(css.header(CONTENT_TYPE), "text/css; charset=utf-8");
    assert_eq!(css.header(CACHE_CONTROL), "no-cache");
    let hashed = get(&app, "/assets/app-0123456789abcdef.css").await;
    assert_eq!(hashed.header(CACHE_CONTROL), "public, max-age=31536000, immutable");

    let icon = get(&app, "/icons/icon-192.png").await;
    assert_eq!(icon.header(CONTENT_TYPE), "image/png");
    assert!(icon.header(CACHE_CONTROL).starts_with("public"), "icons may be cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzipped_copy_is_sent_to_browsers_that_take_gzip() {
    let build = WebBuild::new();
    // The server does not look inside: any bytes stand for the compressed copy.
    let gz = b"\x1f\x8bpretend-gzip".to_vec();
    std::fs::write(build.dist.join("pkg/homeward_bg.wasm.gz"), &gz).expect("write the copy");
    let app = app_serving(&build).await;
    let http = reqwest::Client::new();
    let url = format!("{}/pkg/homeward_bg.wasm", app.address);

    let gzipped = http.get(&url).header("accept-encoding", "gzip, deflate, br").send().await.expect("a response");
    assert_eq!(gzipped.status(), StatusCode::OK);
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["content-type"], "application/wasm");
    // Caches keep the gzipped and plain copies apart (CORS adds `Origin` and friends to the list).
    let vary = gzipped.headers()["vary"].to_str().expect("ascii");
    assert!(vary.split(',').any(|v| v.trim().eq_ignore_ascii_case("accept-encoding")), "Vary: {vary}");
    assert_eq!(gzipped.headers()["content-security-policy"], CSP);
    assert_eq!(gzipped.bytes().await.expect("a body").to_vec(), gz);

    let identity = http.get(&url).header("accept-encoding", "identity").send().await.expect("a response");
    assert!(identity.headers().get("content-encoding").is_none());
    assert_eq!(identity.bytes().await.expect("a body").to_vec(), WASM);

    // A copy older than its file is stale (a build that did not rewrite it): never sent.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(build.dist.join("pkg/homeward_bg.wasm.gz"))
        .and_then(|f| f.set_modified(old))
        .expect("age the copy");
    let stale = http.get(&url).header("accept-encoding", "gzip").send().await.expect("a response");
    assert_eq!(stale.status(), StatusCode::OK);
    assert_ne!(stale.bytes().await.expect("a body").to_vec(), gz, "the stale copy is not sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_is_a_404_not_the_app() {
    let build = WebBuild::new();
    let app = app_serving(&build).await;
    for path in ["/pkg/missing.js", "/assets/missing.css", "/pkg/homeward_bg.wasm.map", "/.env"] {
        let missing = get(&app, path).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!missing.text().contains("<html"), "{path} must not answer HTML in the place of a file");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outside_the_web_dir_is_served() {
    let build = WebBuild::new();
    let app = app_serving(&build).await;
    for path in ["/../secret.txt", "/pkg/../../secret.txt", "/%2e%2e/secret.txt", "/pkg/%2e%2e/%2e%2e/secret.txt"] {
        let (status, body) = raw_get(&app, path).await;
        assert!(!body.contains("outside the web dir"), "{path} leaked a file: {status}");
        assert!(status.contains(" 404 ") || status.contains(" 400 "), "{path}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_unaffected() {
    let build = WebBuild::new();
    let app = app_serving(&build).await;

    for path in ["/api/v1/no-such-endpoint", "/api/no-such-thing", "/api"] {
        let missing = get(&app, path).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(missing.header(CONTENT_TYPE), "application/json", "{path}");
        let body: serde_json::Value = serde_json::from_slice(&missing.body).expect("the API's error body");
        assert_eq!(body["code"], "not_found", "{path}");
        assert_eq!(missing.header(CACHE_CONTROL), "no-store", "{path}");
    }

    let health = get(&app, "/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.header(CONTENT_TYPE), "application/json");
    assert_eq!(health.header(CACHE_CONTROL), "no-store");
    let document = get(&app, "/api/openapi.json").await;
    assert_eq!(document.status, StatusCode::OK);
    assert_eq!(document.header(CONTENT_TYPE), "application/json");

    // A whole API call through the typed client, and the API's answers are never cached.
    let school = app.school("Web Client Primary").await;
    let session = school.staff.api.plan_session(&low_risk_visit()).await.expect("plan");
    let path = format!("/api/v1/sessions/{}", session.id);
    let unauthenticated = get(&app, &path).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unauthenticated.header(CACHE_CONTROL), "no-store");

    // Writes to a path outside the API are not the app's either.
    let post = request(&app, reqwest::Method::POST, "/today").await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
    assert_eq!(post.header(CONTENT_TYPE), "application/json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_web_build_the_root_says_how_to_build_it() {
    // The tests' settings point the web dir at a directory that does not exist.
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/", "/today"] {
        let page = get(&app, path).await;
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(page.header(CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(page.header(CONTENT_SECURITY_POLICY), CSP);
        let text = page.text();
        assert!(text.contains("web client is not built"), "{path}: {text}");
        assert!(text.contains("./scripts/run") && text.contains("HOMEWARD_WEB_DIR"), "{path}: {text}");
    }
    assert_eq!(get(&app, "/pkg/homeward.js").await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK, "the API keeps working");
    assert_eq!(get(&app, "/api/openapi.json").await.status, StatusCode::OK);
}
