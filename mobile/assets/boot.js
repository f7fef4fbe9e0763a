// Starts the Homeward web app. A separate file (not an inline script): the server's
// Content-Security-Policy allows scripts from this origin only.
import init from "/pkg/homeward.js";

// The service worker keeps the app shell available offline and shows push notifications.
if ("serviceWorker" in navigator) {
    navigator.serviceWorker
        .register("/sw.js")
        .then(keepForOffline)
        .catch((error) => console.warn("Homeward: the service worker did not register", error));
}

// The modules wasm-bindgen splits out (pkg/snippets/...) have hashed names the service worker cannot
// know in advance. On the first visit they load before the worker is in control, so once it is, ask for
// them again through it: it keeps what passes through, and the app then starts with no connection.
async function keepForOffline() {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
        await new Promise((resolve) =>
            navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true }),
        );
    }
    const snippets = new Set(
        performance
            .getEntriesByType("resource")
            .map((entry) => new URL(entry.name, location.href))
            .filter((url) => url.origin === location.origin && url.pathname.startsWith("/pkg/snippets/"))
            .map((url) => url.pathname),
    );
    await Promise.all([...snippets].map((path) => fetch(path).catch(() => undefined)));
}

init().catch((error) => {
    console.error("Homeward could not start", error);
    const main = document.getElementById("main");
    if (main) {
        const message = document.createElement("p");
        message.className = "banner bad";
        message.setAttribute("role", "alert");
        message.textContent = "Homeward could not start. Reload the page; if that does not help, call your line manager.";
        main.replaceChildren(message);
    }
});
