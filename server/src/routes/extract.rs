//! JSON bodies and query strings that say which field is wrong: serde's own messages do not name the
//! field for a wrong type or an unknown value, so these track the path as they deserialise.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body; a bad one is a 400 naming the field (`risk_assessment.overall: unknown variant ...`).
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

fn describe<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> String {
    let path = e.path().to_string();
    if path == "." || path.is_empty() { e.inner().to_string() } else { format!("{path}: {}", e.inner()) }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        let limit = req.app_data::<web::Data<AppState>>().map_or(256 * 1024, |s| s.settings.max_body_kb * 1024);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType("send JSON with `Content-Type: application/json`".into()));
            }
            let bytes = body.await.map_err(|_| ApiError::PayloadTooLarge("the request body is too large".into()))?;
            if bytes.len() > limit {
                return Err(ApiError::PayloadTooLarge(format!("the request body is larger than {} KB", limit / 1024)));
            }
            if let Some(place) = nul_in(&bytes) {
                return Err(ApiError::bad_request(
                    "invalid_json",
                    format!("the request body is not valid: {place}: text cannot contain the NUL character (U+0000)"),
                ));
            }
            let mut de = serde_json::Deserializer::from_slice(&bytes);
            let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                ApiError::bad_request("invalid_json", format!("the request body is not valid: {}", describe(e)))
            })?;
            de.end()
                .map_err(|e| ApiError::bad_request("invalid_json", format!("the request body is not valid: {e}")))?;
            Ok(Json(value))
        })
    }
}

/// Where a JSON body holds the NUL character, if it does. PostgreSQL cannot store U+0000 in text, so such
/// a string would fail deep in a handler as a 500 (and SQLite would store it): it is refused up front, on
/// both databases alike. Only `\u0000` can put it in valid JSON, so other bodies are not parsed twice.
fn nul_in(bytes: &[u8]) -> Option<String> {
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    nul_at(&value, String::new()).map(|path| if path.is_empty() { "the body".into() } else { path })
}

fn nul_at(value: &serde_json::Value, path: String) -> Option<String> {
    match value {
        serde_json::Value::String(s) => s.contains('\0').then_some(path),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| nul_at(item, format!("{path}[{i}]")))
        }
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, field)| {
            let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            if key.contains('\0') { Some(here) } else { nul_at(field, here) }
        }),
        _ => None,
    }
}

/// A query string; a bad one is a 400 naming the parameter.
pub struct Query<T>(pub T);

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(req.query_string()));
        std::future::ready(
            serde_path_to_error::deserialize(de).map(Query).map_err(|e| {
                ApiError::bad_request("invalid_query", format!("the query is not valid: {}", describe(e)))
            }),
        )
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}
