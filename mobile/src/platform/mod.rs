//! What the phone, the browser or the desktop gives us: storage, location, battery, connection and
//! notifications, each behind a small trait so the app logic is the same everywhere and testable without
//! a device. No implementation pretends: where a reading cannot be had, it says why, and the screen
//! shows that.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use homeward_shared::api::PushSubscriptionRequest;
use homeward_shared::{Coordinates, Timestamp};
use serde::{Deserialize, Serialize};

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod web;

/// Small string values kept across restarts (web: `localStorage`; desktop and mobile: a JSON file).
pub trait Storage {
    fn get(&self, key: &str) -> Option<String>;
    /// Fails when the device refuses (storage full, private mode): the caller must tell the user.
    fn set(&self, key: &str, value: &str) -> Result<(), String>;
    fn remove(&self, key: &str);
}

/// A position fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub coordinates: Coordinates,
    pub accuracy_m: f64,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatteryLevel {
    pub percent: i64,
    pub charging: bool,
}

/// The one-shot position of the device. Errors are sentences for the screen.
pub trait Location {
    fn current(&self) -> LocalBoxFuture<'static, Result<Fix, String>>;
}

pub trait Battery {
    fn level(&self) -> LocalBoxFuture<'static, Result<BatteryLevel, String>>;
}

/// Whether the device believes it has a network, and a way to hear when that changes.
pub trait Network {
    fn online(&self) -> bool;
    fn on_change(&self, callback: Box<dyn Fn(bool)>);
}

#[derive(Debug, Clone, PartialEq, Eq)]
// `Denied` and `Prompt` come from the web implementation only.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub enum Permission {
    Granted,
    Denied,
    /// Not asked yet.
    Prompt,
    Unsupported(String),
}

impl Permission {
    pub fn describe(&self) -> String {
        match self {
            Permission::Granted => "allowed".into(),
            Permission::Denied => "blocked: allow notifications for this site in the browser's settings".into(),
            Permission::Prompt => "not asked yet: tap Enable notifications".into(),
            Permission::Unsupported(why) => why.clone(),
        }
    }
}

/// Web Push through the service worker.
pub trait Notifications {
    fn permission(&self) -> Permission;
    /// Ask for permission, register the service worker and subscribe with the server's VAPID key.
    fn subscribe(&self, vapid_public_key: String) -> LocalBoxFuture<'static, Result<PushSubscriptionRequest, String>>;
    /// This device's current push endpoint, if it is subscribed.
    fn endpoint(&self) -> LocalBoxFuture<'static, Result<Option<String>, String>>;
}

/// Everything the app needs from the device, provided once as context.
#[derive(Clone)]
pub struct Platform {
    pub storage: Rc<dyn Storage>,
    pub location: Rc<dyn Location>,
    pub battery: Rc<dyn Battery>,
    pub network: Rc<dyn Network>,
    pub notifications: Rc<dyn Notifications>,
    /// The server's root: the page's origin on the web.
    pub api_base: String,
    /// Set when storage is not persistent (for example the browser refuses `localStorage`).
    pub storage_warning: Option<String>,
}

impl Platform {
    /// The implementation for the platform this build targets.
    pub fn for_this_device() -> Self {
        #[cfg(target_arch = "wasm32")]
        return web::platform();
        #[cfg(not(target_arch = "wasm32"))]
        return native::platform();
    }

    /// A platform with nothing but memory, for tests: every reading says it is unavailable.
    #[cfg(test)]
    pub fn in_memory() -> Self {
        Self {
            storage: Rc::new(MemoryStorage::default()),
            location: Rc::new(native::Unavailable("Location: not available on this device")),
            battery: Rc::new(native::Unavailable("Battery: not available on this device")),
            network: Rc::new(native::AlwaysOnline),
            notifications: Rc::new(native::Unavailable("Notifications: not available on this device")),
            api_base: "http://127.0.0.1:8080".into(),
            storage_warning: None,
        }
    }
}

/// Storage in memory only: lost when the app closes.
#[derive(Default)]
pub struct MemoryStorage(RefCell<HashMap<String, String>>);

impl Storage for MemoryStorage {
    fn get(&self, key: &str) -> Option<String> {
        self.0.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &str) -> Result<(), String> {
        self.0.borrow_mut().insert(key.to_string(), value.to_string());
        Ok(())
    }

    fn remove(&self, key: &str) {
        self.0.borrow_mut().remove(key);
    }
}

/// Wait without blocking the interface.
pub async fn sleep(duration: std::time::Duration) {
    #[cfg(target_arch = "wasm32")]
    web::sleep(duration).await;
    #[cfg(not(target_arch = "wasm32"))]
    tokio::time::sleep(duration).await;
}

/// A link the user can save `text` from as a file: a `blob:` URL in the browser; `None` elsewhere (the
/// desktop and phone builds show the text instead).
pub fn download_url(text: &str, mime: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return web::download_url(text, mime);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (text, mime);
        None
    }
}

/// The first of `future` and a timeout.
pub async fn with_timeout<T>(duration: std::time::Duration, future: impl std::future::Future<Output = T>) -> Option<T> {
    use futures::future::{Either, select};
    let future = std::pin::pin!(future);
    let timer = std::pin::pin!(sleep(duration));
    match select(future, timer).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(_) => None,
    }
}

/// Decode base64url (with or without padding), as VAPID keys are written.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub fn base64url_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    for c in text.trim_end_matches('=').bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return Err(format!("`{}` is not base64url", c as char)),
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_decodes_padded_and_unpadded() {
        assert_eq!(base64url_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64url_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64url_decode("_-8").unwrap(), vec![0xff, 0xef]);
        assert!(base64url_decode("a b").is_err());
    }

    #[test]
    fn memory_storage_keeps_values() {
        let storage = MemoryStorage::default();
        storage.set("k", "v").unwrap();
        assert_eq!(storage.get("k").as_deref(), Some("v"));
        storage.remove("k");
        assert_eq!(storage.get("k"), None);
    }
}
