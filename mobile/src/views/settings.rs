use std::time::Duration;

use dioxus::prelude::*;

use crate::Route;
use crate::components::NavLink;
use crate::platform::{Permission, with_timeout};
use crate::state::{Action, AppState, use_app};
use crate::sync::note_result;

const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// One line of the safety-net self-test.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `notifications`, `location`, `battery`, `server` or `push`.
    pub key: &'static str,
    pub label: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Everything the safety net relies on, checked on this device now.
async fn self_test(mut state: AppState) -> Vec<Check> {
    let platform = state.platform();
    let api = state.api();
    let permission = platform.notifications.permission();
    let notifications = Check {
        key: "notifications",
        label: "Notification permission",
        ok: permission == Permission::Granted,
        detail: permission.describe(),
    };
    let location = match with_timeout(CHECK_TIMEOUT, platform.location.current()).await {
        Some(Ok(fix)) => Check {
            key: "location",
            label: "Location",
            ok: true,
            detail: format!("a fix to within {:.0} m", fix.accuracy_m),
        },
        Some(Err(why)) => Check { key: "location", label: "Location", ok: false, detail: why },
        None => Check { key: "location", label: "Location", ok: false, detail: "no fix within 20 s".into() },
    };
    let battery = match platform.battery.level().await {
        Ok(level) => Check { key: "battery", label: "Battery", ok: true, detail: format!("{}%", level.percent) },
        Err(why) => Check { key: "battery", label: "Battery", ok: false, detail: why },
    };
    let health = api.health().await;
    note_result(&mut state, &health);
    let server = match health {
        Ok(()) => Check { key: "server", label: "Server reachable", ok: true, detail: "the server answers".into() },
        Err(e) => Check { key: "server", label: "Server reachable", ok: false, detail: e.message() },
    };
    let push = match platform.notifications.endpoint().await {
        Err(why) => Check { key: "push", label: "Push subscription", ok: false, detail: why },
        Ok(None) => Check {
            key: "push",
            label: "Push subscription",
            ok: false,
            detail: "this device is not subscribed: tap Enable notifications".into(),
        },
        Ok(Some(endpoint)) => match api.push_subscriptions().await {
            Ok(list) if list.iter().any(|s| s.endpoint == endpoint) => match api.test_push().await {
                Ok(report) => match report.devices.iter().find(|d| d.endpoint == endpoint) {
                    Some(d) if d.delivered => Check {
                        key: "push",
                        label: "Push subscription",
                        ok: true,
                        detail: "a test notification is on its way to this device: watch for it".into(),
                    },
                    Some(d) => Check { key: "push", label: "Push subscription", ok: false, detail: d.detail.clone() },
                    None => Check {
                        key: "push",
                        label: "Push subscription",
                        ok: false,
                        detail: "the server did not try this device: tap Enable notifications again".into(),
                    },
                },
                Err(e) => Check { key: "push", label: "Push subscription", ok: false, detail: e.message() },
            },
            Ok(_) => Check {
                key: "push",
                label: "Push subscription",
                ok: false,
                detail: "the server does not know this device: tap Enable notifications again".into(),
            },
            Err(e) => Check { key: "push", label: "Push subscription", ok: false, detail: e.message() },
        },
    };
    vec![notifications, location, battery, server, push]
}

/// Ask permission, subscribe this device through the service worker, and register it with the server.
async fn enable_notifications(mut state: AppState) -> Result<String, String> {
    let api = state.api();
    let key = api.vapid_public_key().await;
    note_result(&mut state, &key);
    let key = key.map_err(|e| format!("Could not get the server's push key: {}", e.message()))?;
    let subscription = state.platform().notifications.subscribe(key).await?;
    let registered = api.subscribe_push(&subscription).await;
    note_result(&mut state, &registered);
    registered.map_err(|e| format!("The server did not take this device: {}", e.message()))?;
    Ok("This device will receive alerts.".into())
}

