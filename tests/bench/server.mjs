// The peer the benchmark compares the relay with: a plain automerge-repo sync
// server on Node, built like automerge-repo-sync-server (a WebSocket server
// adapter, files on disk, no announcing of documents to peers that did not
// ask for them). It validates nothing and has no auth.
//
//   node server.mjs PORT DATA_DIR
//
// Prints `listening on PORT` on stdout once it accepts connections.
// PEER_SHARE_POLICY=true announces every loaded document to every peer
// (automerge-repo's default) instead.

import { WebSocketServer } from "ws";
import { Repo } from "@automerge/automerge-repo";
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";

const [port, dir] = process.argv.slice(2);
if (!port || !dir) {
  process.stderr.write("usage: node server.mjs PORT DATA_DIR\n");
  process.exit(64);
}
const announce = process.env.PEER_SHARE_POLICY === "true";
const wss = new WebSocketServer({ port: Number(port), host: "127.0.0.1" });
const adapter = new NodeWSServerAdapter(wss);
const repo = new Repo({
  network: [adapter],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `bench-peer-${process.pid}`,
  sharePolicy: async () => announce,
});
// The adapter handles connections only once the repo has connected it (after
// the storage id is read): announce the port only then.
await new Promise((resolve) => wss.on("listening", resolve));
while (!adapter.peerId) await new Promise((resolve) => setTimeout(resolve, 5));
process.stdout.write(`listening on ${wss.address().port}\n`);
const stop = async () => {
  try {
    await repo.shutdown();
  } finally {
    process.exit(0);
  }
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
