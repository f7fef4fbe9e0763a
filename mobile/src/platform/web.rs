//! The browser: `localStorage`, the Geolocation and Battery Status APIs, `navigator.onLine`, and Web
//! Push through the service worker at `/sw.js`. Everything goes through web-sys: the server's
//! Content-Security-Policy forbids `eval`, so `document::eval` is not used here.

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use homeward_shared::Coordinates;
use homeward_shared::api::PushSubscriptionRequest;
use js_sys::{Function, JSON, Promise, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::{
    Battery, BatteryLevel, Fix, Location, MemoryStorage, Network, Notifications, Permission, Platform, Storage,
};

pub fn platform() -> Platform {
    let window = web_sys::window();
    let api_base = window.as_ref().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    let local = window.as_ref().and_then(|w| w.local_storage().ok().flatten());
    let (storage, storage_warning): (Rc<dyn Storage>, Option<String>) = match local {
        Some(storage) => (Rc::new(LocalStorage(storage)), None),
        None => (
            Rc::new(MemoryStorage::default()),
            Some(
                "This browser does not let Homeward keep data: anything not yet sent is lost if the page closes."
                    .into(),
            ),
        ),
    };
    Platform {
        storage,
        location: Rc::new(BrowserLocation),
        battery: Rc::new(BrowserBattery),
        network: Rc::new(BrowserNetwork),
        notifications: Rc::new(WebPush),
        api_base,
        storage_warning,
    }
}

pub async fn sleep(duration: std::time::Duration) {
    let millis = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
    let promise = Promise::new(&mut |resolve: Function, _reject: Function| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, millis);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// A sentence from a JavaScript error value.
fn describe(value: &JsValue) -> String {
    Reflect::get(value, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

fn property(target: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(target, &JsValue::from_str(name)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

struct LocalStorage(web_sys::Storage);

impl Storage for LocalStorage {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get_item(key).ok().flatten()
    }

    fn set(&self, key: &str, value: &str) -> Result<(), String> {
        self.0.set_item(key, value).map_err(|e| format!("the browser refused to save: {}", describe(&e)))
    }

    fn remove(&self, key: &str) {
        let _ = self.0.remove_item(key);
    }
}

struct BrowserLocation;

impl Location for BrowserLocation {
    fn current(&self) -> LocalBoxFuture<'static, Result<Fix, String>> {
        Box::pin(async move {
            let window = web_sys::window().ok_or("Location: not available here")?;
            let geolocation =
                window.navigator().geolocation().map_err(|_| "Location: not available on this device".to_string())?;
            let promise = Promise::new(&mut |resolve: Function, reject: Function| {
                let fail = reject.clone();
                let ok = Closure::once_into_js(move |position: JsValue| {
                    let _ = resolve.call1(&JsValue::NULL, &position);
                });
                let err = Closure::once_into_js(move |error: JsValue| {
                    let _ = reject.call1(&JsValue::NULL, &error);
                });
                let options = web_sys::PositionOptions::new();
                options.set_enable_high_accuracy(true);
                options.set_timeout(15_000);
                options.set_maximum_age(5_000);
                if let Err(e) = geolocation.get_current_position_with_error_callback_and_options(
                    ok.unchecked_ref(),
                    Some(err.unchecked_ref()),
                    &options,
                ) {
                    let _ = fail.call1(&JsValue::NULL, &e);
                }
            });
            let position = JsFuture::from(promise).await.map_err(|e| position_error(&e))?;
            let coords = property(&position, "coords").ok_or("Location: the browser gave no coordinates")?;
            let number = |name: &str| property(&coords, name).and_then(|v| v.as_f64());
            let (Some(latitude), Some(longitude)) = (number("latitude"), number("longitude")) else {
                return Err("Location: the browser gave no coordinates".into());
            };
            let coordinates =
                Coordinates::parse(latitude, longitude).map_err(|e| format!("Location: {}", e.message))?;
            let accuracy_m = number("accuracy").filter(|a| a.is_finite() && *a >= 0.0).unwrap_or(0.0);
            Ok(Fix { coordinates, accuracy_m, at: chrono::Utc::now() })
        })
    }
}

fn position_error(error: &JsValue) -> String {
    match property(error, "code").and_then(|c| c.as_f64()).map(|c| c as i64) {
        Some(1) => "Location: permission denied; allow location for this site".into(),
        Some(2) => "Location: no fix available here".into(),
        Some(3) => "Location: no fix yet (timed out)".into(),
        _ => format!("Location: {}", describe(error)),
    }
}

struct BrowserBattery;

impl Battery for BrowserBattery {
    fn level(&self) -> LocalBoxFuture<'static, Result<BatteryLevel, String>> {
        Box::pin(async move {
            let unavailable = || "Battery: not available on this device".to_string();
            let navigator: JsValue = web_sys::window().ok_or_else(unavailable)?.navigator().into();
            let get_battery = property(&navigator, "getBattery")
                .and_then(|f| f.dyn_into::<Function>().ok())
                .ok_or_else(unavailable)?;
            let promise = get_battery
                .call0(&navigator)
                .ok()
                .and_then(|p| p.dyn_into::<Promise>().ok())
                .ok_or_else(unavailable)?;
            let manager = JsFuture::from(promise).await.map_err(|e| format!("Battery: {}", describe(&e)))?;
            let level = property(&manager, "level").and_then(|l| l.as_f64()).ok_or_else(unavailable)?;
            let charging = property(&manager, "charging").and_then(|c| c.as_bool()).unwrap_or(false);
            Ok(BatteryLevel { percent: (level * 100.0).round().clamp(0.0, 100.0) as i64, charging })
        })
    }
}

struct BrowserNetwork;

impl Network for BrowserNetwork {
    fn online(&self) -> bool {
        web_sys::window().map(|w| w.navigator().on_line()).unwrap_or(true)
    }

    fn on_change(&self, callback: Box<dyn Fn(bool)>) {
        let Some(window) = web_sys::window() else { return };
        let callback: Rc<dyn Fn(bool)> = Rc::from(callback);
        for (name, online) in [("online", true), ("offline", false)] {
            let callback = callback.clone();
            let listener = Closure::<dyn Fn()>::new(move || callback(online));
            let _ = window.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            // The listener lives as long as the page.
            listener.forget();
        }
    }
}

struct WebPush;

fn service_worker() -> Result<web_sys::ServiceWorkerContainer, String> {
    let window = web_sys::window().ok_or("Notifications: not available here")?;
    let navigator: JsValue = window.navigator().into();
    if property(&navigator, "serviceWorker").is_none() {
        return Err("Notifications: this browser has no service workers here (they need https or localhost)".into());
    }
    Ok(window.navigator().service_worker())
}

fn has_notification_api() -> bool {
    web_sys::window().and_then(|w| property(&w.into(), "Notification")).is_some()
}

impl Notifications for WebPush {
    fn permission(&self) -> Permission {
        if !has_notification_api() {
            return Permission::Unsupported("Notifications: not available in this browser".into());
        }
        if let Err(why) = service_worker() {
            return Permission::Unsupported(why);
        }
        match web_sys::Notification::permission() {
            web_sys::NotificationPermission::Granted => Permission::Granted,
            web_sys::NotificationPermission::Denied => Permission::Denied,
            _ => Permission::Prompt,
        }
    }

    fn subscribe(&self, vapid_public_key: String) -> LocalBoxFuture<'static, Result<PushSubscriptionRequest, String>> {
        Box::pin(async move {
            if !has_notification_api() {
                return Err("Notifications: not available in this browser".into());
            }
            let container = service_worker()?;
            let asked = web_sys::Notification::request_permission().map_err(|e| describe(&e))?;
            let answer = JsFuture::from(asked).await.map_err(|e| describe(&e))?;
            if answer.as_string().as_deref() != Some("granted") {
                return Err("Notifications were not allowed; allow them for this site in the browser's settings".into());
            }
            JsFuture::from(container.register("/sw.js"))
                .await
                .map_err(|e| format!("the service worker did not install: {}", describe(&e)))?;
            let ready = container.ready().map_err(|e| describe(&e))?;
            let registration: web_sys::ServiceWorkerRegistration = JsFuture::from(ready)
                .await
                .map_err(|e| describe(&e))?
                .dyn_into()
                .map_err(|_| "the service worker did not start".to_string())?;
            let manager = registration.push_manager().map_err(|e| describe(&e))?;
            let key = super::base64url_decode(&vapid_public_key)?;
            let options = web_sys::PushSubscriptionOptionsInit::new();
            options.set_user_visible_only(true);
            let key: JsValue = Uint8Array::from(key.as_slice()).into();
            options.set_application_server_key(&key);
            let subscribing = manager.subscribe_with_options(&options).map_err(|e| describe(&e))?;
            let subscription = JsFuture::from(subscribing)
                .await
                .map_err(|e| format!("the browser could not subscribe to push: {}", describe(&e)))?;
            let json = JSON::stringify(&subscription)
                .ok()
                .and_then(|s| s.as_string())
                .ok_or("the browser gave an unreadable push subscription")?;
            serde_json::from_str(&json).map_err(|e| format!("the browser gave an unreadable push subscription: {e}"))
        })
    }

    fn endpoint(&self) -> LocalBoxFuture<'static, Result<Option<String>, String>> {
        Box::pin(async move {
            let container = service_worker()?;
            let registration = JsFuture::from(container.get_registration()).await.map_err(|e| describe(&e))?;
            let Ok(registration) = registration.dyn_into::<web_sys::ServiceWorkerRegistration>() else {
                return Ok(None);
            };
            let manager = registration.push_manager().map_err(|e| describe(&e))?;
            let getting = manager.get_subscription().map_err(|e| describe(&e))?;
            let subscription = JsFuture::from(getting).await.map_err(|e| describe(&e))?;
            Ok(subscription.dyn_into::<web_sys::PushSubscription>().ok().map(|s| s.endpoint()))
        })
    }
}

pub fn download_url(text: &str, mime: &str) -> Option<String> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}
