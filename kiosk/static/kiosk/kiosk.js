/* Kiosk screens: lockdown, idle reset, USB-scanner wedge, camera scan events, on-screen keypad.
   No framework, no inline script (the CSP forbids it), and no innerHTML: everything that comes from
   a QR code or the server is handled as text, and the only navigation is to this app's own URLs. */
(function () {
  "use strict";
  var body = document.body;
  var data = body.dataset;
  var screen = data.screen || "";

  /* ---- lockdown: no selection, context menu, drag or zoom ------------------------------------ */
  ["contextmenu", "selectstart", "dragstart", "gesturestart", "gesturechange"].forEach(function (name) {
    document.addEventListener(name, function (ev) { ev.preventDefault(); }, { passive: false });
  });
  document.addEventListener("touchmove", function (ev) {
    if (ev.touches && ev.touches.length > 1) ev.preventDefault();
  }, { passive: false });
  document.addEventListener("wheel", function (ev) { if (ev.ctrlKey) ev.preventDefault(); }, { passive: false });

  /* ---- idle: back to the home screen, leaving nothing of the last citizen ---------------------- */
  var idleMs = parseInt(data.idleMs, 10) || 45000;
  var idleTimer = null, refreshTimer = null;
  function goHome() { window.location.replace(data.resetUrl || "/reset"); }
  function touch() {
    if (idleTimer) clearTimeout(idleTimer);
    if (refreshTimer) clearTimeout(refreshTimer);
    if (data.refreshMs) {
      // Home/closed screen left alone: ask the server again so opening hours take effect unattended
      // (never while someone is tapping).
      refreshTimer = setTimeout(function () { window.location.replace(window.location.pathname); },
                                parseInt(data.refreshMs, 10));
    }
    if (data.idle === "off") return;
    idleTimer = setTimeout(goHome, idleMs);
  }
  ["pointerdown", "keydown", "touchstart"].forEach(function (name) {
    document.addEventListener(name, touch, { capture: true, passive: true });
  });
  touch();
  window.addEventListener("pageshow", function (ev) {
    // A page restored from the back/forward cache may hold an earlier citizen's dossier.
    if (ev.persisted && screen !== "home") goHome();
  });

  /* ---- one way to look a dossier up: POST /lookup, whatever the source ------------------------ */
  var busy = false;
  function lookup(fields) {
    if (busy) return;
    busy = true;
    var form = document.createElement("form");
    form.method = "post";
    form.action = data.lookupUrl || "/lookup";
    form.hidden = true;
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = String(fields[name] == null ? "" : fields[name]);
      form.appendChild(input);
    });
    body.appendChild(form);
    form.submit();
  }
  window.kioskLookup = lookup;
  // A form sent once is not sent again by a second tap while the next screen loads (the server also
  // merges repeats by the page's request key: one tap, one slip).
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (ev.defaultPrevented) return;
    if (form.dataset.sent) { ev.preventDefault(); return; }
    form.dataset.sent = "1";
  });

  /* ---- keypad: on-screen keys (and a person typing on a real keyboard) ------------------------
     Digits mode (the commune's agency prefix is known): only digits, shown grouped as on the receipt
     ("251125-0001"). "Mã có chữ" switches to the full keypad and keeps what was typed. */
  var keypadForm = document.getElementById("keypad-form");
  var activeField = keypadForm ? keypadForm.querySelector(".field.active input") : null;
  function digitsMode() { return !!keypadForm && keypadForm.dataset.mode === "digits"; }
  function grouped(v) {
    var d = v.replace(/\D/g, "").slice(0, 10);
    return d.length > 6 ? d.slice(0, 6) + "-" + d.slice(6) : d;
  }
  function selectField(label) {
    if (!keypadForm) return;
    keypadForm.querySelectorAll(".field").forEach(function (f) { f.classList.toggle("active", f === label); });
    activeField = label.querySelector("input");
  }
  function press(key) {
    if (!activeField) return;
    var v = activeField.value;
    var digits = digitsMode() && activeField.name === "code";
    if (key === "back") v = v.slice(0, -1);
    else if (key === "clear") v = "";
    else if (digits && /^[0-9]$/.test(key)) v = v + key;
    else if (!digits && /^[0-9A-Za-z.\-]$/.test(key)) v = v + key.toUpperCase();
    if (digits) v = grouped(v);
    var max = parseInt(activeField.getAttribute("maxlength"), 10) || 64;
    activeField.value = v.slice(0, max);
  }
  function fullMode() {
    var code = keypadForm.querySelector('input[name="code"]');
    var prefix = keypadForm.dataset.prefix || "";
    if (digitsMode() && prefix && code.value) code.value = prefix + "-" + code.value;
    keypadForm.dataset.mode = "full";
    keypadForm.classList.remove("mode-digits");
    keypadForm.classList.add("mode-full");
    keypadForm.querySelector('input[name="mode"]').value = "full";
    code.setAttribute("maxlength", "64");
    var hint = document.getElementById("full-hint");
    if (hint) hint.hidden = false;
    selectField(code.closest(".field"));
  }
  if (keypadForm) {
    keypadForm.querySelectorAll(".field").forEach(function (label) {
      label.addEventListener("click", function () { selectField(label); });
    });
    keypadForm.querySelectorAll(".key[data-key]").forEach(function (btn) {
      btn.addEventListener("click", function () { press(btn.dataset.key); });
    });
    var toFull = document.getElementById("mode-full");
    if (toFull) toFull.addEventListener("click", fullMode);
    keypadForm.addEventListener("submit", function (ev) {
      var code = keypadForm.querySelector('input[name="code"]');
      if (code && !code.value.trim()) { ev.preventDefault(); selectField(code.closest(".field")); }
    });
  }

  /* ---- USB barcode scanner (keyboard wedge) ----------------------------------------------------
     A scanner types a whole payload in a burst (a few ms per key) and ends with Enter; a person is
     far slower. Keys go to the keypad's field as typed; when Enter ends a burst whose typical (median)
     gap is scanner-fast, the field gets its old value back and the burst is looked up instead.
     The median tolerates the odd late key on a busy machine. */
  var SCAN_MEDIAN_MS = 40, BREAK_MS = 400, MIN_SCAN = 4, MAX_SCAN = 600;
  // lastKey starts (and restarts after Enter) at -Infinity, not 0: performance.now() counts from the
  // page's load, so a scan begun within BREAK_MS of it was taken for the rest of an earlier burst, and
  // the field's value from before the scan was never kept to give back.
  var burst = [], gaps = [], lastKey = -Infinity, before = null, overflow = false;
  function median(xs) {
    if (!xs.length) return Infinity;
    var s = xs.slice().sort(function (a, b) { return a - b; });
    return s[Math.floor(s.length / 2)];
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) {
      if (["+", "-", "=", "0"].indexOf(ev.key) >= 0) ev.preventDefault(); // no zoom
      return;
    }
    var now = performance.now();
    if (now - lastKey > BREAK_MS) {
      burst = []; gaps = []; overflow = false;
      before = activeField ? activeField.value : null;
    } else if (burst.length) {
      gaps.push(now - lastKey);
    }
    lastKey = now;
    if (ev.key === "Enter") {
      ev.preventDefault();
      var isScan = (burst.length >= MIN_SCAN || overflow) && median(gaps) <= SCAN_MEDIAN_MS;
      var payload = overflow ? new Array(MAX_SCAN + 2).join("x") : burst.join("");
      burst = []; gaps = []; overflow = false; lastKey = -Infinity;
      if (isScan) {
        if (activeField && before !== null) activeField.value = before;
        scanned({ payload: payload, source: "wedge" }, "");
      } else if (keypadForm) {
        keypadForm.requestSubmit();
      }
      return;
    }
    if (ev.key === "Backspace") { ev.preventDefault(); press("back"); return; }
    if (ev.key.length !== 1) return;
    ev.preventDefault();
    if (burst.length >= MAX_SCAN) overflow = true; else burst.push(ev.key);
    press(ev.key);
  }, true);

  /* ---- a scan while the citizen is typing --------------------------------------------------------
     A code or phone number half typed is never thrown away by a scan: the kiosk asks first. */
  var ask = document.getElementById("scan-ask"), pending = null;
  function typing() {
    return Array.prototype.some.call(document.querySelectorAll("main input:not([type=hidden])"),
                                     function (el) { return el.value.trim() !== ""; });
  }
  function scanned(fields, shown) {
    if (!ask || !typing()) { lookup(fields); return; }
    pending = fields;
    document.getElementById("scan-ask-code").textContent = shown;
    ask.hidden = false;
  }
  if (ask) {
    document.getElementById("scan-open").addEventListener("click", function () {
      ask.hidden = true;
      if (pending) lookup(pending);
    });
    document.getElementById("scan-keep").addEventListener("click", function () { ask.hidden = true; pending = null; });
  }

  /* ---- camera scanner: same-origin server-sent events ------------------------------------------ */
  var events = null;
  function showHint(name) {
    // Only a hint the screen has a line for (scan.html, one per kiosk.scanner.pipeline.Hint); else the default.
    var lines = Array.prototype.slice.call(document.querySelectorAll("[data-hint]"));
    var known = lines.some(function (el) { return el.dataset.hint === name; });
    lines.forEach(function (el) { el.hidden = el.dataset.hint !== (known ? name : ""); });
  }
  function showCamera(state) {
    var viewer = document.getElementById("viewer"), down = document.getElementById("camera-unavailable");
    if (!viewer || !down) return;
    viewer.hidden = state === "unavailable";
    down.hidden = state !== "unavailable";
    if (state === "starting") showHint("starting");
    else if (state === "ok") showHint("");
  }
  function parse(ev) {
    try { var d = JSON.parse(ev.data); return d && typeof d === "object" ? d : null; } catch (e) { return null; }
  }
  if (window.EventSource && data.eventsUrl) {
    events = new EventSource(data.eventsUrl);
    events.addEventListener("scan", function (ev) {
      var d = parse(ev);
      if (!d || typeof d.code !== "string" || !d.code) return;
      if (d.code === data.code) return; // the receipt of the dossier already on screen
      var shown = d.code.slice(0, 64);
      if (typeof d.payload === "string" && d.payload) {
        // the receipt carries more than the code (procedure, appointment date): the server re-reads it whole
        scanned({ payload: d.payload.slice(0, MAX_SCAN + 1), source: "camera" }, shown);
        return;
      }
      scanned({ code: d.code.slice(0, MAX_SCAN + 1), secret: typeof d.secret === "string" ? d.secret.slice(0, 64) : "",
                source: "camera" }, shown);
    });
    events.addEventListener("hint", function (ev) {
      var d = parse(ev);
      if (d) showHint(typeof d.hint === "string" ? d.hint : "");
    });
    events.addEventListener("camera", function (ev) {
      var d = parse(ev);
      body.dataset.stream = "live"; // the scanner's current state arrives first on every new stream
      if (d && typeof d.state === "string") showCamera(d.state);
    });
    window.addEventListener("pagehide", function () { events.close(); });
  }
  var preview = document.getElementById("preview");
  if (preview) preview.addEventListener("error", function () { showCamera("unavailable"); });
})();
