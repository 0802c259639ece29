// Service worker: one native-messaging connection to the helper program, shared by every tab.
//
// The browser may stop this worker at any time, so all state below is rebuilt lazily and the
// listeners are registered synchronously at top level. Nothing here logs a request or reply
// body: they can carry passcodes, cryptograms, PUKs and nonces.
"use strict";

const HOST_NAME = "uk.nhs.smartcard_unlock";
const PORT_NAME = "smartcard-unlock";
const HOST_MISSING = "The smartcard unlock helper program is not installed on this computer.";
const CANCELLED = "The smartcard unlock helper program stopped before it answered. Try again.";

/** The native port and whether any message ever arrived on it. */
let native = null;
/** Host request ids are ours alone, so requests from different tabs cannot collide. */
let nextHostId = 1;
/** host id -> { tab, pageId, type } */
const pending = new Map();
/** Tab ports currently connected. */
const tabs = new Set();
/** Tab ports whose `watch` the current native connection accepted. */
const watchers = new Set();

function safePost(port, message) {
  try {
    port.postMessage(message);
    return true;
  } catch (_) {
    return false; // the tab went away
  }
}

function tabError(tab, id, code, message) {
  safePost(tab, { id, err: { code, message } });
}

function openNative() {
  if (native) return native;
  const connection = { port: chrome.runtime.connectNative(HOST_NAME), heard: false };
  connection.port.onMessage.addListener((message) => fromHost(connection, message));
  connection.port.onDisconnect.addListener(() => onNativeDisconnect(connection));
  native = connection;
  return connection;
}

function fromHost(connection, message) {
  if (connection !== native) return;
  connection.heard = true;
  if (!message || typeof message !== "object") return;
  if (message.type === "event") {
    for (const tab of watchers) safePost(tab, message);
    return;
  }
  const entry = pending.get(message.id);
  if (!entry) return;
  pending.delete(message.id);
  if (!tabs.has(entry.tab)) return;
  if (entry.type === "watch" && message.ok && message.ok.type === "watching") {
    watchers.add(entry.tab);
  }
  safePost(entry.tab, { ...message, id: entry.pageId });
}

function onNativeDisconnect(connection) {
  const reason = chrome.runtime.lastError?.message || "the helper program exited";
  if (connection !== native) return;
  native = null;
  // Nothing ever heard: the host is not installed, not allowed, or exited at once.
  const missing = !connection.heard;
  console.warn(`smartcard unlock: native host disconnected (${reason})`);
  for (const { tab, pageId } of pending.values()) {
    if (missing) tabError(tab, pageId, "host_missing", HOST_MISSING);
    else tabError(tab, pageId, "cancelled", CANCELLED);
  }
  pending.clear();
  // The subscriptions died with the host. Dropping the watching tabs' ports makes their
  // content scripts reconnect and send `watch` again, which starts the host afresh.
  for (const tab of watchers) {
    tabs.delete(tab);
    try {
      tab.disconnect();
    } catch (_) {
      // already gone
    }
  }
  watchers.clear();
}

function fromTab(tab, origin, message) {
  if (!message || typeof message !== "object" || Array.isArray(message)) return;
  const pageId = message.id;
  if (!Number.isSafeInteger(pageId)) return;
  if (typeof message.type !== "string" || message.type === "event") {
    tabError(tab, pageId, "bad_request", "The request has no valid type.");
    return;
  }
  if (!origin) {
    tabError(tab, pageId, "origin_refused", "The browser did not say which website sent this request.");
    return;
  }
  const hostId = nextHostId++;
  // `origin` is set last: the browser's word, never anything the page sent.
  const request = { ...message, id: hostId, origin };
  pending.set(hostId, { tab, pageId, type: message.type });
  let connection = null;
  try {
    connection = openNative();
    connection.port.postMessage(request);
  } catch (_) {
    if (connection && connection === native) {
      // The native port is unusable: fail everything waiting on it, this request included.
      onNativeDisconnect(connection);
      try {
        connection.port.disconnect();
      } catch (_) {
        // already gone
      }
    } else {
      // connectNative itself threw.
      pending.delete(hostId);
      tabError(tab, pageId, "host_missing", HOST_MISSING);
    }
  }
}

function onTabDisconnect(tab) {
  void chrome.runtime.lastError;
  tabs.delete(tab);
  watchers.delete(tab);
  for (const [hostId, entry] of pending) {
    if (entry.tab === tab) pending.delete(hostId);
  }
  // With no page left, let the helper program exit (and this worker go idle).
  if (tabs.size === 0 && pending.size === 0 && native) {
    const connection = native;
    native = null;
    try {
      connection.port.disconnect();
    } catch (_) {
      // already gone
    }
  }
}

chrome.runtime.onConnect.addListener((tab) => {
  if (tab.name !== PORT_NAME) return;
  // Only this extension's own content scripts can reach onConnect; the origin is the one the
  // browser reports for the frame the content script runs in.
  const origin = tab.sender && tab.sender.origin;
  tabs.add(tab);
  tab.onMessage.addListener((message) => fromTab(tab, origin, message));
  tab.onDisconnect.addListener(() => onTabDisconnect(tab));
});
