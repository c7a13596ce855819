// Users view: "+ value" adds another value box to an "is one of" filter row; value boxes hide for
// "is set" / "is not set". Without JavaScript the form still works (one value per row).
(function () {
  "use strict";
  document.querySelectorAll(".filter-row").forEach(function (row) {
    var op = row.querySelector("select");
    var values = row.querySelector(".values");
    var add = row.querySelector(".add-value");
    var name = row.dataset.name + "_v";
    function refresh() {
      var needsValue = op.value === "eq" || op.value === "in";
      values.hidden = !needsValue;
      values.querySelectorAll("input").forEach(function (input) { input.disabled = !needsValue; });
      add.hidden = op.value !== "in";
    }
    add.addEventListener("click", function () {
      var input = document.createElement("input");
      input.name = name;
      input.placeholder = "value";
      input.setAttribute("aria-label", "value");
      values.appendChild(input);
      input.focus();
    });
    op.addEventListener("change", refresh);
    refresh();
  });
})();

// The count of matching users is one COUNT per filter change: the page does not wait for it.
(function () {
  "use strict";
  var count = document.getElementById("user-count");
  if (!count || !count.querySelector(".pending")) { return; }
  fetch(count.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
    .then(function (answer) { count.querySelector(".pending").textContent = answer.text; })
    .catch(function () { count.querySelector(".pending").textContent = "Could not count users."; });
})();
