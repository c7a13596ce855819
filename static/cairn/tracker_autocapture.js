/* Cairn browser tracker, autocapture: clicks, form submits and changes of inputs, selects and textareas, sent as
 * events named "click", "submit" and "change" through the tracker's queue (a burst of them is one request). What
 * is sent is described in docs/tracker.md; input values never are. heap.load(id, {disableAutocapture: true})
 * turns it off; {disableTextCapture: true} sends no text.
 *
 * FRAGMENT of the tracker's one closure, the LAST part (its `return` ends the closure), after tracker_api.js has
 * installed the tracker; it uses config, eventProperties, merged, track and safe from the parts before it. Not a
 * standalone script (manage.py build_tracker concatenates the parts; see tracker_device.js).
 */
if (config.disableAutocapture === true || !document.addEventListener) return;
var textCapture = config.disableTextCapture !== true;
var MAX_TEXT = 64;
var MAX_LONG = 1024; // href and hierarchy
var MAX_CLASSES = 10;
var NAME = /^[A-Za-z0-9_-]+$/; // ids and classes a selector can name; others are left out of the hierarchy
var KEYS = ["target_tag", "target_id", "target_class", "href", "target_text", "hierarchy", "path"];
// Elements whose text is (or shows) a value the visitor typed or picked: never read.
var VALUE_TAGS = { input: 1, textarea: 1, select: 1, option: 1 };
var NO_TEXT_TAGS = { script: 1, style: 1, noscript: 1, template: 1 };

function tagOf(element) { return String(element.tagName || "").toLowerCase(); }

function attribute(element, name) {
  var value = element.getAttribute ? element.getAttribute(name) : null;
  return value == null ? "" : String(value);
}

function has(element, name) { return !!(element.hasAttribute && element.hasAttribute(name)); }

function classesOf(element) {
  var names = attribute(element, "class").split(/\s+/), result = [];
  for (var i = 0; i < names.length; i++) if (names[i]) result.push(names[i]);
  return result;
}

function anyAncestor(element, test) { // the element itself or one of its ancestors
  for (; element; element = element.parentElement) if (test(element)) return true;
  return false;
}

// Text that may hold what the visitor typed or picked, or that the page asked to keep out.
function secret(element) {
  return VALUE_TAGS[tagOf(element)] === 1 || element.isContentEditable === true ||
    has(element, "data-heap-redact-text");
}

// textContent, without the text of value-holding, redacted or editable descendants, collapsed and cut.
function textOf(target) {
  if (!textCapture || anyAncestor(target, secret)) return "";
  var parts = [], size = 0;
  function walk(node) {
    for (var child = node.firstChild; child && size < 4096; child = child.nextSibling) {
      if (child.nodeType === 3) {
        parts.push(child.nodeValue);
        size += child.nodeValue.length;
      } else if (child.nodeType === 1 && !secret(child) && NO_TEXT_TAGS[tagOf(child)] !== 1) {
        walk(child);
      }
    }
  }
  walk(target);
  return parts.join("").replace(/\s+/g, " ").replace(/^ | $/g, "").slice(0, MAX_TEXT);
}

function hrefOf(target) {
  if (has(target, "href")) return attribute(target, "href");
  for (var element = target.parentElement; element; element = element.parentElement) {
    if (tagOf(element) === "a" && has(element, "href")) return attribute(element, "href");
  }
  return "";
}

function describe(element) {
  var text = "@" + tagOf(element) + ";", id = attribute(element, "id"), names = classesOf(element), written = 0;
  if (NAME.test(id)) text += "#" + id + ";";
  for (var i = 0; i < names.length && written < MAX_CLASSES; i++) {
    if (NAME.test(names[i])) {
      text += "." + names[i] + ";";
      written += 1;
    }
  }
  return text + "|";
}

// From body down to the target; the outermost elements go first when it is too long.
function hierarchyOf(target) {
  var parts = [], element = target;
  for (; element && element.nodeType === 1; element = element.parentElement) {
    parts.unshift(describe(element));
    if (tagOf(element) === "body") break;
  }
  var text = parts.join("");
  while (text.length > MAX_LONG && parts.length) {
    parts.shift();
    text = parts.join("");
  }
  return text;
}

function capture(name, target) {
  if (!target || anyAncestor(target, function (element) { return has(element, "data-heap-ignore"); })) return;
  var found = {
    target_tag: tagOf(target), target_id: attribute(target, "id"), target_class: classesOf(target).join(" "),
    href: hrefOf(target).slice(0, MAX_LONG), target_text: textOf(target), hierarchy: hierarchyOf(target),
    path: window.location.pathname
  };
  var properties = {};
  for (var i = 0; i < KEYS.length; i++) if (found[KEYS[i]]) properties[KEYS[i]] = found[KEYS[i]];
  // With the page's event properties, except those of the names autocapture owns.
  var base = merged(eventProperties, {});
  for (i = 0; i < KEYS.length; i++) delete base[KEYS[i]];
  track(name, base, properties);
}

function elementOf(node) {
  if (node && node.nodeType === 1) return node;
  return node && node.parentElement ? node.parentElement : null; // a text node: its element
}

function listen(type, targetOf) {
  // safe: a mistake here is logged, never thrown into the page. Capture phase: seen even when the page stops the
  // event's propagation.
  document.addEventListener(type, safe(function (event) {
    capture(type, targetOf(elementOf(event.target)));
  }), true);
}

function itself(element) { return element; }
listen("click", itself);
listen("submit", itself); // the form
listen("change", function (element) { return element && VALUE_TAGS[tagOf(element)] === 1 ? element : null; });
