use dioxus::prelude::*;

/// A labelled form control with its error beside it (`data-testid="error-<key>"`).
#[component]
pub fn Field(
    label: String,
    /// The key of the field's error, e.g. `latitude` or `risk_overall`.
    error_key: String,
    error: Option<String>,
    #[props(default)] hint: Option<String>,
    children: Element,
) -> Element {
    let class = if error.is_some() { "field invalid" } else { "field" };
    rsx! {
        div { class,
            label {
                span { class: "field-label", "{label}" }
                {children}
            }
            if let Some(hint) = hint {
                p { class: "field-hint", "{hint}" }
            }
            if let Some(error) = error {
                p { class: "field-error", role: "alert", "data-testid": "error-{error_key}", "{error}" }
            }
        }
    }
}
