// Hall display: polls the queue state, redraws the columns, and for every new call shows a banner,
// plays the chime and the spoken Vietnamese announcement (WAV made by espeak-ng on the server).
(function () {
  "use strict";
  var root = document.getElementById("display");
  if (!root) { return; }
  var stateUrl = root.dataset.stateUrl;
  var chimeUrl = root.dataset.chimeUrl;
  var pollMs = parseInt(root.dataset.pollMs, 10) || 1500;
  var lastId = parseInt(root.dataset.lastId, 10) || 0;
  var pending = [];
  var playing = false;
  var soundButton = document.getElementById("sound-button");
  var banner = document.getElementById("banner");

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function play(src) {
    return new Promise(function (resolve, reject) {
      var audio = new Audio(src);
      audio.onended = function () { resolve(); };
      audio.onerror = function () { resolve(); }; // a missing announcement must not stop the queue
      var p = audio.play();
      if (p && p.catch) { p.catch(reject); }
    });
  }

  function renderColumns(state) {
    state.columns.forEach(function (col) {
      var el = root.querySelector('.column[data-service="' + col.code + '"]');
      if (!el) { return; }
      var list = el.querySelector(".calls");
      while (list.firstChild) { list.removeChild(list.firstChild); }
      col.calls.forEach(function (call, i) {
        var li = document.createElement("li");
        li.className = "call" + (i === 0 ? " call-latest" : "");
        var label = document.createElement("span");
        label.className = "call-label";
        label.textContent = call.label;
        var counter = document.createElement("span");
        counter.className = "call-counter";
        counter.textContent = call.counter;
        li.appendChild(label);
        if (call.priority) {  // the elderly, disabled, pregnant: the hall sees why this number went first
          var tag = document.createElement("span");
          tag.className = "call-priority";
          tag.textContent = root.dataset.priorityText || "";
          li.appendChild(tag);
        }
        li.appendChild(counter);
        list.appendChild(li);
      });
      el.querySelector(".waiting-count").textContent = String(col.waiting);
    });
  }

  function showBanner(call) {
    document.getElementById("banner-label").textContent = call.label;
    document.getElementById("banner-counter").textContent = call.counter;
    banner.hidden = false;
    var col = root.querySelector('.column[data-service="' + call.service_code + '"] .call-latest');
    if (col) { col.classList.add("flash"); }
  }

  async function announce() {
    if (playing) { return; }
    playing = true;
    while (pending.length) {
      var call = pending.shift();
      showBanner(call);
      root.dataset.announced = (root.dataset.announced ? root.dataset.announced + "," : "") + call.id;
      if (chimeUrl) {
        try {
          await play(chimeUrl);
          if (call.audio) { await play(call.audio); }
          root.dataset.audio = "played";
        } catch (e) {
          // Autoplay blocked (the browser wants a tap first): show the call, offer a button.
          root.dataset.audio = "blocked";
          soundButton.hidden = false;
          await sleep(3000);
        }
      } else {
        await sleep(3000);
      }
      await sleep(800);
    }
    banner.hidden = true;
    playing = false;
  }

  async function poll() {
    try {
      var url = new URL(stateUrl, window.location.href);
      url.searchParams.set("after", String(lastId));
      var resp = await fetch(url.toString(), { cache: "no-store" });
      if (resp.ok) {
        var state = await resp.json();
        renderColumns(state);
        state.announce.forEach(function (a) { pending.push(a); });
        lastId = state.last_id;
        root.dataset.lastId = String(lastId);
        root.classList.remove("offline");
        announce();
      } else {
        root.classList.add("offline");
      }
    } catch (e) {
      root.classList.add("offline");
    }
    setTimeout(poll, pollMs);
  }

  // The hall's clock is the site's ([site] timezone), whatever time zone the display's browser is in.
  var clockFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: root.dataset.timezone || undefined, hour: "2-digit", minute: "2-digit", hour12: false,
    day: "2-digit", month: "2-digit", year: "numeric" });
  function tick() {
    var parts = {};
    clockFormat.formatToParts(new Date()).forEach(function (p) { parts[p.type] = p.value; });
    document.getElementById("clock").textContent = parts.hour + ":" + parts.minute +
      "  " + parts.day + "/" + parts.month + "/" + parts.year;
  }

  soundButton.addEventListener("click", function () {
    soundButton.hidden = true;
    if (chimeUrl) { play(chimeUrl).catch(function () { soundButton.hidden = false; }); }
  });

  tick();
  setInterval(tick, 10000);
  root.dataset.ready = "1";
  setTimeout(poll, 200);
})();
