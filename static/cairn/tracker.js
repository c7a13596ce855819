/*! Cairn browser tracker: heap.js-compatible API. Loaded by Heap's classic snippet (heap.appid, calls queued in
 * the heap array) or heap.js 5's (heap.envId, calls queued in window.heapReadyCb), with only the script URL
 * changed: the Cairn server is the one this script came from. Every method either snippet declares exists.
 * No dependencies. Autocapture is tracker_autocapture.js, built into the same tracker.min.js.
 *
 * Calls are queued in order (persisted in localStorage, so a failed send is retried on this or a later
 * page, never dropped), sent in small batches, one request in flight at a time, to POST /api/v1/browser.
 * On page hide the queue also goes out with navigator.sendBeacon; the items stay queued until a fetch
 * is answered, and the server stores each call once (idempotency keys), so a re-send is harmless.
 * Every public function is wrapped: the tracker never throws into the host page.
 */
(function (window, document) {
  "use strict";
  var stub = window.heap;
  if (!stub || stub._cairn) return; // no snippet, or already loaded
  var config = stub.config || stub.clientConfig || {};
  var appId = String(stub.appid || stub.envId || config.appid || "");
  if (!appId) return;

  var SESSION_SECONDS = 30 * 60;
  var ID_COOKIE_SECONDS = 395 * 24 * 60 * 60; // 13 months
  var BATCH_CALLS = 20;
  var BATCH_CHARS = 16000; // well below the 64 KB keepalive/sendBeacon budget
  var MAX_QUEUE = 1000;
  var MAX_VALUE = 1024;
  var MAX_IDENTITY = 255; // SPEC 2: the server refuses longer identities
  var ORPHAN_MS = 90000;
  var MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;

  var host = String(config.host || scriptHost() || "").replace(/\/+$/, "");
  var endpoint = host + "/api/v1/browser?app_id=" + encodeURIComponent(appId);
  var suffix = appId.replace(/[^A-Za-z0-9_-]/g, "_");
  var ID_COOKIE = "_cairn_id_" + suffix;
  var SESSION_COOKIE = "_cairn_ses_" + suffix;
  var QUEUE_PREFIX = "_cairn_q_" + suffix + "_";
  var PROPS_KEY = "_cairn_ep_" + suffix;
  var STOPPED_COOKIE = "_cairn_off_" + suffix;

  var queue = [];
  var inFlight = false;
  var retryDelay = 0;
  var timer = null;
  var lastTimestamp = 0;
  var memoryStore = {};
  var eventProperties = load(PROPS_KEY) || {};
  var pageviewProps = {}; // this page's (addPageviewProperties): on its page views only, not kept across pages
  var lastHref = null; // the address of the last page view, the referrer of the next one in a single-page app
  var stopped = getCookie(STOPPED_COOKIE) === "1"; // heap.stopTracking(), kept across pages as Heap does
  var tabId = tabIdentifier();
  var queueKey = QUEUE_PREFIX + tabId;

  function scriptHost() {
    var script = document.currentScript;
    if (!script || !script.src) return "";
    var match = /^(https?:\/\/[^\/]+)/.exec(script.src);
    return match ? match[1] : "";
  }

  // ---- storage: cookies for ids, localStorage for the queue (memory if storage is blocked) ----------

  function storage() {
    try {
      var s = window.localStorage;
      s.setItem("_cairn_t", "1");
      s.removeItem("_cairn_t");
      return s;
    } catch (e) {
      return null;
    }
  }
  var store = storage();

  function load(key) {
    try {
      var text = store ? store.getItem(key) : memoryStore[key];
      return text ? JSON.parse(text) : null;
    } catch (e) {
      return null;
    }
  }

  function save(key, value) {
    try {
      var text = JSON.stringify(value);
      if (store) store.setItem(key, text);
      else memoryStore[key] = text;
    } catch (e) { /* full or blocked: the in-memory queue still works */ }
  }

  function drop(key) {
    try {
      if (store) store.removeItem(key);
      else delete memoryStore[key];
    } catch (e) { /* ignore */ }
  }

  function tabIdentifier() {
    var id;
    try {
      id = window.sessionStorage.getItem("_cairn_tab");
      if (!id) {
        id = randomHex(8);
        window.sessionStorage.setItem("_cairn_tab", id);
      }
    } catch (e) {
      id = randomHex(8);
    }
    return id;
  }

  function getCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var at = parts[i].indexOf("=");
      if (parts[i].slice(0, at) === name) return decodeURIComponent(parts[i].slice(at + 1));
    }
    return null;
  }

  function setCookie(name, value, seconds) {
    var secure = window.location.protocol === "https:" ? "; Secure" : "";
    document.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" + seconds +
      "; Path=/; SameSite=Lax" + secure;
  }

  // ---- ids -------------------------------------------------------------------------------------------

  function randomWords(count) {
    var words = new Uint32Array(count);
    var crypto = window.crypto || window.msCrypto;
    if (crypto && crypto.getRandomValues) crypto.getRandomValues(words);
    else for (var i = 0; i < count; i++) words[i] = Math.floor(Math.random() * 4294967296);
    return words;
  }

  function randomHex(bytes) {
    var words = randomWords(Math.ceil(bytes / 4)), text = "";
    for (var i = 0; i < words.length; i++) text += ("0000000" + words[i].toString(16)).slice(-8);
    return text.slice(0, bytes * 2);
  }

  function newUserId() {
    // Below 2**53, exact in a double: 21 random high bits and 32 low bits.
    var words = randomWords(2);
    return String((words[0] & 0x1fffff) * 4294967296 + words[1]);
  }

  // The cookie holds "user_id|identity"; other tabs see changes at once because it is read on every call.
  function readIdentity() {
    var value = getCookie(ID_COOKIE);
    if (value) {
      var bar = value.indexOf("|");
      var userId = bar < 0 ? value : value.slice(0, bar);
      if (/^\d{1,16}$/.test(userId) && Number(userId) < 9007199254740992) {
        heap.userId = userId;
        heap.identity = bar < 0 || bar === value.length - 1 ? null : value.slice(bar + 1);
        return { userId: userId, identity: heap.identity };
      }
    }
    // No cookie (first visit, cookies cleared, or cookies blocked): keep the user this page already has,
    // so a browser that refuses cookies is still one user per page rather than one per call.
    return heap.userId ? writeIdentity(heap.userId, heap.identity) : writeIdentity(newUserId(), null);
  }

  function writeIdentity(userId, identity) {
    setCookie(ID_COOKIE, userId + "|" + (identity == null ? "" : identity), ID_COOKIE_SECONDS);
    heap.userId = userId;
    heap.identity = identity;
    return { userId: userId, identity: identity };
  }

  function sessionId(renew) {
    var id = renew ? null : getCookie(SESSION_COOKIE);
    if (!id || !/^[0-9a-f]{16}$/.test(id)) id = randomHex(8);
    setCookie(SESSION_COOKIE, id, SESSION_SECONDS); // every call extends the 30-minute window
    return id;
  }

  // ---- values ----------------------------------------------------------------------------------------

  // Keep only what the server accepts (strings, finite numbers, booleans as strings; null where it means
  // "remove"), so one odd value never costs the whole call.
  function clean(properties, allowNull) {
    var result = {};
    if (!properties || typeof properties !== "object") return result;
    for (var key in properties) {
      if (!Object.prototype.hasOwnProperty.call(properties, key) || !key || key.length > MAX_VALUE) continue;
      var value = properties[key];
      if (typeof value === "boolean") value = String(value);
      if (typeof value === "string") result[key] = value.slice(0, MAX_VALUE);
      else if (typeof value === "number" && isFinite(value)) result[key] = value;
      else if (value === null && allowNull) result[key] = null;
    }
    return result;
  }

  function merged(base, extra) {
    var result = {}, key;
    for (key in base) result[key] = base[key];
    for (key in extra) result[key] = extra[key];
    return result;
  }

  function now() {
    // Strictly increasing, so calls made in the same millisecond keep their order on the server too.
    lastTimestamp = Math.max(Date.now(), lastTimestamp + 1);
    return lastTimestamp;
  }

  // ---- the queue -------------------------------------------------------------------------------------

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
    schedule(retryDelay || 30);
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

  function nextBatch(items) {
    var batch = [], size = 0;
    for (var i = 0; i < items.length && batch.length < BATCH_CALLS; i++) {
      if (items[i].u !== items[0].u) break; // one batch, one device user
      var wire = toWire(items[i]);
      size += JSON.stringify(wire).length;
      if (batch.length && size > BATCH_CHARS) break;
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
    var batch = nextBatch(queue);
    inFlight = true;
    var sent = body(batch);
    var done = function (ok, answer) {
      inFlight = false;
      if (ok) {
        retryDelay = 0;
        confirm(batch, answer);
        if (queue.length) schedule(0);
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

  function confirm(batch, answer) {
    var sentIds = {};
    for (var i = 0; i < batch.length; i++) sentIds[batch[i].item.i] = true;
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
  }

  // On page hide, send what is still queued with sendBeacon (it outlives the page). The items stay queued
  // until a fetch confirms them: the server stores each call once, so a later re-send is harmless.
  function beacon() {
    if (stopped || !queue.length || !navigator.sendBeacon) return;
    persist();
    var rest = queue.slice(), budget = 60000;
    while (rest.length) {
      var batch = nextBatch(rest);
      var text = body(batch);
      budget -= text.length;
      if (budget < 0 || !navigator.sendBeacon(endpoint, text)) break;
      rest = rest.slice(batch.length);
    }
  }

  // ---- the public API (Heap's names) -------------------------------------------------------------------

  function safe(fn) {
    return function () {
      try {
        return fn.apply(null, arguments);
      } catch (e) {
        if (window.console && console.warn) console.warn("Cairn tracker:", e);
      }
    };
  }

  function pageviewProperties(referrer) {
    var location = window.location, properties = {
      path: location.pathname, query: location.search, hash: location.hash,
      title: document.title, referrer: referrer == null ? document.referrer : referrer
    };
    var pairs = location.search.replace(/^\?/, "").split("&");
    for (var i = 0; i < pairs.length; i++) {
      var at = pairs[i].indexOf("="), name = pairs[i].slice(0, at);
      if (at > 0 && /^utm_(source|medium|campaign|term|content)$/.test(name)) {
        try {
          properties[name] = decodeURIComponent(pairs[i].slice(at + 1).replace(/\+/g, " "));
        } catch (e) { /* malformed escape: skip it */ }
      }
    }
    return clean(properties, false);
  }

  function track(name, base, properties) {
    if (name == null || String(name).replace(/\s+/g, "") === "") return;
    enqueue({ t: "track", e: String(name).slice(0, 255), s: sessionId(), p: merged(base, clean(properties, false)) });
  }

  // A page view of the current address: event properties, then this page's pageview properties, then the
  // call's own, then what the address says (its path, query, title, referrer: the page view's own facts).
  function pageview(properties) {
    var href = window.location.href, referrer = lastHref == null ? document.referrer : lastHref;
    lastHref = href;
    var base = merged(merged(eventProperties, pageviewProps), clean(properties, false));
    enqueue({ t: "pageview", s: sessionId(), p: merged(base, pageviewProperties(referrer)) });
  }

  function setProperty(properties, name, value) {
    // Only own, plain names: `delete`/assignment through "__proto__" would touch the object's prototype.
    if (typeof name === "string" && name !== "__proto__") {
      if (value === undefined) delete properties[name];
      else properties[name] = value;
    }
  }

  // User or account properties: the same value rules (null removes one).
  function setProperties(type, properties) {
    var cleaned = clean(properties, true);
    for (var key in cleaned) { // a key the server refuses would cost the whole call
      if (key.toLowerCase() === "user_id" || key.toLowerCase() === "id") delete cleaned[key];
    }
    for (key in cleaned) return enqueue({ t: type, p: cleaned });
  }

  function nothing() { /* accepted and ignored: Cairn has no such feature (docs/tracker.md) */ }

  var api = {
    track: function (name, properties) {
      track(name, eventProperties, properties);
    },
    trackPageview: function (properties) {
      pageview(properties);
    },
    addPageviewProperties: function (properties) {
      pageviewProps = merged(pageviewProps, clean(properties, false));
    },
    removePageviewProperty: function (name) {
      setProperty(pageviewProps, name);
    },
    clearPageviewProperties: function () {
      pageviewProps = {};
    },
    identify: function (identity) {
      if (typeof identity === "number" && isFinite(identity)) identity = String(identity);
      if (typeof identity !== "string" || !identity.replace(/\s+/g, "")) return;
      identity = identity.replace(/^\s+|\s+$/g, "");
      // Refused, as the server would refuse it (SPEC 2 rule 1: nothing changes). Cutting it to 255 instead
      // would make two long identities with the same first 255 characters one person. Counted in code
      // points, as the server counts.
      if (identity.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, "_").length > MAX_IDENTITY) return;
      var current = readIdentity();
      if (current.identity === identity) return; // already this person: nothing to send
      writeIdentity(current.userId, identity);
      sessionId();
      enqueue({ t: "identify", id: identity });
    },
    addUserProperties: function (properties) {
      setProperties("add_user_properties", properties);
    },
    // The current user's account: the server finds it from the environment's account id property.
    addAccountProperties: function (properties) {
      setProperties("add_account_properties", properties);
    },
    addEventProperties: function (properties) {
      eventProperties = merged(eventProperties, clean(properties, false));
      save(PROPS_KEY, eventProperties);
    },
    removeEventProperty: function (name) {
      setProperty(eventProperties, name);
      save(PROPS_KEY, eventProperties);
    },
    clearEventProperties: function () {
      eventProperties = {};
      drop(PROPS_KEY);
    },
    resetIdentity: function () {
      // A new anonymous person on this device: new user_id, new session, no event properties carried
      // over from the previous person. Nothing is sent; calls already queued keep their own user_id.
      writeIdentity(newUserId(), null);
      sessionId(true);
      eventProperties = {};
      drop(PROPS_KEY);
    },
    getUserId: function () { return readIdentity().userId; },
    getIdentity: function () { return readIdentity().identity; },
    getSessionId: function () { return getCookie(SESSION_COOKIE); },
    // Nothing is captured or sent while stopped, on this page and later ones, until startTracking. Calls made
    // before stopping stay queued on the device and go out after startTracking.
    stopTracking: function () {
      stopped = true;
      setCookie(STOPPED_COOKIE, "1", ID_COOKIE_SECONDS);
    },
    startTracking: function () {
      stopped = false;
      setCookie(STOPPED_COOKIE, "", 0);
      schedule(0);
    },
    // The tracker is loaded when this runs (the snippet queues earlier calls): the callback runs now.
    onReady: function (callback) {
      if (typeof callback === "function") callback();
    },
    // Autocapture's way in (tracker_autocapture.js): the page's event properties, except the keys it owns.
    _capture: function (name, properties, ownKeys) {
      var base = merged(eventProperties, {});
      for (var i = 0; i < ownKeys.length; i++) delete base[ownKeys[i]];
      track(name, base, properties);
    },
    // For tests and debugging: how many calls are waiting to be confirmed by the server.
    pending: function () { return queue.length; }
  };
  api.setEventProperties = api.addEventProperties;
  api.unsetEventProperty = api.removeEventProperty;
  var IGNORED = ["init", "load", "addAdapter", "addTransformer", "addTransformerFn", "identifyHashed"];
  for (var ignored = 0; ignored < IGNORED.length; ignored++) api[IGNORED[ignored]] = nothing;

  // Single-page apps: a pushState or back/forward to another path or query is a page view too (the
  // previous address is its referrer). The page's own pushState runs first and keeps its behaviour.
  function watchRoutes() {
    var history = window.history;
    var changed = safe(function () {
      if (lastHref != null && window.location.href.split("#")[0] === lastHref.split("#")[0]) return;
      pageview();
    });
    if (!history || typeof history.pushState !== "function") return;
    var pushState = history.pushState;
    history.pushState = function () {
      var result = pushState.apply(this, arguments);
      changed();
      return result;
    };
    window.addEventListener("popstate", changed);
  }

  // ---- start -----------------------------------------------------------------------------------------

  var heap = {};
  for (var name in api) heap[name] = safe(api[name]);
  heap._cairn = true;
  heap.appid = appId;
  if (stub.envId) heap.envId = appId;
  heap.config = heap.clientConfig = config;
  heap.push = safe(function (call) { // calls queued by the classic snippet: ["track", name, properties]
    if (call && Object.prototype.hasOwnProperty.call(api, call[0])) api[call[0]].apply(null, call.slice(1));
  });
  window.heap = heap;

  // Calls made before the script loaded, in the order they were made: the classic snippet's (the heap array)
  // and heap.js 5's (window.heapReadyCb: {name, fn}, where fn calls window.heap[name], this tracker's).
  function queuedCalls() {
    var found = [], classic = [], ready = window.heapReadyCb, i;
    try { classic = Array.prototype.slice.call(stub, 0); } catch (e) { classic = []; }
    for (i = 0; i < classic.length; i++) {
      if (classic[i]) found.push({ name: classic[i][0], run: heap.push, call: classic[i] });
    }
    if (ready && typeof ready.length === "number") {
      for (i = 0; i < ready.length; i++) {
        if (ready[i] && typeof ready[i].fn === "function") found.push({ name: ready[i].name, run: ready[i].fn });
      }
      // Anything queued there later runs at once (code that kept the snippet's stubs).
      ready.push = safe(function (entry) { if (entry && typeof entry.fn === "function") entry.fn(); });
    }
    return found;
  }
  var PAGEVIEW_SETTERS = { addPageviewProperties: 1, removePageviewProperty: 1, clearPageviewProperties: 1 };

  safe(function () {
    var saved = load(queueKey);
    if (saved && saved.items) queue = saved.items;
    adoptOrphans();
    var oldest = Date.now() - MAX_AGE_MS; // e.g. an origin the environment does not allow: give up
    queue = queue.filter(function (item) { return item && item.ts > oldest; });
    for (var i = 0; i < queue.length; i++) lastTimestamp = Math.max(lastTimestamp, queue[i].ts || 0);
    readIdentity();
    var calls = queuedCalls();
    // Pageview properties set before the script loaded describe this page: its own page view carries them.
    for (i = 0; i < calls.length; i++) {
      if (PAGEVIEW_SETTERS[calls[i].name] === 1) safe(calls[i].run)(calls[i].call);
    }
    if (config.disablePageviewAutocapture !== true) {
      pageview();
      watchRoutes();
    }
    for (i = 0; i < calls.length; i++) {
      if (PAGEVIEW_SETTERS[calls[i].name] !== 1) safe(calls[i].run)(calls[i].call);
    }
    if (window.addEventListener) {
      window.addEventListener("pagehide", safe(beacon));
      document.addEventListener("visibilitychange", safe(function () {
        if (document.visibilityState === "hidden") beacon();
      }));
    }
    schedule(0);
  })();
})(window, document);
