// The graph report page: draw the Plotly figure built in Python (reports_app/charts.py) and make the
// builder's filter rows and date range a little friendlier. Everything works without it but the chart.
(function () {
  "use strict";

  function drawChart() {
    var data = document.getElementById("chart-data");
    var target = document.getElementById("chart");
    if (!data || !target || typeof Plotly === "undefined") return;
    var figure = JSON.parse(data.textContent);
    Plotly.newPlot(target, figure.data, figure.layout, { responsive: true, displaylogo: false })
      .then(function () { target.setAttribute("data-rendered", "true"); });
  }

  function setUpFilters() {
    var fieldset = document.getElementById("filters");
    var addButton = document.getElementById("add-filter");
    if (!fieldset || !addButton) return;
    addButton.addEventListener("click", function () {
      var rows = fieldset.querySelectorAll(".filter-row");
      var copy = rows[rows.length - 1].cloneNode(true);
      copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      copy.querySelector("select").selectedIndex = 0;
      fieldset.insertBefore(copy, addButton);
    });
    fieldset.addEventListener("click", function (event) {
      if (!event.target.classList.contains("remove-filter")) return;
      var row = event.target.closest(".filter-row");
      if (fieldset.querySelectorAll(".filter-row").length > 1) {
        row.remove();
      } else {
        row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      }
    });
  }

  function setUpRange() {
    var range = document.getElementById("range");
    ["date-from", "date-to"].forEach(function (id) {
      var input = document.getElementById(id);
      if (input && range) input.addEventListener("change", function () { range.value = "custom"; });
    });
  }

  function setUpConfirms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawChart();
    setUpFilters();
    setUpRange();
    setUpConfirms();
  });
})();
