// dunscan service worker. Keeps the page shell for offline use; never stores a verdict or a message:
// form posts and shares always go to the network, and only the fixed shell list below is cached.
const SHELL_CACHE = "dunscan-shell-{{ version }}";
const SHELL = {{ shell|tojson }};
const OFFLINE_URL = {{ offline_url|tojson }};

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(
        names.filter((name) => name.startsWith("dunscan-shell-") && name !== SHELL_CACHE)
          .map((name) => caches.delete(name))
      ))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) {
    return;
  }
  if (request.mode === "navigate") {
    // Network first: a check (POST) or a share must reach the server. Offline, show the cached
    // page for a GET, or the offline page; nothing from the network is written to the cache.
    event.respondWith(
      fetch(request).catch(() =>
        (request.method === "GET" ? caches.match(url.pathname) : Promise.resolve(undefined))
          .then((cached) => cached || caches.match(OFFLINE_URL))
      )
    );
    return;
  }
  if (request.method === "GET" && SHELL.includes(url.pathname)) {
    event.respondWith(caches.match(request).then((cached) => cached || fetch(request)));
  }
});
