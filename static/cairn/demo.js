/* The demo product's own code: what a real app would do with the Heap API. Works whether window.heap is
 * still the snippet's queue or the loaded tracker. */
(function () {
  "use strict";
  function byId(id) { return document.getElementById(id); }
  function checkedPlan(form) {
    var input = form.querySelector("input[name=plan]:checked");
    return input ? input.value : "Free";
  }

  function showWho() {
    var who = byId("whoami");
    if (who && window.heap && window.heap.userId) {
      who.textContent = window.heap.identity || "User " + window.heap.userId;
    }
    var account = byId("account-identity");
    if (account && window.heap && window.heap._cairn) {
      account.textContent = window.heap.identity || "(not signed in)";
    }
  }
  setInterval(showWho, 300);

  var signup = byId("signup-form");
  if (signup) signup.addEventListener("submit", function (event) {
    event.preventDefault();
    var email = byId("signup-email").value, plan = checkedPlan(signup);
    heap.identify(email);
    heap.addUserProperties({ plan: plan });
    heap.track("Sign Up", { plan: plan });
    window.location.href = signup.getAttribute("data-next");
  });

  var login = byId("login-form");
  if (login) login.addEventListener("submit", function (event) {
    event.preventDefault();
    heap.identify(byId("login-email").value);
    heap.track("Log In");
    window.location.href = login.getAttribute("data-next");
  });

  var planForm = byId("plan-form");
  if (planForm) planForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var plan = checkedPlan(planForm);
    heap.addUserProperties({ plan: plan });
    heap.track("Change Plan", { plan: plan });
    byId("plan-saved").hidden = false;
  });

  var logout = byId("logout");
  if (logout) logout.addEventListener("click", function () {
    heap.track("Log Out");
    heap.resetIdentity();
    window.location.href = document.body.getAttribute("data-landing");
  });

  var trackForm = byId("track-form");
  if (trackForm) trackForm.addEventListener("submit", function (event) {
    event.preventDefault();
    heap.track(byId("track-event").value);
  });

  var feedback = byId("feedback-form");
  if (feedback) feedback.addEventListener("submit", function (event) {
    event.preventDefault(); // autocapture has sent the submit (without any value); nothing else is sent
    byId("feedback-sent").hidden = false;
  });

  var leave = byId("leave");
  if (leave) leave.addEventListener("click", function () {
    heap.track("Leave Playground");
    window.location.href = leave.getAttribute("data-next");
  });
})();
