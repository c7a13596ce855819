/*! Cairn browser tracker: heap.js-compatible API. Loaded by Heap's classic snippet (heap.appid, calls queued in
 * the heap array) or heap.js 5's (heap.envId, calls queued in window.heapReadyCb), with only the script URL
 * changed: the Cairn server is the one this script came from. Every method either snippet declares exists.
 * No dependencies. Every public function is wrapped: the tracker never throws into the host page.
 *
 * FRAGMENT, not a standalone script: `manage.py build_tracker` concatenates tracker_device.js, tracker_queue.js,
 * tracker_api.js and tracker_autocapture.js, in that order, inside ONE closure `(function (window, document) {
 * "use strict"; ... })(window, document)` and minifies it into tracker.min.js, the file that is served. The parts
 * share that closure's scope (nothing is put on window but window.heap) and run top to bottom.
 *
 * This part: the device's state. The snippet's stub and options, the names of this app's cookies and storage
 * keys, storage (localStorage, memory when blocked), cookies, random ids, the identity cookie and the session.
 */
var stub = window.heap;
if (!stub || stub._cairn) return; // no snippet, or already loaded
var config = stub.config || stub.clientConfig || {};
var appId = String(stub.appid || stub.envId || config.appid || "");
if (!appId) return;


var SESSION_SECONDS = 30 * 60;
var ID_COOKIE_SECONDS = 395 * 24 * 60 * 60; // 13 months

var host = String(config.host || scriptHost() || "").replace(/\/+$/, "");
var endpoint = host + "/api/v1/browser?app_id=" + encodeURIComponent(appId);
var suffix = appId.replace(/[^A-Za-z0-9_-]/g, "_");
var ID_COOKIE = "_cairn_id_" + suffix;
var SESSION_COOKIE = "_cairn_ses_" + suffix;
var QUEUE_PREFIX = "_cairn_q_" + suffix + "_";
var PROPS_KEY = "_cairn_ep_" + suffix;
var STOPPED_COOKIE = "_cairn_off_" + suffix;

var memoryStore = {};
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
// After `store`: heap.addEventProperties are kept across pages (docs/tracker.md), so they are read back here.
var eventProperties = load(PROPS_KEY) || {};

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
