//! The Homeward client: one Dioxus codebase for web (PWA), desktop and mobile. This is the shell; the
//! staff and leader screens arrive with their own issues.

use dioxus::prelude::*;

fn main() {
    #[cfg(any(feature = "web", feature = "desktop", feature = "mobile"))]
    dioxus::launch(App);
    #[cfg(not(any(feature = "web", feature = "desktop", feature = "mobile")))]
    eprintln!("build with --features web, desktop or mobile to run the Homeward client");
}

#[component]
fn App() -> Element {
    rsx! {
        main { class: "app",
            h1 { "Homeward" }
            p { "Lone-worker safety for school staff." }
            p { class: "notice", "Sign in on the web app served by your school's Homeward server." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_renders_its_title() {
        let mut dom = VirtualDom::new(App);
        dom.rebuild_in_place();
        let html = dioxus_ssr::render(&dom);
        assert!(html.contains("<h1>Homeward</h1>"), "{html}");
    }
}
