//! Serving the web build of the client (a PWA) at `/`.
//!
//! Files come from the web directory (`HOMEWARD_WEB_DIR` / `--web-dir`, `mobile/dist` by default), read
//! on every request so a rebuild needs no restart. A path with no file behind it that looks like a route
//! of the app (`/today`, `/visit/<id>`) gets `index.html`, so the client's router can take over; a
//! missing file (`/pkg/missing.js`) is a plain 404, never HTML in the place of a script. Paths under
//! `/api/` are never the client's: they answer the API's JSON 404. When the web directory has no
//! `index.html`, the client's pages answer with a short page saying how to build it, and the API keeps
//! working.
//!
//! A file with a gzipped copy beside it (`homeward_bg.wasm.gz`, written by the build) is sent as that
//! copy to browsers that accept gzip, so the largest files cost no compression per request; other files
//! are compressed on the fly.
//!
//! Every response here carries the client's Content-Security-Policy. `index.html`, the service worker
//! and the manifest must be revalidated on every load (`no-cache`, answered by a 304 when unchanged), so a
//! new build reaches phones at once; so must the unhashed `pkg/` files, which have to match the
//! `index.html` that loads them. Only names carrying a content hash are cached for good.

use std::path::Path;

use actix_files::NamedFile;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentEncoding, HeaderValue};
use actix_web::middleware::Compress;
use actix_web::{HttpRequest, HttpResponse, guard, mime, web};

use crate::error::ApiError;
use crate::state::AppState;

/// The policy for every page and file of the web client, with OpenStreetMap's tiles (the board's map).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data: https://tile.openstreetmap.org https://*.tile.openstreetmap.org; \
     connect-src 'self'; worker-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'self'; \
     form-action 'self'";

/// The policy with the configured tile server's origin allowed for images, when it is not OpenStreetMap.
pub fn content_security_policy(map_tile_url: &str) -> String {
    match tile_origin(map_tile_url) {
        Some(origin) if !origin.ends_with("tile.openstreetmap.org") => CONTENT_SECURITY_POLICY.replacen(
            "https://*.tile.openstreetmap.org;",
            &format!("https://*.tile.openstreetmap.org {origin};"),
            1,
        ),
        _ => CONTENT_SECURITY_POLICY.to_string(),
    }
}

/// `https://tiles.example.org` from `https://tiles.example.org/{z}/{x}/{y}.png`; `None` for anything that
/// is not a plain http(s) origin (which then never reaches the policy).
fn tile_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split('/').next()?;
    let valid = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    valid.then(|| format!("{scheme}://{host}"))
}

/// Revalidate on every use: the file may change with any build.
const REVALIDATE: &str = "no-cache";
/// A name that carries its content's hash never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Icons change rarely and a stale one does no harm.
const ICONS: &str = "public, max-age=86400";

/// Registers the catch-all resource for the client, registered after every API route. GET and HEAD only; any
/// other method on a path the API does not know is the API's 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{tail:.*}")
            .wrap(Compress::default())
            .route(web::route().guard(guard::Any(guard::Get()).or(guard::Head())).to(serve))
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("endpoint"))
}

/// One GET or HEAD outside the API.
pub async fn serve(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let path = req.path();
    if path == "/api" || path.starts_with("/api/") {
        return Err(ApiError::NotFound("endpoint"));
    }
    let Some(segments) = safe_segments(req.match_info().query("tail")) else {
        return Ok(plain(StatusCode::NOT_FOUND, "not found"));
    };
    let web_dir = &state.settings.web_dir;

    if !segments.is_empty() {
        let file = segments.iter().fold(web_dir.clone(), |p, s| p.join(s));
        if is_file(&file).await {
            return serve_file(&req, &file, &segments).await;
        }
        // A name with an extension is a file the app asked for, not one of its routes.
        if segments.last().is_some_and(|last| last.contains('.')) {
            return Ok(plain(StatusCode::NOT_FOUND, "not found"));
        }
    }

    let index = web_dir.join("index.html");
    if is_file(&index).await {
        return serve_file(&req, &index, &["index.html"]).await;
    }
    Ok(not_built(web_dir))
}

/// The request path as directory entries, or `None` if it tries to leave the web directory or to
/// reach a hidden file.
fn safe_segments(tail: &str) -> Option<Vec<&str>> {
    let segments: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
    let unsafe_segment = |s: &&str| s.starts_with('.') || s.contains(['\\', '\0', ':']);
    if segments.iter().any(unsafe_segment) { None } else { Some(segments) }
}

async fn is_file(path: &Path) -> bool {
    tokio::fs::metadata(path).await.map(|m| m.is_file()).unwrap_or(false)
}

async fn serve_file(req: &HttpRequest, file: &Path, segments: &[&str]) -> Result<HttpResponse, ApiError> {
    let name = segments.last().copied().unwrap_or("index.html");
    let gzipped = match accepts_gzip(req) {
        true => precompressed(file).await,
        false => None,
    };
    let opened = match &gzipped {
        Some(gz) => NamedFile::open(gz).map(|f| f.set_content_encoding(ContentEncoding::Gzip)),
        None => NamedFile::open(file),
    };
    let named = match opened {
        Ok(named) => named,
        // Removed between the check and the open (a rebuild in progress).
        Err(_) => return Ok(plain(StatusCode::NOT_FOUND, "not found")),
    };
    let mut named = named.use_etag(true).use_last_modified(true).disable_content_disposition();
    if let Some(content_type) = content_type(name) {
        named = named.set_content_type(content_type);
    }
    let mut response = named.into_response(req);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control(segments)));
    let policy = req
        .app_data::<web::Data<AppState>>()
        .map_or_else(|| CONTENT_SECURITY_POLICY.to_string(), |s| content_security_policy(&s.settings.map_tile_url));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Ok(response)
}

