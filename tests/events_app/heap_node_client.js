// Drives Heap's own Node client (`heap-api`, from .ci/node) against Cairn, the client's code unchanged: only the
// host of its requests is rewritten, as a DNS entry or a proxy would (the client has no host option).
// Usage: node heap_node_client.js <cairn base url> <app_id> <calls as JSON>; prints one JSON line per call.
"use strict";
const path = require("path");

const [base, appId, callsJson] = process.argv.slice(2);
const nodeRoot = path.resolve(__dirname, "..", "..", ".ci", "node", "node_modules");
const heapDir = path.dirname(require.resolve("heap-api/package.json", { paths: [nodeRoot] }));
const requestPath = require.resolve("request", { paths: [heapDir] });
const realRequest = require(requestPath);
require.cache[requestPath].exports = function (options, callback) {
  options.url = options.url.replace("https://heapanalytics.com", base);
  return realRequest(options, callback);
};
const heap = require(heapDir)(appId);

async function main() {
  for (const call of JSON.parse(callsJson)) {
    let outcome;
    try {
      if (call.method === "track") {
        await heap.track(call.event, call.identity, call.properties);
      } else {
        await heap.addUserProperties(call.identity, call.properties);
      }
      outcome = { ok: true };
    } catch (error) {
      outcome = { ok: false, error: String(error && error.message ? error.message : error) };
    }
    console.log(JSON.stringify(outcome));
  }
}

main();
