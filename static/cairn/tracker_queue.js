/* Cairn browser tracker, the send queue. FRAGMENT of the tracker's one closure, after tracker_device.js (whose
 * names it uses: endpoint, appId, store, load/save/drop, queueKey, readIdentity, writeIdentity, stopped); not a
 * standalone script (manage.py build_tracker concatenates the parts; see tracker_device.js).
 *
 * Calls are queued in order (persisted in localStorage, so a failed send is retried on this or a later
 * page, never dropped), sent in batches (a burst in one), one request in flight at a time, to POST /api/v1/browser.
 * On page hide the queue also goes out with navigator.sendBeacon; the items stay queued until a fetch
 * is answered, and the server stores each call once (idempotency keys), so a re-send is harmless.
 */
// A request carries at most what the browser endpoint takes: MAX_BROWSER_CALLS (200) calls, and a body well
// under its 5 MB limit (CAIRN_MAX_BODY_BYTES; at most 3 UTF-8 bytes per character counted here). A beacon stays
// within the 64 KB that sendBeacon (and a keepalive fetch) may have in flight.
var BATCH_CALLS = 200;
var BATCH_CHARS = 300000;
var BEACON_CHARS = 60000;
// A burst is one request: the send waits until no call came for BURST_QUIET_MS, at most BURST_MAX_MS after the
// oldest call waiting (older calls, e.g. of an earlier page, go at once).
var BURST_QUIET_MS = 250;
var BURST_MAX_MS = 1000;
var MAX_QUEUE = 1000;
var ORPHAN_MS = 90000;
var MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;

var queue = [];
var inFlight = false;
var retryDelay = 0;
var timer = null;
var lastTimestamp = 0;

function now() {
  // Strictly increasing, so calls made in the same millisecond keep their order on the server too.
  lastTimestamp = Math.max(Date.now(), lastTimestamp + 1);
  return lastTimestamp;
}

function persist() {
  if (queue.length) save(queueKey, { at: Date.now(), items: queue });
  else drop(queueKey);
}

function enqueue(call) {
  if (stopped) return;
  call.i = randomHex(8);
  call.u = readIdentity().userId;
  call.ts = now();
  queue.push(call);
  if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
  persist();
  soon();
}

function soon() {
  if (!queue.length) return;
  if (inFlight || retryDelay) return schedule(retryDelay); // the answer, or the retry's timer, sends it
  clearTimeout(timer);
  timer = null;
  var wait = Math.min(queue[queue.length - 1].ts + BURST_QUIET_MS, queue[0].ts + BURST_MAX_MS) - Date.now();
  schedule(wait > 0 ? wait : 0);
}

// Queues left by tabs that are gone (closed before their sends were confirmed) are adopted.
function adoptOrphans() {
  if (!store) return;
  var keys = [];
  for (var i = 0; i < store.length; i++) {
    var key = store.key(i);
    if (key && key.indexOf(QUEUE_PREFIX) === 0 && key !== queueKey) keys.push(key);
  }
  for (var j = 0; j < keys.length; j++) {
    var saved = load(keys[j]);
    if (!saved || !saved.items || Date.now() - saved.at > ORPHAN_MS) {
      if (saved && saved.items) queue = queue.concat(saved.items);
      drop(keys[j]);
    }
  }
  queue.sort(function (a, b) { return a.ts - b.ts; });
}

function nextBatch(items, chars) {
  var batch = [], size = 0;
  for (var i = 0; i < items.length && batch.length < BATCH_CALLS; i++) {
    if (items[i].u !== items[0].u) break; // one batch, one device user
    var wire = toWire(items[i]);
    size += JSON.stringify(wire).length + 1;
    if (batch.length && size > chars) break;
    batch.push({ item: items[i], wire: wire });
  }
  return batch;
}

