// The graph report page: draw the Plotly figure built in Python (reports_app/charts.py) and make the
// builder's filter rows, funnel steps and date range a little friendlier. Everything works without it but the chart.
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

  // A funnel's steps: 2 to data-max rows, numbered in order; the last two are never removed. The buttons are
  // submit buttons (the page edits the steps itself without JavaScript); here they edit the rows in place.
  function setUpSteps() {
    var steps = document.getElementById("funnel-steps");
    var addButton = document.getElementById("add-step");
    if (!steps || !addButton) return;
    var max = parseInt(steps.getAttribute("data-max"), 10) || 10;
    function renumber() {
      var rows = steps.querySelectorAll(".funnel-step");
      rows.forEach(function (row, index) {
        row.querySelector(".step-number").textContent = String(index + 1);
        row.querySelector("select").setAttribute("aria-label", "Step " + (index + 1));
        var remove = row.querySelector(".remove-step");
        remove.value = "remove-" + (index + 1);
        remove.setAttribute("aria-label", "Remove step " + (index + 1));
      });
      addButton.hidden = rows.length >= max;
    }
    addButton.addEventListener("click", function (event) {
      event.preventDefault();
      var rows = steps.querySelectorAll(".funnel-step");
      if (rows.length >= max) return;
      var copy = rows[rows.length - 1].cloneNode(true);
      copy.querySelector("select").selectedIndex = 0;
      steps.insertBefore(copy, addButton);
      renumber();
    });
    steps.addEventListener("click", function (event) {
      if (!event.target.classList.contains("remove-step")) return;
      event.preventDefault();
      var row = event.target.closest(".funnel-step");
      if (steps.querySelectorAll(".funnel-step").length > 2) {
        row.remove();
      } else {
        row.querySelector("select").selectedIndex = 0;
      }
      renumber();
    });
    renumber();
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
    setUpSteps();
    setUpRange();
    setUpConfirms();
  });
})();
