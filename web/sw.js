// Homeward's service worker: keeps the app shell available offline and shows alert notifications.
//
// Caching: the app shell is fetched network first (so a new build is seen at once) and falls back to the
// cache when the network fails. The API (/api/*) is never cached or answered from a cache: whether a
// check-in reached the server is the app's business (it keeps its own queue), not this worker's.
'use strict';

const CACHE = 'homeward-shell-v1';

const SHELL = [
  '/',
  '/index.html',
  '/pkg/homeward.js',
  '/pkg/homeward_bg.wasm',
  '/app.css',
  '/boot.js',
  '/manifest.webmanifest',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
  '/icons/icon-maskable-192.png',
  '/icons/icon-maskable-512.png',
];

// Paths whose files belong to the shell (wasm-bindgen's snippets live under /pkg/ too).
const SHELL_PREFIXES = ['/pkg/', '/assets/', '/icons/'];

// Alerts that must stay on screen until someone acts on them.
const URGENT_KINDS = ['panic', 'duress', 'missed_deadline'];

// How long a navigation waits for the network before the cached shell is shown instead.
const NAVIGATION_TIMEOUT_MS = 4000;

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // One missing file must not stop the worker installing: without it there are no notifications.
      const results = await Promise.allSettled(
        SHELL.map(async (path) => {
          const response = await fetch(new Request(path, { cache: 'reload' }));
          if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
          await cache.put(path, response);
        }),
      );
      for (const result of results) {
        if (result.status === 'rejected') console.warn('homeward sw: not cached', String(result.reason));
      }
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(names.filter((n) => n.startsWith('homeward-') && n !== CACHE).map((n) => caches.delete(n)));
      await self.clients.claim();
    })(),
  );
});

function isApi(url) {
  return url.pathname === '/api' || url.pathname.startsWith('/api/') ||
    ['/health', '/ready', '/metrics'].includes(url.pathname);
}

function isShellFile(url) {
  return SHELL.includes(url.pathname) || SHELL_PREFIXES.some((p) => url.pathname.startsWith(p));
}

function timeout(ms) {
  return new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), ms));
}

async function fromCache(key) {
  const cache = await caches.open(CACHE);
  return cache.match(key, { ignoreSearch: true });
}

// Keep a fresh copy of a good answer, after it has gone to the page (a 1.7 MB wasm file is not held
// up while it is written) and only when it changed (same ETag: nothing to write).
function keep(event, key, response, cached) {
  if (!response.ok) return;
  const etag = response.headers.get('etag');
  if (cached && etag && cached.headers.get('etag') === etag) return;
  const copy = response.clone();
  event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, copy)).catch(() => {}));
}

// Navigations: every route of the app is index.html, so the cached index answers any of them offline.
async function navigate(event) {
  const cached = await fromCache('/index.html');
  try {
    const network = fetch(event.request);
    network.catch(() => {}); // if the timeout wins, a late failure is expected, not an error
    const response = await (cached ? Promise.race([network, timeout(NAVIGATION_TIMEOUT_MS)]) : network);
    if ((response.headers.get('content-type') || '').startsWith('text/html')) {
      keep(event, '/index.html', response, cached);
    }
    return response;
  } catch (error) {
    if (cached) return cached;
    throw error;
  }
}

async function shellFile(event, url) {
  const cached = await fromCache(url.pathname);
  try {
    const response = await fetch(event.request);
    keep(event, url.pathname, response, cached);
    return response;
  } catch (error) {
    if (cached) return cached;
    throw error;
  }
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || isApi(url)) return; // the browser handles it; never cached
  if (request.mode === 'navigate') {
    event.respondWith(navigate(event));
  } else if (isShellFile(url)) {
    event.respondWith(shellFile(event, url));
  }
});

// A push from the server: {alert_id, kind, purpose, step, title, body, url}.
self.addEventListener('push', (event) => {
  let payload = {};
  try {
    payload = event.data ? event.data.json() : {};
  } catch (_) {
    payload = { body: event.data ? event.data.text() : '' };
  }
  const kind = payload.kind || '';
  // A stand-down or a resolution replaces the alarm (same tag) but need not be held on screen.
  const settled = payload.purpose === 'stand_down' || payload.purpose === 'resolved';
  const title = payload.title || 'Homeward alert';
  const options = {
    body: payload.body || '',
    tag: payload.alert_id || 'homeward',
    renotify: true,
    requireInteraction: URGENT_KINDS.includes(kind) && !settled,
    icon: '/icons/icon-192.png',
    badge: '/icons/icon-192.png',
    data: { url: payload.url || '/today', alert_id: payload.alert_id, kind, purpose: payload.purpose },
  };
  if (URGENT_KINDS.includes(kind) && !settled) options.vibrate = [400, 200, 400, 200, 400];
  event.waitUntil(self.registration.showNotification(title, options));
});

// Tapping the notification opens the alert: in an open window of the app if there is one.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || '/today', self.location.origin);
  if (target.origin !== self.location.origin) return;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      for (const client of windows) {
        if (new URL(client.url).origin !== self.location.origin) continue;
        try {
          await client.focus();
        } catch (_) {
          // Focus is allowed only while the tap is being handled; go on without it.
        }
        try {
          if (await client.navigate(target.href)) return;
        } catch (_) {
          // A window this worker does not control yet refuses navigate(): tell the page instead.
        }
        client.postMessage({ type: 'homeward:navigate', url: target.pathname + target.search });
        return;
      }
      await self.clients.openWindow(target.href);
    })(),
  );
});
