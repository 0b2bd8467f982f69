// The field app's service worker: keeps the app shell and the WebAssembly
// module so the app opens with no network. The cache name is the build's
// hash (client-core/web/build.sh writes it), so a new build replaces the old
// one on the first online start and an offline phone keeps what it has.
// Data never goes through here: it lives in the store (OPFS), and the API
// and /sync always go to the network.

const CACHE = 'propsync-app-__BUILD__';
const SHELL = ['./', 'index.html', 'boot.js', 'app.js', 'worker.js', 'i18n.js', 'app.css', 'manifest.webmanifest',
  'icon.svg', 'pkg/propsync_web.js', 'pkg/propsync_web_bg.wasm'];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('propsync-app-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith('/app/')) return;
  // Cache first: the shell is versioned by the cache name.
  e.respondWith(caches.match(e.request, { ignoreSearch: true }).then((hit) => hit || fetch(e.request)));
});
