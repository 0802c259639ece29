// Content script: relays between the page (window.postMessage) and the extension's service
// worker (a long-lived runtime port). It never forwards an origin chosen by the page: the
// service worker adds the origin the browser reports for this frame.
"use strict";

(() => {
  const CHANNEL = "smartcard-unlock";
  const PORT_NAME = "smartcard-unlock";
  const EXTENSION_VERSION = chrome.runtime.getManifest().version;
  const MIN_RETRY_MS = 100;
  const MAX_RETRY_MS = 30000;
  const STABLE_MS = 10000;

  let port = null;
  let connectedAt = 0;
  let retryMs = MIN_RETRY_MS;
  let retryTimer = null;
  // Page request ids waiting for a reply from the worker: id -> request type.
  const pending = new Map();
  // Ids of watch requests this script sent itself after a reconnection (negative, so they
  // never collide with the page's ids); their replies are not shown to the page.
  const internal = new Set();
  let nextInternalId = -1;
  // Whether the page has a successful `watch`; re-sent whenever the port is reopened.
  let watching = false;

  function alive() {
    // After the extension is reloaded or removed this orphaned script loses its runtime.
    return Boolean(globalThis.chrome && chrome.runtime && chrome.runtime.id);
  }

  function toPage(payload) {
    window.postMessage({ channel: CHANNEL, direction: "to-page", ...payload }, location.origin);
  }

  function replyError(id, code, message) {
    toPage({ reply: { id, err: { code, message } } });
  }

  function openPort(resubscribe) {
    if (port) return port;
    if (!alive()) return null;
    try {
      port = chrome.runtime.connect({ name: PORT_NAME });
    } catch (_) {
      port = null;
      return null;
    }
    connectedAt = Date.now();
    port.onMessage.addListener(fromWorker);
    port.onDisconnect.addListener(onDisconnect);
    if (watching && resubscribe) {
      const id = nextInternalId--;
      internal.add(id);
      port.postMessage({ id, type: "watch" });
    }
    return port;
  }

  function onDisconnect() {
    // Reading lastError keeps Chrome from reporting it as unchecked.
    void globalThis.chrome?.runtime?.lastError;
    port = null;
    internal.clear();
    for (const id of pending.keys()) {
      replyError(id, "cancelled", "The connection to the smartcard unlock extension was interrupted. Try again.");
    }
    pending.clear();
    if (Date.now() - connectedAt > STABLE_MS) retryMs = MIN_RETRY_MS;
    if (watching) scheduleResubscribe();
  }

  function scheduleResubscribe() {
    if (retryTimer !== null || !alive()) return;
    const delay = retryMs;
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      if (!port && watching) openPort(true);
    }, delay);
  }

  function fromWorker(message) {
    if (!message || typeof message !== "object") return;
    if (message.type === "event") {
      if (watching) toPage({ event: message });
      return;
    }
    const id = message.id;
    if (internal.has(id)) {
      internal.delete(id);
      return;
    }
    if (!pending.has(id)) return;
    const type = pending.get(id);
    pending.delete(id);
    if (type === "watch" && message.ok && message.ok.type === "watching") watching = true;
    toPage({ reply: message });
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window || event.origin !== location.origin) return;
    const data = event.data;
    if (!data || typeof data !== "object") return;
    if (data.channel !== CHANNEL || data.direction !== "to-extension") return;
    const request = data.request;
    if (!request || typeof request !== "object" || Array.isArray(request)) return;
    const { id, type } = request;
    if (!Number.isSafeInteger(id) || id < 0 || typeof type !== "string") return;

    if (type === "ping") {
      // No answer from an orphaned script: the page then reports the extension missing.
      if (alive()) toPage({ reply: { id, ok: { type: "pong", extension_version: EXTENSION_VERSION } } });
      return;
    }
    if (pending.has(id)) {
      replyError(id, "bad_request", "A request with this id is still waiting for its answer.");
      return;
    }

    const forward = {};
    for (const [key, value] of Object.entries(request)) {
      if (key !== "origin") forward[key] = value;
    }

    const connected = openPort(type !== "watch");
    if (!connected) {
      replyError(id, "extension_missing", "The smartcard unlock browser extension was updated or switched off. Reload the page.");
      return;
    }
    pending.set(id, type);
    try {
      connected.postMessage(forward);
    } catch (_) {
      pending.delete(id);
      replyError(id, "cancelled", "The connection to the smartcard unlock extension was interrupted. Try again.");
    }
  });

  // A page restored from the back/forward cache lost its port; resubscribe if it was watching.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && watching && !port) openPort(true);
  });
})();
