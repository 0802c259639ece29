// The page's side of the extension's message envelope, for the test pages: requests with
// per-request time limits, pushed events, and results posted back to the test.
"use strict";

const bridge = (() => {
  const CHANNEL = "smartcard-unlock";
  const waiting = new Map();
  const events = [];
  const eventWaiters = [];
  let nextId = 1;

  window.addEventListener("message", (event) => {
    if (event.source !== window || event.origin !== location.origin) return;
    const data = event.data;
    if (!data || data.channel !== CHANNEL || data.direction !== "to-page") return;
    if (data.reply && waiting.has(data.reply.id)) {
      const resolve = waiting.get(data.reply.id);
      waiting.delete(data.reply.id);
      resolve(data.reply);
    }
    if (data.event) {
      events.push(data.event);
      document.getElementById("events").textContent = JSON.stringify(events, null, 2);
      for (const wake of eventWaiters.splice(0)) wake();
    }
  });

  // Resolves with the reply, or with `{id, err: {code: onTimeout}}` when none comes in time.
  function send(request, timeoutMs, onTimeout, message) {
    const id = nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve({ id, err: { code: onTimeout, message } });
      }, timeoutMs);
      waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      window.postMessage(
        { channel: CHANNEL, direction: "to-extension", request: { id, ...request } },
        location.origin,
      );
    });
  }

  const step = (request) => send(request, 10000, "timeout", "No answer within 10 seconds.");

  const ping = () =>
    send({ type: "ping" }, 1000, "extension_missing",
      "The smartcard unlock browser extension is not installed or not switched on.");

  // Resolves with the first event matching `test` (seen already or still to come), or null.
  function nextEvent(test, timeoutMs) {
    return new Promise((resolve) => {
      const deadline = Date.now() + timeoutMs;
      const look = () => {
        const found = events.find(test);
        if (found) return resolve(found);
        if (Date.now() >= deadline) return resolve(null);
        eventWaiters.push(look);
        setTimeout(look, Math.max(0, deadline - Date.now()));
      };
      look();
    });
  }

  // Shows the result and posts it to the test.
  async function report(result) {
    document.getElementById("result").textContent = JSON.stringify(result, null, 2);
    let status = "posted";
    try {
      const response = await fetch("/result", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(result),
      });
      if (!response.ok) status = `POST /result answered ${response.status}`;
    } catch (error) {
      status = `POST /result failed: ${error}`;
    }
    document.getElementById("status").textContent = status;
  }

  // Resolves once the test says to go on (GET /go answers 200).
  async function until(path) {
    for (;;) {
      try {
        if ((await fetch(path)).ok) return;
      } catch (_) {
        // the test server is busy; ask again
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  return { send, step, ping, nextEvent, report, until };
})();
