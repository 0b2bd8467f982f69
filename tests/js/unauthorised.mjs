// node unauthorised.mjs RELAY_HTTP_URL DEVICE_TOKEN DOC_URL
//
// As a device that may not sync DOC_URL, running unmodified automerge-repo:
// `repo.find` must end as unavailable because the relay answered
// `doc-unavailable` (automerge-repo 2.x rejects `find` with "Document … is
// unavailable"; its own give-up timer is 60 s, far past this script's
// deadline, so the relay's answer is what ends it). Prints
// `{"unavailable": true, ...}` and exits 0 only then; exits non-zero if the
// document is found, on any other error, or when the deadline passes.

import { args, connect, deadline, fail, finish, me } from "./common.mjs";

const { base, token, docUrl } = args("RELAY_HTTP_URL DEVICE_TOKEN DOC_URL");
let stage = "before connecting";
const signal = deadline(() => stage);

const who = await me(base, token);
const { repo, seen } = connect(base, token);

stage = `finding ${docUrl} as ${who.user} on ${who.device}`;
let error;
try {
  const handle = await repo.find(docUrl, { signal });
  fail(
    `${who.user} was given ${docUrl} (type ${JSON.stringify(handle.doc()?.type)}, ` +
      `${handle.doc()?.events?.length} events); expected doc-unavailable`,
  );
} catch (e) {
  error = e;
}

if (!/unavailable/i.test(String(error?.message))) {
  fail(`repo.find(${docUrl}) failed, but not as unavailable: ${error?.stack ?? error}`);
}
const documentId = docUrl.slice("automerge:".length);
const answer = seen.find((m) => m.type === "doc-unavailable" && m.documentId === documentId);
if (!answer) {
  fail(`find said unavailable, but no doc-unavailable for ${documentId} arrived; messages seen: ${JSON.stringify(seen)}`);
}
if (who.relay_peer_id && answer.senderId !== who.relay_peer_id) {
  fail(`doc-unavailable came from ${answer.senderId}, not the relay (${who.relay_peer_id})`);
}
const synced = seen.filter((m) => (m.type === "sync" || m.type === "request") && m.documentId === documentId);
if (synced.length > 0) {
  fail(`the relay sent ${synced.length} sync message(s) for ${documentId} to an unauthorised device`);
}

await finish(repo, { unavailable: true, error: error.message, from: answer.senderId, user: who.user });