#[component]
pub fn Settings() -> Element {
    let state = use_app();
    let mut checks = use_signal(|| None::<Vec<Check>>);
    let mut checking = use_signal(|| false);
    let mut push_status = use_signal(|| None::<Result<String, String>>);
    let mut enabling = use_signal(|| false);
    let mut confirm_sign_out = use_signal(|| false);

    let Some(auth) = state.auth.read().clone() else { return rsx! {} };
    let waiting = state.queue.read().len();
    let permission = state.platform().notifications.permission();

    rsx! {
        SettingsScreen {
            name: auth.user.name.clone(),
            email: auth.user.email.clone(),
            school: auth.user.school_name.clone(),
            permission: permission.describe(),
            push_status: push_status(),
            enabling: enabling(),
            checks: checks(),
            checking: checking(),
            waiting,
            confirm_sign_out: confirm_sign_out(),
            on_enable: move |_| {
                if enabling() {
                    return;
                }
                enabling.set(true);
                spawn(async move {
                    push_status.set(Some(enable_notifications(state).await));
                    enabling.set(false);
                });
            },
            on_self_test: move |_| {
                if checking() {
                    return;
                }
                checking.set(true);
                checks.set(None);
                spawn(async move {
                    checks.set(Some(self_test(state).await));
                    checking.set(false);
                });
            },
            on_sign_out: move |_| sign_out(state, confirm_sign_out, Everywhere::No),
            on_sign_out_everywhere: move |_| sign_out(state, confirm_sign_out, Everywhere::Yes),
            on_keep_signed_in: move |_| confirm_sign_out.set(false),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Everywhere {
    No,
    /// A lost or stolen phone: every device of mine stops, this one too.
    Yes,
}

/// Sign out, after a confirmation when something has not reached the server yet.
fn sign_out(mut state: AppState, mut confirm_sign_out: Signal<bool>, everywhere: Everywhere) {
    let waiting = state.queue.peek().len();
    if waiting > 0 && !confirm_sign_out() {
        confirm_sign_out.set(true);
        return;
    }
    let api = state.api();
    // Best effort: the sign-in is forgotten here whether or not the server hears of it.
    spawn(async move {
        let _ = match everywhere {
            Everywhere::No => api.logout().await,
            Everywhere::Yes => api.logout_everywhere().await,
        };
    });
    state.dispatch(Action::SignedOut { discard_queue: waiting > 0 });
    navigator().replace(Route::SignIn {});
}

#[component]
pub fn SettingsScreen(
    name: String,
    email: String,
    school: String,
    permission: String,
    push_status: Option<Result<String, String>>,
    enabling: bool,
    checks: Option<Vec<Check>>,
    checking: bool,
    waiting: usize,
    confirm_sign_out: bool,
    on_enable: EventHandler<()>,
    on_self_test: EventHandler<()>,
    on_sign_out: EventHandler<()>,
    on_sign_out_everywhere: EventHandler<()>,
    on_keep_signed_in: EventHandler<()>,
) -> Element {
    rsx! {
        main { class: "screen settings", "data-testid": "settings",
            h1 { "Settings" }
            section { class: "panel",
                h2 { "Notifications" }
                p { "Alerts about colleagues reach this device as notifications, even when Homeward is closed." }
                p { class: "field-hint", "Permission: {permission}" }
                button {
                    class: "button primary big",
                    "data-testid": "enable-notifications",
                    disabled: enabling,
                    onclick: move |_| on_enable.call(()),
                    if enabling {
                        "Enabling…"
                    } else {
                        "Enable notifications"
                    }
                }
                match push_status {
                    Some(Ok(message)) => rsx! {
                        p { class: "banner ok", role: "status", "data-testid": "notifications-status", "{message}" }
                    },
                    Some(Err(message)) => rsx! {
                        p { class: "banner bad", role: "alert", "data-testid": "notifications-status", "{message}" }
                    },
                    None => rsx! {},
                }
            }
            section { class: "panel",
                h2 { "Safety-net self-test" }
                p { "Checks everything Homeward relies on to keep you safe, on this device, now." }
                button {
                    class: "button big",
                    "data-testid": "run-self-test",
                    disabled: checking,
                    onclick: move |_| on_self_test.call(()),
                    if checking {
                        "Checking…"
                    } else {
                        "Run the self-test"
                    }
                }
                if let Some(checks) = checks {
                    ul { class: "checks", "data-testid": "self-test-results",
                        for check in checks {
                            li {
                                key: "{check.key}",
                                class: if check.ok { "check-item ok" } else { "check-item bad" },
                                "data-testid": "check-{check.key}",
                                "data-ok": "{check.ok}",
                                span { class: "check-mark", if check.ok { "✔ " } else { "✘ " } }
                                strong { "{check.label}: " }
                                "{check.detail}"
                            }
                        }
                    }
                }
            }
            section { class: "panel",
                h2 { "Account" }
                p { "{name}" }
                p { class: "field-hint", "{email} · {school}" }
                if confirm_sign_out {
                    p { class: "banner bad", role: "alert", "data-testid": "sign-out-warning",
                        "{waiting} action(s) have not reached the server yet. Signing out now discards them."
                    }
                    button { class: "button primary big", onclick: move |_| on_keep_signed_in.call(()),
                        "Stay signed in"
                    }
                }
                button {
                    class: "button big",
                    "data-testid": "sign-out",
                    onclick: move |_| on_sign_out.call(()),
                    if confirm_sign_out {
                        "Sign out and discard them"
                    } else {
                        "Sign out"
                    }
                }
                p { class: "field-hint",
                    "This device stays signed in while you use it, through any visit. Lost a phone? Sign out everywhere."
                }
                button {
                    class: "button big",
                    "data-testid": "sign-out-everywhere",
                    onclick: move |_| on_sign_out_everywhere.call(()),
                    "Sign out on every device"
                }
            }
            NavLink { to: Route::Today {}, class: "link", "← Today" }
        }
    }
}
