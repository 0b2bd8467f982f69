// Shared by the interop scripts: arguments, the deadline, `/api/v1/me`, and an
// unmodified automerge-repo `Repo` connected to the relay's `/sync` endpoint.
// Everything here uses the packages' public API only.

import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";

/** Prints `message` on stderr and exits with `code` (never 0). */
export function fail(message, code = 1) {
  process.stderr.write(`${process.argv[1]}: ${message}\n`);
  process.exit(code);
}

// The WebSocket adapter rethrows socket errors other than ECONNREFUSED from
// an event listener; report them (and anything else unexpected) clearly.
process.on("uncaughtException", (e) => fail(`uncaught: ${e?.stack ?? e}`, 3));
process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e?.stack ?? e}`, 3));

/** `RELAY_HTTP_URL DEVICE_TOKEN DOC_URL` from the command line. */
export function args(usage) {
  const [base, token, docUrl] = process.argv.slice(2);
  if (!base || !token || !docUrl) {
    fail(`usage: node ${process.argv[1]} ${usage}`, 64);
  }
  if (!/^https?:\/\//.test(base)) fail(`RELAY_HTTP_URL must be http(s)://HOST:PORT, not ${base}`, 64);
  if (!docUrl.startsWith("automerge:")) fail(`DOC_URL must be automerge:<id>, not ${docUrl}`, 64);
  return { base: base.replace(/\/+$/, ""), token, docUrl };
}

/** Milliseconds the whole script may take (`INTEROP_TIMEOUT_MS`, default 30 s). */
export const TIMEOUT_MS = Number(process.env.INTEROP_TIMEOUT_MS ?? 30_000);

/**
 * Starts the script's one deadline: when it passes, `what()` says what was
 * still awaited and the script exits 2. Also returns an AbortSignal that
 * fires at the same moment (for `repo.find`).
 */
export function deadline(what) {
  const controller = new AbortController();
  setTimeout(() => {
    controller.abort();
    fail(`timed out after ${TIMEOUT_MS} ms ${what()}`, 2);
  }, TIMEOUT_MS);
  return controller.signal;
}

/** `GET /api/v1/me` with the device token: `{user, device, relay_peer_id, …}`. */
export async function me(base, token) {
  let r;
  try {
    r = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  } catch (e) {
    fail(`GET ${base}/api/v1/me: ${e?.message ?? e}${e?.cause?.code ? ` (${e.cause.code})` : ""}`);
  }
  const body = await r.text();
  if (!r.ok) fail(`GET /api/v1/me: HTTP ${r.status}: ${body}`);
  const who = JSON.parse(body);
  if (!who.user || !who.device) fail(`GET /api/v1/me gave no user or device: ${body}`);
  return who;
}

/** The relay's `/sync` WebSocket URL for `base` and `token`. */
export function syncUrl(base, token) {
  const u = new URL(base);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.pathname = "/sync";
  u.search = `?token=${encodeURIComponent(token)}`;
  return u.toString();
}

/**
 * A Repo with no storage and one WebSocket client adapter to the relay.
 * `seen` collects every protocol message the adapter delivers (its type,
 * sender and document), for the scripts' own reports.
 */
export function connect(base, token) {
  const adapter = new WebSocketClientAdapter(syncUrl(base, token));
  const seen = [];
  adapter.on("message", (m) => seen.push({ type: m.type, senderId: m.senderId, documentId: m.documentId }));
  const repo = new Repo({ network: [adapter] });
  return { repo, adapter, seen };
}

/** Writes one JSON line on stdout, shuts the repo down and exits 0. */
export async function finish(repo, result) {
  await new Promise((resolve) => process.stdout.write(`${JSON.stringify(result)}\n`, resolve));
  try {
    await repo.shutdown();
  } catch {
    // Closing the socket is best effort; the result is already out.
  }
  process.exit(0);
}
