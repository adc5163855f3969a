// The report's behaviour: copy buttons, the check filters, matrix cells that filter. No network, no HTML
// built from data: it only shows, hides and copies text the page already holds.
(function () {
  "use strict";
  function copyText(text, button) {
    function done(ok) {
      button.textContent = ok ? "copied" : "select and copy";
      button.dataset.copied = ok ? "1" : "0";
      setTimeout(function () { button.textContent = "copy"; }, 2000);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(fallback(text)); });
    } else {
      done(fallback(text));
    }
  }
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) { return; }
    var source = document.getElementById(button.dataset.copy);
    if (source) { copyText(source.textContent, button); }
  });
  var checks = Array.prototype.slice.call(document.querySelectorAll("details.check"));
  var filter = document.getElementById("filter");
  var outcome = document.getElementById("outcome");
  var shown = document.getElementById("shown");
  var cell = null;
  function apply() {
    var words = (filter.value || "").toLowerCase();
    var wanted = outcome.value;
    var count = 0;
    checks.forEach(function (check) {
      var ok = (!wanted || check.dataset.outcome === wanted) &&
        (!words || check.textContent.toLowerCase().indexOf(words) >= 0) &&
        (!cell || (check.dataset.kind === cell.dataset.kind && check.dataset.rule === cell.dataset.rule));
      check.hidden = !ok;
      if (ok) { count += 1; }
    });
    shown.textContent = count + " of " + checks.length + " shown" +
      (cell ? " (" + cell.dataset.kind + ", rule " + cell.dataset.rule + ")" : "");
  }
  filter.addEventListener("input", apply);
  outcome.addEventListener("change", apply);
  document.getElementById("clear").addEventListener("click", function () {
    filter.value = ""; outcome.value = "";
    if (cell) { cell.classList.remove("selected"); cell = null; }
    apply();
  });
  document.querySelectorAll("#matrix td[data-kind] button").forEach(function (button) {
    button.addEventListener("click", function () {
      var td = button.parentElement;
      if (cell) { cell.classList.remove("selected"); }
      cell = cell === td ? null : td;
      if (cell) { cell.classList.add("selected"); }
      apply();
      document.getElementById("checks-section").scrollIntoView();
    });
  });
  apply();
})();
