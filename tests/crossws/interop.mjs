// A crossws server, as Nitro runs one (crossws's node adapter and its `redis()` sync driver
// over ioredis), next to a nitro-rs instance on the same Redis channel. A client of each types
// a line; each line must reach the other server's client, and every envelope that nitro-rs
// puts on the channel must read back with crossws's own `decodeEnvelope`.
//
//   node interop.mjs REDIS_URL NITRO_PORT CHANNEL
//
// Prints one JSON line with what each client received; exit status 0 when both directions
// worked, 1 otherwise. Everything stays on 127.0.0.1 and stops within 15 s.

import http from "node:http";
import Redis from "ioredis";
import WebSocket from "ws";
import nodeAdapter from "crossws/adapters/node";
import { decodeEnvelope, redis } from "crossws/sync";

const [redisUrl, nitroPort, channel] = process.argv.slice(2);
const deadline = Date.now() + 15_000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The seed chat's publish, in crossws's words.
const adapter = nodeAdapter({
  hooks: {
    open(peer) {
      peer.subscribe("chat");
    },
    message(peer, message) {
      peer.publish("chat", JSON.stringify({ user: "crossws", message: message.text() }));
    },
  },
  sync: redis({ client: new Redis(redisUrl), channel }),
});
const server = http.createServer((_req, res) => res.end());
server.on("upgrade", adapter.handleUpgrade);
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));

// Every envelope on the channel, as crossws decodes it.
const foreign = [];
const spy = new Redis(redisUrl);
spy.on("message", (_channel, raw) => {
  const envelope = decodeEnvelope(raw);
  foreign.push(envelope ? { ok: true, namespace: envelope.msg.namespace, data: envelope.msg.data } : { ok: false, raw });
});
await spy.subscribe(channel);

function connect(url) {
  return new Promise((resolve, reject) => {
    const client = new WebSocket(url);
    client.inbox = [];
    client.on("message", (data) => client.inbox.push(String(data)));
    client.on("open", () => resolve(client));
    client.on("error", reject);
  });
}
const crosswsClient = await connect(`ws://127.0.0.1:${server.address().port}/_ws`);
const nitroClient = await connect(`ws://127.0.0.1:${nitroPort}/_ws`);
// Both subscribe in `open`; give the hooks a moment to run.
await sleep(300);
nitroClient.send("hello from nitro-rs");
crosswsClient.send("hello from crossws");

const has = (client, text) => client.inbox.some((m) => m.includes(text));
let ok = false;
while (Date.now() < deadline) {
  ok = has(crosswsClient, "hello from nitro-rs") && has(nitroClient, "hello from crossws");
  if (ok) break;
  await sleep(50);
}
const fromNitro = foreign.filter((e) => !e.ok || (e.data && String(e.data).includes("nitro-rs")));
ok = ok && fromNitro.length > 0 && fromNitro.every((e) => e.ok && e.namespace === "/_ws");
console.log(JSON.stringify({ ok, crossws_client: crosswsClient.inbox, nitro_client: nitroClient.inbox, envelopes: foreign }));
process.exit(ok ? 0 : 1);