function toWire(item) {
  var wire = { type: item.t, timestamp: item.ts };
  if (item.t === "identify") wire.identity = item.id;
  else wire.properties = item.p;
  if (item.t === "track") wire.event = item.e;
  if (item.t === "track" || item.t === "pageview") {
    wire.idempotency_key = "c:" + item.i;
    wire.session_id = item.s;
  }
  return wire;
}

function body(batch) {
  return JSON.stringify({
    app_id: appId, user_id: batch[0].item.u, sent_at: Date.now(),
    calls: batch.map(function (entry) { return entry.wire; })
  });
}

function schedule(delay) {
  if (timer || inFlight) return;
  timer = setTimeout(function () { timer = null; flush(); }, delay);
}

function flush() {
  if (stopped || inFlight || !queue.length || typeof window.fetch !== "function") return;
  var batch = nextBatch(queue, BATCH_CHARS);
  inFlight = true;
  var sent = body(batch);
  var done = function (ok, answer) {
    inFlight = false;
    if (ok && !confirm(batch, answer)) {
      retryDelay = 0;
      soon();
    } else {
      retryDelay = Math.min(retryDelay ? retryDelay * 2 : 1000, 30000);
      if (queue.length) save(queueKey, { at: Date.now(), items: queue });
      schedule(retryDelay);
    }
  };
  try {
    window.fetch(endpoint, {
      method: "POST", body: sent, keepalive: sent.length < 60000, credentials: "omit",
      headers: { "Content-Type": "text/plain;charset=UTF-8" }
    }).then(function (response) {
      // 2xx, or a 4xx the server will answer the same way forever (bad call, unknown app): done.
      // Network errors, 5xx, 408 and 429 are retried.
      var status = response.status;
      if (status >= 500 || status === 408 || status === 429 || status === 0) return done(false);
      return response.json().then(function (answer) { done(true, answer); }, function () { done(true); });
    }, function () { done(false); });
  } catch (e) {
    done(false);
  }
}

// -> how many calls stay queued: an addAccountProperties over its account's rate limit is rejected alone
// (`rate_limited`; the batch's other calls were stored) and sent again after the usual backoff.
function confirm(batch, answer) {
  var sentIds = {}, kept = 0, rejected = (answer && answer.rejected) || [];
  for (var i = 0; i < batch.length; i++) sentIds[batch[i].item.i] = true;
  for (var r = 0; r < rejected.length; r++) {
    var entry = rejected[r] && rejected[r].error && rejected[r].error.code === "rate_limited" && batch[rejected[r].index];
    if (entry && sentIds[entry.item.i]) { delete sentIds[entry.item.i]; kept++; }
  }
  queue = queue.filter(function (item) { return !sentIds[item.i]; });
  var oldUserId = batch[0].item.u;
  if (answer && typeof answer.user_id === "string" && /^\d{1,16}$/.test(answer.user_id)) {
    if (answer.user_id !== oldUserId) {
      // Calls made after the identify, still waiting, belong to the user the server answered.
      for (var j = 0; j < queue.length; j++) if (queue[j].u === oldUserId) queue[j].u = answer.user_id;
    }
    var current = readIdentity();
    // Adopt the answer unless resetIdentity (or another tab) moved on to another user meanwhile.
    if (current.userId === oldUserId) {
      var identified = batch.some(function (entry) { return entry.item.t === "identify"; });
      var identity = identified ? answer.identity : current.identity;
      writeIdentity(answer.user_id, identity == null ? null : String(identity));
    }
  }
  persist();
  return kept;
}

// On page hide, send what is still queued with sendBeacon (it outlives the page). The items stay queued
// until a fetch confirms them: the server stores each call once, so a later re-send is harmless.
function beacon() {
  if (stopped || !queue.length || !navigator.sendBeacon) return;
  persist();
  var rest = queue.slice(), budget = BEACON_CHARS;
  while (rest.length) {
    var batch = nextBatch(rest, budget - 1000); // room for the body's other fields
    var text = body(batch);
    budget -= text.length;
    if (budget < 0 || !navigator.sendBeacon(endpoint, text)) break;
    rest = rest.slice(batch.length);
  }
}
