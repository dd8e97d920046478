// Alarms on every signed-in page (issue 20, item 4). Plain ES2017, no dependencies.
//
// - The booth's one-button alarm (一键报警): the first F9 or click arms it and asks for a
//   confirmation ("再按一次 F9 或回车确认报警"); a second F9, Enter or click within 5 s raises
//   it (POST /api/v1/alarms); Esc or the timeout cancels.
// - The guard's own alarm status (已送达, then who acknowledged it, when and what was done, or
//   its withdrawal) with the withdraw button while the site's window lasts (two clicks).
// - The security officers' banner (open alarms, the newest, a link to /office) with a sound
//   for each new alarm; it clears once every alarm is acknowledged or withdrawn, wherever.
// - On /office, what an officer types into an acknowledgement survives a live update.
//
// Status and banner come from the server, rendered in the viewer's language, by one
// server-sent event stream (GET /alarms/live) opened on the pages of the booth roles (the
// ones whose navigation has the booth's live lanes).
(function () {
  "use strict";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var header = document.querySelector("header.top");
  if (!csrfMeta || !header) return; // sign-in and error pages
  var lang = document.documentElement.lang === "en" ? "en" : "zh-CN";
  var zh = lang !== "en";
  var CONFIRM_MS = 5000;

  function api(method, url, body) {
    var headers = { "Accept-Language": lang, "X-CSRF-Token": csrfMeta.content };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
        return { ok: r.ok, status: r.status, data: data };
      });
    }, function () {
      return { ok: false, status: 0, data: { message: zh ? "无法连接中心服务器，请使用岗亭本地页面或电话报警" : "Cannot reach the central server; use the booth's local page or call" } };
    });
  }
  function message(res) {
    return res.data && res.data.message ? res.data.message : (zh ? "操作失败" : "Failed");
  }
  function flash(text) {
    var f = document.getElementById("flash");
    if (f) f.textContent = text;
  }

  // The styles of what this script adds (no inline styles: the pages' CSP forbids them).
  var css = document.createElement("link");
  css.rel = "stylesheet"; css.href = "/assets/alarms.css";
  document.head.appendChild(css);

  // Bars under the header, in this order: confirmation prompt, officers' banner, own alarm.
  var after = header;
  function bar(id, role) {
    var e = document.createElement("div");
    e.id = id; e.hidden = true;
    if (role) e.setAttribute("role", role);
    after.parentNode.insertBefore(e, after.nextSibling);
    after = e;
    return e;
  }
  var confirmBar = bar("alarm-confirm", "alert");
  var banner = bar("alarm-banner", "alert");
  var mine = bar("my-alarm", "status");

  // ---- sound: three short beeps, counted in body[data-beeps] ----
  var audio = null;
  function beep() {
    document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.35, 0.7].forEach(function (t) {
        var o = audio.createOscillator(), g = audio.createGain();
        o.type = "square"; o.frequency.value = 988; g.gain.value = 0.2;
        o.connect(g); g.connect(audio.destination);
        o.start(audio.currentTime + t); o.stop(audio.currentTime + t + 0.25);
      });
    } catch (e) { /* no sound device */ }
  }

  // ---- the one-button alarm, confirmed by a second F9 / Enter ----
  var button = document.getElementById("alarm-button");
  var armed = null;
  var cancelShown = null;
  function disarm(cancelled) {
    if (armed) clearTimeout(armed);
    if (cancelShown) clearTimeout(cancelShown);
    armed = null; cancelShown = null;
    if (button) button.classList.remove("armed");
    delete document.body.dataset.alarmArmed;
    confirmBar.classList.remove("cancelled");
    if (!cancelled) { confirmBar.hidden = true; confirmBar.textContent = ""; return; }
    // Said for two seconds where the question was, then gone.
    confirmBar.textContent = button.dataset.cancelled;
    confirmBar.classList.add("cancelled");
    cancelShown = setTimeout(function () {
      cancelShown = null;
      confirmBar.hidden = true; confirmBar.textContent = ""; confirmBar.classList.remove("cancelled");
    }, 2000);
  }
  function arm() {
    if (cancelShown) { clearTimeout(cancelShown); cancelShown = null; }
    armed = setTimeout(function () { disarm(true); }, CONFIRM_MS);
    button.classList.add("armed");
    confirmBar.classList.remove("cancelled");
    confirmBar.textContent = button.dataset.confirm;
    confirmBar.hidden = false;
    document.body.dataset.alarmArmed = "1";
  }
  function raise() {
    disarm(false);
    api("POST", "/api/v1/alarms", { gate_id: Number(button.dataset.gate) }).then(function (res) {
      if (!res.ok) { flash(message(res)); return; }
      button.classList.add("sent");
      // Stored: say so at once; the live status replaces it with the full one.
      if (!mine.dataset.alarm || Number(mine.dataset.alarm) < res.data.id) {
        mine.dataset.alarm = String(res.data.id);
        mine.dataset.state = "stored";
        mine.textContent = button.dataset.stored;
        mine.hidden = false;
      }
    });
  }
  function press() {
    if (armed) raise(); else arm();
  }
  if (button) {
    button.addEventListener("click", press);
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "F9") { ev.preventDefault(); press(); }
      else if (armed && ev.key === "Enter") { ev.preventDefault(); ev.stopPropagation(); raise(); }
      else if (armed && (ev.key === "Escape" || ev.key === "Esc")) { ev.preventDefault(); ev.stopPropagation(); disarm(true); }
    }, true);
  }

  // ---- withdrawing one's own false alarm: two clicks ----
  var withdrawTimer = null;
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("button[data-withdraw]");
    if (!b || b.disabled) return;
    if (!b.classList.contains("armed")) {
      b.classList.add("armed");
      b.dataset.label = b.textContent;
      b.textContent = b.dataset.confirm;
      setTimeout(function () {
        if (b.isConnected && b.classList.contains("armed") && !b.disabled) {
          b.classList.remove("armed"); b.textContent = b.dataset.label;
        }
      }, CONFIRM_MS);
      return;
    }
    b.disabled = true;
    api("POST", b.dataset.withdraw).then(function (res) {
      if (res.ok) { b.textContent = b.dataset.done; return; } // the live status follows
      b.disabled = false; b.classList.remove("armed"); b.textContent = b.dataset.label;
      flash(message(res));
    });
  });

  // ---- pushed state: the officers' banner and one's own alarm ----
  var HEARD = "gatehouse.alarm.heard";
  function heard() {
    try { return Number(sessionStorage.getItem(HEARD) || 0); } catch (e) { return 0; }
  }
  function hear(id) {
    try { sessionStorage.setItem(HEARD, String(id)); } catch (e) { /* private mode */ }
  }
  function showBanner(b) {
    if (!b) {
      banner.hidden = true; banner.textContent = "";
      banner.dataset.open = "0";
      return;
    }
    banner.innerHTML = b.html; // rendered and escaped by the server
    banner.dataset.open = String(b.open);
    banner.hidden = false;
    if (b.newest > heard()) { hear(b.newest); beep(); }
  }
  function showMine(m) {
    if (withdrawTimer) { clearTimeout(withdrawTimer); withdrawTimer = null; }
    if (!m) {
      // A just-raised alarm's "stored" line stays until the stream names it.
      if (mine.dataset.state !== "stored") {
        mine.hidden = true; mine.textContent = ""; delete mine.dataset.alarm;
        if (button) button.classList.remove("sent");
      }
      return;
    }
    if (button) button.classList.toggle("sent", m.state === "stored");
    mine.innerHTML = m.html; // rendered and escaped by the server
    mine.dataset.alarm = String(m.id);
    mine.dataset.state = m.state;
    mine.hidden = false;
    if (m.withdraw_left_ms > 0) {
      withdrawTimer = setTimeout(function () {
        var b = mine.querySelector("button[data-withdraw]");
        if (b) b.remove();
      }, m.withdraw_left_ms);
    }
  }
  var booth = header.querySelector('nav a[href="/console"]');
  if (booth && window.EventSource) {
    var es = new EventSource("/alarms/live");
    es.addEventListener("alarms", function (ev) {
      var s = {};
      try { s = JSON.parse(ev.data || "{}"); } catch (e) { s = {}; }
      showBanner(s.banner || null);
      showMine(s.mine || null);
      document.body.dataset.alarmsLive = "connected";
    });
    es.onerror = function () { document.body.dataset.alarmsLive = "reconnecting"; };
    // A stream left open while the browser moves to the next page keeps one of the six
    // connections a browser allows a server: close it on leaving (a page restored from the
    // back/forward cache reloads to get a fresh stream).
    window.addEventListener("pagehide", function () { es.close(); });
    window.addEventListener("pageshow", function (ev) { if (ev.persisted) location.reload(); });
  }

  // ---- /office: what an officer types into an acknowledgement survives a live update ----
  var list = document.getElementById("alarms");
  if (list && window.MutationObserver) {
    var typed = {};
    var remember = function (ev) {
      var f = ev.target.form;
      if (!f || !f.classList.contains("ack")) return;
      typed[f.dataset.api] = { action: f.elements.action.value, note: f.elements.note.value, focused: ev.target.name };
    };
    list.addEventListener("input", remember);
    list.addEventListener("change", remember);
    new MutationObserver(function () {
      Object.keys(typed).forEach(function (url) {
        var f = list.querySelector('form.ack[data-api="' + url + '"]');
        if (!f) { delete typed[url]; return; }
        if (f.dataset.restored === "1") return;
        f.dataset.restored = "1";
        f.elements.action.value = typed[url].action;
        f.elements.note.value = typed[url].note;
        if (document.activeElement === document.body && f.elements[typed[url].focused]) f.elements[typed[url].focused].focus();
      });
    }).observe(list, { childList: true });
  }
})();
