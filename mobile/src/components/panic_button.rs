use std::time::Duration;

use dioxus::prelude::*;

use crate::platform::sleep;

/// How long the panic button must be held.
pub const HOLD_FOR: Duration = Duration::from_secs(2);

/// Press and hold for two seconds to arm the panic alarm; letting go earlier does nothing. Pointer,
/// mouse and touch events all work, and a press counts once however many of them a browser sends.
#[component]
pub fn PanicButton(on_armed: EventHandler<()>) -> Element {
    // The current press, by number, so a release and a new press never arm an old hold.
    let mut holding = use_signal(|| None::<u64>);
    let mut presses = use_signal(|| 0u64);

    let mut press = move || {
        if holding.peek().is_some() {
            return;
        }
        let press = *presses.peek() + 1;
        presses.set(press);
        holding.set(Some(press));
        spawn(async move {
            sleep(HOLD_FOR).await;
            if *holding.peek() == Some(press) {
                holding.set(None);
                on_armed.call(());
            }
        });
    };
    let mut release = move || {
        if holding.peek().is_some() {
            holding.set(None);
        }
    };

    let held = holding().is_some();
    rsx! {
        button {
            class: if held { "panic-button holding" } else { "panic-button" },
            "data-testid": "panic",
            r#type: "button",
            "aria-label": "Panic alarm: press and hold for two seconds",
            onpointerdown: move |_| press(),
            onmousedown: move |_| press(),
            ontouchstart: move |_| press(),
            onpointerup: move |_| release(),
            onpointerleave: move |_| release(),
            onpointercancel: move |_| release(),
            onmouseup: move |_| release(),
            onmouseleave: move |_| release(),
            ontouchend: move |_| release(),
            ontouchcancel: move |_| release(),
            oncontextmenu: move |evt| evt.prevent_default(),
            onkeydown: move |evt: KeyboardEvent| {
                if matches!(evt.key(), Key::Enter) || evt.key() == Key::Character(" ".into()) {
                    press();
                }
            },
            onkeyup: move |_| release(),
            span { class: "panic-title", "PANIC" }
            span { class: "panic-hint",
                if held {
                    "Keep holding…"
                } else {
                    "Press and hold 2 s"
                }
            }
        }
    }
}
