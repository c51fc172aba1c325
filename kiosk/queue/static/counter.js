// Counter page: keep the waiting counts fresh without reloading the page (the buttons are plain forms).
(function () {
  "use strict";
  var root = document.querySelector("[data-state-url]");
  if (!root) { return; }
  async function refresh() {
    try {
      var resp = await fetch(root.dataset.stateUrl, { cache: "no-store" });
      if (resp.ok) {
        var state = await resp.json();
        state.services.forEach(function (s) {
          var row = root.querySelector('tr[data-service="' + s.code + '"]');
          if (!row) { return; }
          ["waiting", "served", "estimated_wait_min"].forEach(function (f) {
            var cell = row.querySelector('[data-field="' + f + '"]');
            if (cell) { cell.textContent = String(s[f]); }
          });
        });
      }
    } catch (e) { /* offline for a moment: keep the last numbers */ }
    setTimeout(refresh, 5000);
  }
  setTimeout(refresh, 5000);
  var buttons = document.querySelectorAll("form button");
  Array.prototype.forEach.call(buttons, function (b) {
    // One press, one action: a double tap must not call two numbers.
    b.form.addEventListener("submit", function () {
      Array.prototype.forEach.call(buttons, function (x) { x.disabled = true; });
    });
  });
})();
