//! Desktop and mobile: a JSON file for storage, and the webview's own location and battery APIs through
//! Dioxus's JavaScript bridge (`document::eval`), which answers honestly when the webview has neither.
//! Web Push needs a browser's push service, so this build says notifications are unavailable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use homeward_shared::Coordinates;
use serde::Deserialize;

use homeward_shared::api::PushSubscriptionRequest;

use super::{
    Battery, BatteryLevel, Fix, Location, MemoryStorage, Network, Notifications, Permission, Platform, Storage,
};

/// Where the desktop app finds its server.
const SERVER_URL_VARIABLE: &str = "HOMEWARD_SERVER_URL";
const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:8080";

pub fn platform() -> Platform {
    let (storage, storage_warning): (Rc<dyn Storage>, Option<String>) = match FileStorage::open(data_file()) {
        Ok(storage) => (Rc::new(storage), None),
        Err(why) => (
            Rc::new(MemoryStorage::default()),
            Some(format!("Homeward cannot keep data on this device ({why}): anything not yet sent is lost on close.")),
        ),
    };
    Platform {
        storage,
        location: Rc::new(WebviewLocation),
        battery: Rc::new(WebviewBattery),
        network: Rc::new(AlwaysOnline),
        notifications: Rc::new(Unavailable(
            "Notifications: push alerts reach the web app on a phone; this app cannot receive them",
        )),
        api_base: std::env::var(SERVER_URL_VARIABLE).unwrap_or_else(|_| DEFAULT_SERVER_URL.into()),
        storage_warning,
    }
}

fn data_file() -> PathBuf {
    let base = std::env::var_os("HOMEWARD_CLIENT_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("homeward")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/homeward")))
        .unwrap_or_else(|| std::env::temp_dir().join("homeward"));
    base.join("client.json")
}

/// Every key in one small JSON file, rewritten whole (through a temporary file and a rename) on each change
/// so a crash leaves either the old or the new contents.
pub struct FileStorage {
    path: PathBuf,
    values: Mutex<BTreeMap<String, String>>,
}

impl FileStorage {
    pub fn open(path: PathBuf) -> Result<Self, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let values = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Self { path, values: Mutex::new(values) })
    }

    fn write(&self, values: &BTreeMap<String, String>) -> Result<(), String> {
        let text = serde_json::to_string(values).map_err(|e| e.to_string())?;
        let temporary = self.path.with_extension("json.tmp");
        std::fs::write(&temporary, text).map_err(|e| format!("{}: {e}", temporary.display()))?;
        std::fs::rename(&temporary, &self.path).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

impl Storage for FileStorage {
    fn get(&self, key: &str) -> Option<String> {
        self.values.lock().ok()?.get(key).cloned()
    }

    fn set(&self, key: &str, value: &str) -> Result<(), String> {
        let mut values = self.values.lock().map_err(|_| "storage is unusable".to_string())?;
        values.insert(key.to_string(), value.to_string());
        self.write(&values)
    }

    fn remove(&self, key: &str) {
        if let Ok(mut values) = self.values.lock()
            && values.remove(key).is_some()
        {
            let _ = self.write(&values);
        }
    }
}

#[derive(Deserialize)]
struct Answer<T> {
    value: Option<T>,
    error: Option<String>,
}

/// Run a script in the webview that returns `{value}` or `{error}`; a webview that never answers is an error.
async fn ask_webview<T: serde::de::DeserializeOwned>(script: &'static str, what: &str) -> Result<T, String> {
    let eval = dioxus::document::eval(script);
    match super::with_timeout(Duration::from_secs(20), eval.join::<Answer<T>>()).await {
        None => Err(format!("{what}: no answer from this device")),
        Some(Err(e)) => Err(format!("{what}: not available on this device ({e})")),
        Some(Ok(Answer { value: Some(value), .. })) => Ok(value),
        Some(Ok(Answer { error, .. })) => Err(error.unwrap_or_else(|| format!("{what}: not available on this device"))),
    }
}

struct WebviewLocation;

#[derive(Deserialize)]
struct Position {
    latitude: f64,
    longitude: f64,
    accuracy: f64,
}

impl Location for WebviewLocation {
    fn current(&self) -> LocalBoxFuture<'static, Result<Fix, String>> {
        Box::pin(async move {
            let position: Position = ask_webview(
                r#"
                if (!navigator.geolocation) return { error: "Location: not available on this device" };
                try {
                    const p = await new Promise((ok, fail) => navigator.geolocation.getCurrentPosition(ok, fail,
                        { enableHighAccuracy: true, timeout: 15000, maximumAge: 5000 }));
                    return { value: { latitude: p.coords.latitude, longitude: p.coords.longitude, accuracy: p.coords.accuracy } };
                } catch (e) {
                    const why = { 1: "permission denied", 2: "no fix available here", 3: "no fix yet (timed out)" }[e.code];
                    return { error: "Location: " + (why || e.message || "not available on this device") };
                }
                "#,
                "Location",
            )
            .await?;
            let coordinates = Coordinates::parse(position.latitude, position.longitude)
                .map_err(|e| format!("Location: {}", e.message))?;
            Ok(Fix { coordinates, accuracy_m: position.accuracy.max(0.0), at: chrono::Utc::now() })
        })
    }
}

