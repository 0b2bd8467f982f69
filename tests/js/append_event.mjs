// node append_event.mjs RELAY_HTTP_URL DEVICE_TOKEN DOC_URL
//
// As an engineer's phone running unmodified automerge-repo: finds the ticket
// DOC_URL through the relay, appends an `accept` event by this device, and
// waits for the relay's verdict on it in `server.verdicts`. Prints one line,
// `{"event_id": ..., "verdict": {...}}`, and exits 0; exits non-zero with a
// message on stderr on any error, on a `change-rejected` notice from the
// relay, or when the deadline passes.

import { randomUUID } from "node:crypto";
import { args, connect, deadline, fail, finish, me } from "./common.mjs";

const { base, token, docUrl } = args("RELAY_HTTP_URL DEVICE_TOKEN DOC_URL");
let stage = "before connecting";
const signal = deadline(() => stage);

const who = await me(base, token);
const { repo, seen } = connect(base, token);

stage = `finding ${docUrl} as ${who.user} on ${who.device}`;
let handle;
try {
  handle = await repo.find(docUrl, { signal });
} catch (e) {
  fail(`repo.find(${docUrl}) failed: ${e?.message ?? e}; messages seen: ${JSON.stringify(seen)}`);
}

// Strings the relay wrote as scalars read as automerge `ImmutableString`
// objects, and those written as text as plain strings: compare `String(…)`.
const before = handle.doc();
if (String(before?.type) !== "ticket" || !Array.isArray(before.events)) {
  fail(`${docUrl} is not a ticket: type ${JSON.stringify(before?.type)}, keys ${Object.keys(before ?? {})}`);
}

// The relay refuses a change that breaks a hard rule with an ephemeral
// `change-rejected` notice: fail at once with its rule and reason.
handle.on("ephemeral-message", ({ message }) => {
  if (message?.type === "change-rejected") {
    fail(`the relay refused the change: ${message.rule}: ${message.reason}`);
  }
});

const eventId = randomUUID();
handle.change((d) => {
  d.events.push({
    id: eventId,
    action: "accept",
    by: who.user,
    device: who.device,
    at: new Date().toISOString(),
    data: {},
  });
});

stage = `waiting for the relay's verdict on event ${eventId} in ${docUrl}`;
const verdict = await new Promise((resolve) => {
  const check = () => {
    const v = handle.doc()?.server?.verdicts?.[eventId];
    if (v) {
      handle.off("change", check);
      resolve(v);
    }
  };
  handle.on("change", check);
  check();
});

await finish(repo, { event_id: eventId, verdict });
