use dioxus::prelude::*;
use homeward_shared::Email;

use crate::Route;
use crate::api::ApiError;
use crate::state::{Action, use_app};

/// Sign in with e-mail and password; the sign-in is kept on the device until it expires or you sign out.
#[component]
pub fn SignIn() -> Element {
    let mut state = use_app();
    let mut email = use_signal(String::new);
    let mut password = use_signal(String::new);
    let mut error = use_signal(|| None::<String>);
    let mut busy = use_signal(|| false);

    use_effect(move || {
        if state.auth.read().is_some() {
            navigator().replace(Route::Today {});
        }
    });

    let submit = move |_| {
        if busy() {
            return;
        }
        let address = match Email::parse(&email()) {
            Ok(address) => address,
            Err(e) => {
                error.set(Some(e.message));
                return;
            }
        };
        if password().is_empty() {
            error.set(Some("Enter your password.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        spawn(async move {
            let result = state.api().login(address.as_ref(), &password()).await;
            busy.set(false);
            match result {
                Ok(response) => {
                    password.set(String::new());
                    state.dispatch(Action::SignedIn(response.into()));
                    navigator().replace(Route::Today {});
                }
                Err(e) => error.set(Some(sign_in_problem(&e))),
            }
        });
    };

    rsx! {
        SignInScreen {
            email: email(),
            password: password(),
            error: error(),
            busy: busy(),
            notice: state.notice.read().clone(),
            on_email: move |value| email.set(value),
            on_password: move |value| password.set(value),
            on_submit: submit,
        }
    }
}

fn sign_in_problem(error: &ApiError) -> String {
    match error {
        ApiError::Offline(_) => "Cannot reach the Homeward server. Check your connection and try again.".into(),
        // The server words a failed sign-in like any missing sign-in ("sign in first: ...").
        ApiError::SignedOut(message) => {
            let reason = message.strip_prefix("sign in first: ").unwrap_or(message);
            let mut reason = reason.to_string();
            if let Some(first) = reason.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            format!("{reason}.")
        }
        other => other.message(),
    }
}

#[component]
pub fn SignInScreen(
    email: String,
    password: String,
    error: Option<String>,
    busy: bool,
    notice: Option<String>,
    on_email: EventHandler<String>,
    on_password: EventHandler<String>,
    on_submit: EventHandler<()>,
) -> Element {
    rsx! {
        main { class: "screen sign-in",
            h1 { class: "brand", "Homeward" }
            p { class: "lead", "Sign in to plan, start and end your visits." }
            if let Some(notice) = notice {
                p { class: "banner warn", role: "status", "{notice}" }
            }
            form {
                class: "form",
                // Our own checks (the shared parsers) explain problems better than the browser's.
                novalidate: true,
                onsubmit: move |evt: FormEvent| {
                    evt.prevent_default();
                    on_submit.call(());
                },
                div { class: "field",
                    label {
                        span { class: "field-label", "E-mail" }
                        input {
                            name: "email",
                            r#type: "email",
                            autocomplete: "username",
                            inputmode: "email",
                            value: "{email}",
                            oninput: move |evt| on_email.call(evt.value()),
                        }
                    }
                }
                div { class: "field",
                    label {
                        span { class: "field-label", "Password" }
                        input {
                            name: "password",
                            r#type: "password",
                            autocomplete: "current-password",
                            value: "{password}",
                            oninput: move |evt| on_password.call(evt.value()),
                        }
                    }
                }
                if let Some(error) = error {
                    p { class: "field-error", role: "alert", "data-testid": "sign-in-error", "{error}" }
                }
                button {
                    class: "button primary big",
                    r#type: "submit",
                    "data-testid": "sign-in",
                    disabled: busy,
                    if busy {
                        "Signing in…"
                    } else {
                        "Sign in"
                    }
                }
            }
        }
    }
}
