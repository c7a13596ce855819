// "Define an event": a live preview count while the rule is edited (GET the page's preview endpoint, which runs
// the same matcher as ingest). Text is set with textContent only: every value here is attacker-controlled.
(function () {
  "use strict";
  var form = document.getElementById("define-form");
  if (!form) return;
  var preview = document.getElementById("preview");
  var fields = ["event", "selector", "text", "path"];
  var timer = null;
  var sent = 0;

  function show(parts) {
    preview.textContent = "";
    parts.forEach(function (part) {
      var node = part.strong ? document.createElement("strong") : document.createTextNode(part.text);
      if (part.strong) { node.textContent = part.text; node.id = "preview-count"; }
      preview.appendChild(node);
    });
  }

  function update() {
    var query = new URLSearchParams();
    fields.forEach(function (name) { query.set(name, form.elements[name].value); });
    var mine = ++sent;
    fetch(form.dataset.previewUrl + "&" + query.toString(), { credentials: "same-origin" })
      .then(function (answer) { return answer.json(); })
      .then(function (body) {
        if (mine !== sent) return; // a newer edit's answer wins
        fields.forEach(function (name) { form.elements[name].removeAttribute("aria-invalid"); });
        if (body.error) {
          if (fields.indexOf(body.error.field) >= 0) form.elements[body.error.field].setAttribute("aria-invalid", "true");
          show([{ text: body.error.message }]);
          return;
        }
        show([{ text: "Matches " }, { text: body.count.toLocaleString(), strong: true },
              { text: " of the last " + body.scanned.toLocaleString() + " " + form.elements.event.value +
                      " events (" + body.days + " days)." }]);
      })
      .catch(function () { show([{ text: "Preview unavailable." }]); });
  }

  fields.forEach(function (name) {
    form.elements[name].addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, 250);
    });
  });
})();
