use dioxus::prelude::*;

use crate::Route;

/// A link inside the app: a real `href` (so it reads and opens like a link), followed by the router
/// without reloading the page. The router is only looked up when the link is followed, so screens that
/// use it render without one (in tests).
#[component]
pub fn NavLink(
    to: Route,
    #[props(default)] class: Option<String>,
    #[props(default)] testid: Option<String>,
    children: Element,
) -> Element {
    let href = to.to_string();
    rsx! {
        a {
            href: "{href}",
            class,
            "data-testid": testid,
            onclick: move |evt: MouseEvent| {
                evt.prevent_default();
                dioxus::router::navigator().push(to.clone());
            },
            {children}
        }
    }
}