struct WebviewBattery;

#[derive(Deserialize)]
struct BatteryReading {
    level: f64,
    charging: bool,
}

impl Battery for WebviewBattery {
    fn level(&self) -> LocalBoxFuture<'static, Result<BatteryLevel, String>> {
        Box::pin(async move {
            let reading: BatteryReading = ask_webview(
                r#"
                if (!navigator.getBattery) return { error: "Battery: not available on this device" };
                const b = await navigator.getBattery();
                return { value: { level: b.level, charging: b.charging } };
                "#,
                "Battery",
            )
            .await?;
            Ok(BatteryLevel {
                percent: (reading.level * 100.0).round().clamp(0.0, 100.0) as i64,
                charging: reading.charging,
            })
        })
    }
}

/// A service this device does not have; the message says so.
pub struct Unavailable(pub &'static str);

impl Location for Unavailable {
    fn current(&self) -> LocalBoxFuture<'static, Result<Fix, String>> {
        let why = self.0.to_string();
        Box::pin(async move { Err(why) })
    }
}

impl Battery for Unavailable {
    fn level(&self) -> LocalBoxFuture<'static, Result<BatteryLevel, String>> {
        let why = self.0.to_string();
        Box::pin(async move { Err(why) })
    }
}

impl Notifications for Unavailable {
    fn permission(&self) -> Permission {
        Permission::Unsupported(self.0.to_string())
    }

    fn subscribe(&self, _: String) -> LocalBoxFuture<'static, Result<PushSubscriptionRequest, String>> {
        let why = self.0.to_string();
        Box::pin(async move { Err(why) })
    }

    fn endpoint(&self) -> LocalBoxFuture<'static, Result<Option<String>, String>> {
        let why = self.0.to_string();
        Box::pin(async move { Err(why) })
    }
}

/// A network that never reports a change; failed requests still mark the app offline.
pub struct AlwaysOnline;

impl Network for AlwaysOnline {
    fn online(&self) -> bool {
        true
    }

    fn on_change(&self, _: Box<dyn Fn(bool)>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_storage_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("homeward-storage-{}", uuid::Uuid::new_v4()));
        let path = dir.join("client.json");
        let storage = FileStorage::open(path.clone()).unwrap();
        storage.set("homeward.queue", "[1,2]").unwrap();
        storage.set("other", "x").unwrap();
        storage.remove("other");
        drop(storage);
        let reopened = FileStorage::open(path).unwrap();
        assert_eq!(reopened.get("homeward.queue").as_deref(), Some("[1,2]"));
        assert_eq!(reopened.get("other"), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
