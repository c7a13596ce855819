/* Cairn browser tracker, the public API and the start. FRAGMENT of the tracker's one closure, after
 * tracker_device.js and tracker_queue.js (whose names it uses); not a standalone script (manage.py build_tracker
 * concatenates the parts; see tracker_device.js).
 *
 * Heap's methods (window.heap), then the start: window.heap is replaced by this tracker, the calls both snippets
 * queued before it loaded are replayed in order, the page view is sent and the page-hide beacon is set up.
 */
var MAX_VALUE = 1024;
var MAX_IDENTITY = 255; // SPEC 2: the server refuses longer identities
var pageviewProps = {}; // this page's (addPageviewProperties): on its page views only, not kept across pages
var lastHref = null; // the address of the last page view, the referrer of the next one in a single-page app

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