/// Whether the request's `Accept-Encoding` takes gzip (and does not refuse it with `q=0`).
fn accepts_gzip(req: &HttpRequest) -> bool {
    let Some(accepted) = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    accepted.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let refused = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0)));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// `FILE.gz` if it exists and is at least as new as `FILE` (a stale copy is ignored).
async fn precompressed(file: &Path) -> Option<std::path::PathBuf> {
    let mut name = file.file_name()?.to_os_string();
    name.push(".gz");
    let gz = file.with_file_name(name);
    let (original, copy) = (tokio::fs::metadata(file).await.ok()?, tokio::fs::metadata(&gz).await.ok()?);
    let fresh = match (original.modified(), copy.modified()) {
        (Ok(original), Ok(copy)) => copy >= original,
        _ => false,
    };
    (copy.is_file() && fresh).then_some(gz)
}

/// The types browsers insist on: `application/wasm` for streaming compilation, a JavaScript type for
/// module scripts and the service worker, and the manifest's own type.
fn content_type(name: &str) -> Option<mime::Mime> {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    let value = match extension.as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => return None,
    };
    value.parse().ok()
}

fn cache_control(segments: &[&str]) -> &'static str {
    let name = segments.last().copied().unwrap_or("");
    if matches!(name, "index.html" | "sw.js") || name.ends_with(".webmanifest") {
        REVALIDATE
    } else if segments.first() == Some(&"icons") {
        ICONS
    } else if has_content_hash(name) {
        IMMUTABLE
    } else {
        REVALIDATE
    }
}

/// `app-3f2a9c1b0d.css` or `homeward.3f2a9c1b0d.wasm`: a part of the stem of at least 10 hex digits.
fn has_content_hash(name: &str) -> bool {
    let stem = name.split_once('.').map(|(stem, _)| stem).unwrap_or(name);
    let after_dot = name.split('.').skip(1).collect::<Vec<_>>();
    stem.split(['-', '_']).chain(after_dot).any(|part| part.len() >= 10 && part.chars().all(|c| c.is_ascii_hexdigit()))
}

fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

/// The page `/` shows when there is no web build to serve.
fn not_built(web_dir: &Path) -> HttpResponse {
    let dir = escape(&web_dir.display().to_string());
    let body = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Homeward: the web client is not built</title>\n</head>\n<body>\n\
         <h1>The Homeward web client is not built</h1>\n\
         <p>This server serves the web client from <code>{dir}</code>, which has no <code>index.html</code>.</p>\n\
         <p>To build it, run <code>./scripts/run</code> from the repository: it builds the client into \
         <code>mobile/dist</code> and starts the server. To serve a build kept elsewhere, set \
         <code>HOMEWARD_WEB_DIR</code> or pass <code>--web-dir</code>.</p>\n\
         <p>The API is working: see <a href=\"/api/openapi.json\">/api/openapi.json</a>.</p>\n\
         </body>\n</html>\n"
    );
    HttpResponse::ServiceUnavailable()
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::CACHE_CONTROL, REVALIDATE))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_web_directory() {
        assert_eq!(safe_segments(""), Some(vec![]));
        assert_eq!(safe_segments("pkg/homeward.js"), Some(vec!["pkg", "homeward.js"]));
        assert_eq!(safe_segments("visit//abc/"), Some(vec!["visit", "abc"]));
        assert_eq!(safe_segments("../etc/passwd"), None);
        assert_eq!(safe_segments("pkg/../../x"), None);
        assert_eq!(safe_segments(".git/config"), None);
        assert_eq!(safe_segments("a\\..\\b"), None);
        assert_eq!(safe_segments("C:/x"), None);
    }

    #[test]
    fn revalidated_unless_hashed() {
        assert_eq!(cache_control(&["index.html"]), REVALIDATE);
        assert_eq!(cache_control(&["sw.js"]), REVALIDATE);
        assert_eq!(cache_control(&["manifest.webmanifest"]), REVALIDATE);
        assert_eq!(cache_control(&["pkg", "homeward_bg.wasm"]), REVALIDATE);
        assert_eq!(cache_control(&["assets", "app.css"]), REVALIDATE);
        assert_eq!(cache_control(&["icons", "icon-192.png"]), ICONS);
        assert_eq!(cache_control(&["assets", "app-3f2a9c1b0d.css"]), IMMUTABLE);
        assert_eq!(cache_control(&["pkg", "homeward.3f2a9c1b0d4e.wasm"]), IMMUTABLE);
    }

    #[test]
    fn gzip_when_accepted() {
        let accepts = |value: &str| {
            let req =
                actix_web::test::TestRequest::get().insert_header((header::ACCEPT_ENCODING, value)).to_http_request();
            accepts_gzip(&req)
        };
        assert!(accepts("gzip, deflate, br, zstd"));
        assert!(accepts("br;q=1.0, gzip;q=0.8"));
        assert!(accepts("*"));
        assert!(!accepts("br, zstd"));
        assert!(!accepts("gzip;q=0, br"));
        assert!(!accepts("identity"));
        assert!(!accepts_gzip(&actix_web::test::TestRequest::get().to_http_request()));
    }

    #[test]
    fn browser_critical_types() {
        assert_eq!(content_type("homeward_bg.wasm").map(|m| m.to_string()).as_deref(), Some("application/wasm"));
        assert_eq!(
            content_type("homeward.js").map(|m| m.essence_str().to_string()).as_deref(),
            Some("text/javascript")
        );
        assert_eq!(
            content_type("manifest.webmanifest").map(|m| m.to_string()).as_deref(),
            Some("application/manifest+json")
        );
        assert_eq!(content_type("README"), None);
    }
}
