// Gatehouse pages: forms posted to the JSON API with the CSRF token, live updates by
// server-sent events, the alarm button, the blacklist alert sound and keyboard shortcuts.
// Plain ES2017, no dependencies, no build step.
(function () {
  "use strict";
  var lang = document.documentElement.lang === "en" ? "en" : "zh-CN";
  var zh = lang !== "en";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }
  function api(method, url, body) {
    var headers = { "Accept-Language": lang, "X-CSRF-Token": csrf() };
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
      return { ok: false, status: 0, data: { message: zh ? "无法连接中心服务器，请使用岗亭本地页面" : "Cannot reach the central server; use the booth's local page" } };
    });
  }
  function flash(text) {
    var f = document.getElementById("flash");
    if (f) f.textContent = text;
  }
  // ---- forms with data-api: JSON body from the fields, errors shown at the fields ----
  function formBody(form, submitter) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "submit" || el.disabled) return;
      var v = el.value;
      if (el.dataset.type === "number") { if (v === "") return; v = Number(v); }
      body[el.name] = v;
    });
    if (submitter && submitter.name) body[submitter.name] = submitter.value;
    if ("lane_choice" in body) {
      var parts = String(body.lane_choice).split("/");
      body.gate_id = parts[0] ? Number(parts[0]) : undefined;
      body.lane = parts.slice(1).join("/");
      delete body.lane_choice;
    }
    if ("province" in body) {
      // A plate typed beside the province picker, any way (ａｍ１２０５, am·1205, 浙a 12-05):
      // full width to half width, separators dropped, upper case; the picked province goes in
      // front unless the text already starts with a province (the picker's options) or 使.
      // The server applies the same rule (domain::plate::with_province).
      var typed = String(body.plate || "")
        .replace(/[\uFF01-\uFF5E]/g, function (c) { return String.fromCharCode(c.charCodeAt(0) - 0xFEE0); })
        .replace(/[\s\u00B7\u30FB\uFF65\u2022\u2027\u22C5\u2010-\u2015\u2212\u3002\u200B\uFEFF._-]/g, "")
        .toUpperCase();
      var picker = form.elements.province;
      var provinces = picker && picker.options ? Array.prototype.map.call(picker.options, function (o) { return o.value; }).filter(Boolean) : [];
      var first = typed.charAt(0);
      if (typed && body.province && provinces.indexOf(first) < 0 && first !== "使") typed = body.province + typed;
      body.plate = typed;
    }
    return body;
  }
  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach(function (e) { e.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (e) { e.removeAttribute("aria-invalid"); });
  }
  // Shows an API answer at its form: the message in the form's status line, each field error
  // at its field (the first bad field focused). `okText` is said on success when the API says
  // nothing, unless the form names its own (`data-done`). The administration pages use it too.
  function showResult(form, res, okText) {
    var status = form.querySelector(".form-status");
    clearErrors(form);
    var msg = res.data && res.data.message ? res.data.message : (res.ok ? (okText || (zh ? "已完成" : "Done")) : (zh ? "操作失败" : "Failed"));
    if (!res.ok && res.data && res.data.fields) {
      var first = null;
      res.data.fields.forEach(function (f) {
        var slot = form.querySelector('[data-error-for="' + f.field + '"]');
        if (slot) slot.textContent = f.message;
        var input = form.querySelector('[name="' + f.field + '"]');
        if (input) { input.setAttribute("aria-invalid", "true"); if (!first) first = input; }
      });
      if (first) first.focus();
      msg = msg + "：" + res.data.fields.map(function (f) { return f.message; }).join("；");
    }
    if (res.ok && form.dataset.done) msg = form.dataset.done;
    if (status) { status.textContent = msg; status.className = "form-status " + (res.ok ? "ok" : "bad"); }
    else if (!res.ok) flash(msg);
  }
  window.Gatehouse = { clearErrors: clearErrors, showResult: showResult };
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.id === "login-form") { ev.preventDefault(); return login(form); }
    if (form.id === "lookup-form") { ev.preventDefault(); return lookup(form); }
    if (!form.dataset.api) return;
    ev.preventDefault();
    var body = formBody(form, ev.submitter);
    form.setAttribute("aria-busy", "true");
    api("POST", form.dataset.api, body).then(function (res) {
      form.removeAttribute("aria-busy");
      showResult(form, res);
      if (res.ok && form.dataset.reload !== undefined) location.reload();
      if (res.ok && form.dataset.reloadAfter) setTimeout(function () { location.reload(); }, Number(form.dataset.reloadAfter));
      if (res.ok && form.classList.contains("command")) { form.reset(); laneFormReset(form); }
      if (res.ok && form.classList.contains("correct")) {
        // The live update may already have replaced this form: fold the current one.
        var current = document.querySelector('form.correct[data-api="' + form.dataset.api + '"]');
        var details = current && current.closest("details");
        if (details) details.open = false;
        flash(form.dataset.done);
      }
    });
  });
  // ---- sign in / out ----
  function login(form) {
    var err = document.getElementById("login-error");
    api("POST", "/api/v1/auth/login", { username: form.username.value, password: form.password.value }).then(function (res) {
      if (res.ok) { location.href = form.dataset.next || "/"; return; }
      var msg = res.data && res.data.message ? res.data.message : "?";
      if (res.data && res.data.fields) msg = res.data.fields.map(function (f) { return f.message; }).join("；");
      err.textContent = msg;
      form.password.focus();
    });
  }
  var logout = document.getElementById("logout");
  if (logout) logout.addEventListener("click", function () {
    api("POST", "/api/v1/auth/logout").then(function () { location.href = "/login"; });
  });
  // ---- booking look-up (suggestions only) ----
  function lookup(form) {
    var out = document.getElementById("lookup-result");
    var q = form.q.value;
    api("GET", "/api/v1/console/plates?q=" + encodeURIComponent(q)).then(function (res) {
      out.textContent = "";
      if (!res.ok) { out.textContent = res.data && res.data.message || "?"; return; }
      var d = res.data;
      if (!d.bookings.length) { var p = document.createElement("p"); p.textContent = out.dataset.none; out.appendChild(p); }
      d.bookings.forEach(function (b) {
        var div = document.createElement("div");
        div.className = "booking";
        var statuses = {};
        try { statuses = JSON.parse(out.dataset.statuses || "{}"); } catch (e) { statuses = {}; }
        div.textContent = b.plate + " · " + b.driver_name + " · " + b.host_name + " / " + b.department + " · " + b.purpose + (zh ? "（" : " (") + (statuses[b.status] || b.status) + (zh ? "） " : ") ");
        var btn = document.createElement("button");
        btn.type = "button"; btn.textContent = out.dataset.use;
        btn.addEventListener("click", function () { useBooking(b); });
        div.appendChild(btn);
        out.appendChild(div);
      });
      if (d.suggestions.length) {
        var p2 = document.createElement("p"); p2.textContent = out.dataset.near; out.appendChild(p2);
        var ul = document.createElement("ul");
        d.suggestions.forEach(function (s) {
          var li = document.createElement("li");
          var b = document.createElement("button"); b.type = "button"; b.className = "link"; b.textContent = s;
          b.addEventListener("click", function () { form.q.value = s; lookup(form); });
          li.appendChild(b); ul.appendChild(li);
        });
        out.appendChild(ul);
      }
    });
  }
  function useBooking(b) {
    var f = document.getElementById("visit-form");
    // The booking's plate is whole: its province goes to the picker, the rest to the box.
    var first = b.plate.charAt(0);
    var known = Array.prototype.some.call(f.province.options, function (o) { return o.value && o.value === first; });
    f.province.value = known ? first : "";
    f.plate.value = known ? b.plate.slice(1) : b.plate;
    f.driver_name.value = b.driver_name;
    if (b.driver_phone.indexOf("*") < 0) f.driver_phone.value = b.driver_phone;
    f.host_name.value = b.host_name;
    f.department.value = b.department;
    f.purpose.value = b.purpose;
    f.booking_id.value = b.id;
    f.driver_phone.focus();
  }
  // ---- live updates ----
  var audio = null;
  function beep() {
    document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.35, 0.7].forEach(function (t) {
        var o = audio.createOscillator(), g = audio.createGain();
        o.type = "square"; o.frequency.value = 880; g.gain.value = 0.2;
        o.connect(g); g.connect(audio.destination);
        o.start(audio.currentTime + t); o.stop(audio.currentTime + t + 0.25);
      });
    } catch (e) { /* no sound device */ }
  }
  function alertBanner(text) {
    var a = document.getElementById("alert");
    if (!a || !text) return;
    a.textContent = text;
    a.hidden = false;
    document.body.dataset.alert = "1";
    beep();
  }
  var main = document.querySelector("main[data-live-url]");
  if (main && window.EventSource) {
    var es = new EventSource(main.dataset.liveUrl);
    es.addEventListener("gate", function (ev) {
      var u = JSON.parse(ev.data);
      u.parts.forEach(function (p) {
        var el = document.getElementById(p.id);
        if (!el) return;
        var kept = keptCorrections(el);
        el.innerHTML = p.html;
        restoreCorrections(el, kept);
      });
      u.parts.forEach(function (p) {
        var el = document.getElementById(p.id);
        if (el && el.classList.contains("status")) prefillPlate(el);
      });
      ageTick();
      if (u.alert) alertBanner(u.alert);
      document.body.dataset.live = "connected";
      document.body.dataset.updated = String(Date.now());
    });
    es.onerror = function () { document.body.dataset.live = "reconnecting"; };
    // Closed on leaving the page: an open stream holds one of the browser's six connections
    // to the server (see alarms.js).
    window.addEventListener("pagehide", function () { es.close(); });
  }
  // ---- the lanes' verdicts over time: their age, and faded once older than verdict_fade_s ----
  var lanesMain = document.querySelector("main.console[data-fade-s]");
  function ageText(s) {
    if (s < 60) return zh ? s + " 秒前" : s + " s ago";
    if (s < 3600) return zh ? Math.floor(s / 60) + " 分钟前" : Math.floor(s / 60) + " min ago";
    return zh ? Math.floor(s / 3600) + " 小时前" : Math.floor(s / 3600) + " h ago";
  }
  function ageTick() {
    if (!lanesMain) return;
    var fade = Number(lanesMain.dataset.fadeS || 30), now = Date.now();
    lanesMain.querySelectorAll(".current[data-at]").forEach(function (box) {
      var s = Math.max(0, Math.floor((now - Number(box.dataset.at)) / 1000));
      var age = box.querySelector(".age");
      if (age) age.textContent = ageText(s);
      box.classList.toggle("stale", s >= fade);
    });
  }
  if (lanesMain) { ageTick(); setInterval(ageTick, 1000); }
  // ---- the command form's plate: the lane's last read, unless the guard is editing it ----
  function prefillPlate(status) {
    var mark = status.querySelector("[data-last-plate]");
    var lane = status.closest("article.lane");
    var input = lane && lane.querySelector("form.command [data-lane-plate]");
    if (!mark || !input || input.dataset.edited || input === document.activeElement) return;
    input.defaultValue = mark.dataset.lastPlate;
    input.value = mark.dataset.lastPlate;
  }
  document.addEventListener("input", function (ev) {
    if (ev.target.matches && ev.target.matches("[data-lane-plate]")) ev.target.dataset.edited = "1";
  });
  function laneFormReset(form) {
    var input = form.querySelector("[data-lane-plate]");
    if (input) delete input.dataset.edited;
  }
  // A correction the guard is typing survives a live update of its lane (same event only).
  function keptCorrections(el) {
    var kept = [];
    el.querySelectorAll("details.correct[open] form.correct").forEach(function (f) {
      var values = {};
      ["plate", "colour", "note"].forEach(function (n) { if (f.elements[n]) values[n] = f.elements[n].value; });
      var focused = f.contains(document.activeElement) ? document.activeElement.name : null;
      kept.push({ api: f.dataset.api, values: values, focused: focused });
    });
    return kept;
  }
  function restoreCorrections(el, kept) {
    kept.forEach(function (k) {
      var f = el.querySelector('form.correct[data-api="' + k.api + '"]');
      if (!f) return;
      f.closest("details").open = true;
      Object.keys(k.values).forEach(function (n) { if (f.elements[n]) f.elements[n].value = k.values[n]; });
      if (k.focused && f.elements[k.focused]) f.elements[k.focused].focus();
    });
  }
  // ---- photos: one not at the centre yet (404) shows "uploading" and is asked for again ----
  var PHOTO_RETRY_MS = 4000, PHOTO_TRIES = 15;
  function isPhoto(t) { return t && t.tagName === "IMG" && t.hasAttribute("data-photo"); }
  function photoFailed(img) {
    var fig = img.closest("figure.photo");
    if (fig) fig.classList.add("missing");
    var tries = Number(img.dataset.tries || 0) + 1;
    img.dataset.tries = String(tries);
    if (tries > PHOTO_TRIES) return;
    // Setting src, even to the same URL, loads it again (a failed image is never cached).
    setTimeout(function () { if (img.isConnected) img.setAttribute("src", img.getAttribute("src")); },
      Math.min(PHOTO_RETRY_MS * tries, 30000));
  }
  document.addEventListener("error", function (ev) { if (isPhoto(ev.target)) photoFailed(ev.target); }, true);
  document.addEventListener("load", function (ev) {
    if (!isPhoto(ev.target)) return;
    var fig = ev.target.closest("figure.photo");
    if (fig) fig.classList.remove("missing");
  }, true);
  document.querySelectorAll("img[data-photo]").forEach(function (img) {
    if (img.complete && img.naturalWidth === 0) photoFailed(img);
  });
  // ---- near-match suggestions fill the correction form (nothing opens on them) ----
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("button[data-suggest]");
    if (!b) return;
    var scope = b.closest("article.lane") || b.closest("tr") || document;
    var details = scope.querySelector("details.correct");
    if (details) details.open = true;
    var input = scope.querySelector('form.correct [name="plate"]');
    if (input) { input.value = b.dataset.suggest; input.focus(); }
  });
  // ---- DOM helpers for tables drawn from API data (text only: never HTML from data) ----
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  // An instant as the booth reads it, in the site's zone (the page's offset): MM-DD HH:MM:SS.
  function localTime(iso) {
    var ms = Date.parse(iso);
    if (isNaN(ms)) return iso || "";
    var m = /^([+-])(\d\d):(\d\d)$/.exec(document.body.dataset.utcOffset || "+08:00");
    var off = m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 480;
    var d = new Date(ms + off * 60000);
    function p(n) { return (n < 10 ? "0" : "") + n; }
    return d.getUTCFullYear() + "-" + p(d.getUTCMonth() + 1) + "-" + p(d.getUTCDate()) + " " +
      p(d.getUTCHours()) + ":" + p(d.getUTCMinutes()) + ":" + p(d.getUTCSeconds());
  }
  var SHA = /^[0-9a-f]{64}$/;
  // Thumbnails of a row's photos (plate close-up first), each a link to the full size.
  function thumbs(photos, L) {
    var box = el("div", "photos");
    ["plate", "scene"].forEach(function (kind) {
      (photos || []).filter(function (p) { return p.kind === kind && SHA.test(p.sha256); }).slice(0, 1).forEach(function (p) {
        var url = "/api/v1/photos/" + p.sha256;
        var fig = el("figure", "photo thumb"); fig.dataset.kind = kind;
        var a = el("a"); a.href = url; a.target = "_blank"; a.rel = "noopener";
        var img = el("img"); img.alt = kind === "plate" ? L.plateKind : L.sceneKind; img.setAttribute("data-photo", "");
        img.src = url;
        a.appendChild(img); fig.appendChild(a);
        fig.appendChild(el("span", "photo-wait", L.uploading));
        box.appendChild(fig);
      });
    });
    return box;
  }
  // A row's plate correction: the same form the console has, posted by the generic handler.
  function correctionForm(p, L) {
    var key = p.gate_id + "-" + p.journal_no + "-" + p.seq;
    var details = el("details", "correct");
    details.appendChild(el("summary", null, L.correct));
    var form = el("form", "correct");
    form.dataset.api = "/api/v1/events/" + p.gate_id + "/" + p.journal_no + "/" + p.seq + "/plate";
    form.dataset.done = L.corrected;
    form.setAttribute("data-reload", "");
    form.noValidate = true;
    [["plate", L.correctPlate, p.corrected_plate || p.plate || ""], ["note", L.note, ""]].forEach(function (f) {
      var row = el("div", "row");
      var label = el("label", null, f[1]); label.htmlFor = "fix-" + f[0] + "-" + key;
      var input = el("input"); input.id = label.htmlFor; input.name = f[0]; input.value = f[2];
      input.maxLength = f[0] === "plate" ? 12 : 200; input.autocomplete = "off";
      var error = el("span", "error"); error.dataset.errorFor = f[0];
      row.appendChild(label); row.appendChild(input); row.appendChild(error);
      form.appendChild(row);
    });
    var save = el("button", null, L.save); save.type = "submit";
    form.appendChild(save);
    var st = el("p", "form-status"); st.setAttribute("role", "status");
    form.appendChild(st);
    details.appendChild(form);
    return details;
  }
  // ---- the passage search page: the address's filters → GET /api/v1/passages → rows ----
  var passages = document.querySelector("main.passages[data-api]");
  if (passages) (function () {
    var L = JSON.parse(passages.dataset.labels);
    var status = document.getElementById("passage-status");
    var body = document.querySelector("#passage-results tbody");
    var pager = document.getElementById("passage-pages");
    var params = new URLSearchParams(location.search);
    var q = new URLSearchParams();
    ["plate", "from", "to", "gate_id", "outcome", "outside", "page"].forEach(function (k) {
      var v = params.get(k);
      if (v) q.set(k, v);
    });
    q.set("per_page", "50");
    ["csv", "xlsx"].forEach(function (format) {
      var e = new URLSearchParams(q); e.delete("page"); e.delete("per_page"); e.set("format", format);
      document.getElementById("export-" + format).href = "/api/v1/passages/export?" + e.toString();
    });
    status.textContent = L.loading;
    api("GET", passages.dataset.api + "?" + q.toString()).then(function (res) {
      if (!res.ok) {
        var msg = res.data && res.data.message ? res.data.message : String(res.status);
        if (res.data && res.data.fields) msg += "：" + res.data.fields.map(function (f) { return f.message; }).join("；");
        status.textContent = L.failed + msg; status.className = "bad";
        return;
      }
      var d = res.data;
      status.className = "";
      status.textContent = L.total.replace("{n}", d.total);
      if (!d.items.length) {
        var tr0 = el("tr"); var td0 = el("td", null, L.none); td0.colSpan = 7; tr0.appendChild(td0); body.appendChild(tr0);
      }
      d.items.forEach(function (p) {
        var tr = el("tr"); tr.dataset.gate = p.gate_id; tr.dataset.journal = p.journal_no; tr.dataset.seq = p.seq;
        if (p.outside) tr.classList.add("outside");
        tr.appendChild(el("td", null, localTime(p.at)));
        var gateName = (L.gates && L.gates[p.gate_id]) || p.gate_name || p.gate_id;
        var laneName = (L.lanes && L.lanes[p.gate_id + "/" + p.lane]) || p.lane || "";
        tr.appendChild(el("td", null, gateName + " / " + laneName));
        tr.appendChild(el("td", null, L.directions[p.direction] || p.direction || ""));
        var plate = el("td", "plate-cell");
        if (p.corrected_plate && p.corrected_plate !== p.plate) {
          var c = el("span", "plate corrected", p.corrected_plate); c.dataset.corrected = p.corrected_plate;
          plate.appendChild(c); plate.appendChild(document.createTextNode(" "));
          var o = el("span", "original", L.readAs); o.appendChild(el("del", null, p.plate || "—"));
          plate.appendChild(o);
        } else {
          plate.appendChild(el("span", "plate", p.plate || "—"));
        }
        if (p.outside) { plate.appendChild(document.createTextNode(" ")); plate.appendChild(el("span", "tag-outside", L.outside)); }
        plate.appendChild(correctionForm(p, L));
        tr.appendChild(plate);
        var ph = el("td", "photo-cell"); ph.appendChild(thumbs(p.photos, L));
        if (p.confidence !== null && p.confidence !== undefined) ph.appendChild(el("span", "meta", p.confidence + "%"));
        tr.appendChild(ph);
        var held = p.reason === "held_low_confidence";
        var outcome = el("td");
        var word = p.granted ? L.granted : (held ? L.held : L.denied);
        outcome.appendChild(el("span", p.granted ? "ok" : (held ? "warn" : "bad"), word));
        if (p.reason) outcome.appendChild(el("span", "meta", " " + (L.reasons[p.reason] || p.reason)));
        tr.appendChild(outcome);
        var who = [p.holder, L.categories[p.category] || p.category].filter(function (x) { return x; }).join(" · ");
        tr.appendChild(el("td", null, who || "—"));
        body.appendChild(tr);
      });
      var pages = Math.max(1, Math.ceil(d.total / (d.per_page || 50)));
      var page = d.page || 1;
      pager.textContent = "";
      if (pages > 1) {
        function link(to, text) {
          var n = new URLSearchParams(params); n.set("page", String(to));
          var a = el("a", null, text); a.href = "/passages?" + n.toString(); return a;
        }
        if (page > 1) pager.appendChild(link(page - 1, L.prev));
        pager.appendChild(el("span", null, " " + L.page.replace("{p}", page).replace("{n}", pages) + " "));
        if (page < pages) pager.appendChild(link(page + 1, L.next));
      }
      document.body.dataset.passages = "loaded";
    });
  })();
  // ---- the office's outside-vehicle statistics: GET /api/v1/stats/outside-vehicles ----
  var outside = document.querySelector("section[data-outside-api]");
  if (outside) (function () {
    var L = JSON.parse(outside.dataset.labels);
    var form = document.getElementById("outside-range");
    function table(id, head, rows) {
      var t = document.getElementById(id);
      if (!t) return;
      var tb = t.querySelector("tbody"); tb.textContent = "";
      if (!rows.length) { var tr0 = el("tr"); var td0 = el("td", null, L.none); td0.colSpan = head; tr0.appendChild(td0); tb.appendChild(tr0); }
      rows.forEach(function (cells) {
        var tr = el("tr");
        cells.forEach(function (c, i) { tr.appendChild(el("td", i ? "num" : null, c)); });
        tb.appendChild(tr);
      });
    }
    function load() {
      var q = new URLSearchParams();
      if (form.from.value) q.set("from", form.from.value);
      if (form.to.value) q.set("to", form.to.value);
      ["csv", "xlsx"].forEach(function (format) {
        var e = new URLSearchParams(q); e.set("format", format);
        document.getElementById("outside-export-" + format).href = outside.dataset.outsideApi + "/export?" + e.toString();
      });
      var status = document.getElementById("outside-status");
      api("GET", outside.dataset.outsideApi + "?" + q.toString()).then(function (res) {
        if (!res.ok) {
          status.textContent = L.failed + (res.data && res.data.message ? res.data.message : String(res.status));
          status.className = "bad";
          return;
        }
        var d = res.data;
        status.textContent = ""; status.className = "";
        document.getElementById("outside-overstays").textContent = String(d.overstays || 0);
        var days = d.per_day || [];
        document.getElementById("outside-visits").textContent = String(days.reduce(function (s, r) { return s + (r.visits || 0); }, 0));
        table("outside-per-day", 3, days.map(function (r) { return [r.day, r.vehicles, r.visits]; }));
        table("outside-per-province", 2, (d.per_province || []).map(function (r) { return [r.province || L.unknown, r.visits]; }));
        table("outside-per-gate", 2, (d.per_gate || []).map(function (r) { return [r.gate_name || r.gate_id, r.visits]; }));
        table("outside-dwell", 2, (d.dwell || []).map(function (r) { return [L.dwell[r.bucket] || r.bucket, r.visits]; }));
        table("outside-repeat", 2, (d.repeat_visitors || []).map(function (r) { return [r.plate, r.visits]; }));
        outside.dataset.loaded = "1";
      });
    }
    form.addEventListener("submit", function (ev) { ev.preventDefault(); load(); });
    load();
  })();
  // ---- keyboard ----
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "F2") { ev.preventDefault(); location.href = "/console"; }
    else if (ev.key === "F4") { ev.preventDefault(); location.href = "/console/visitors"; }
    else if (ev.altKey && /^[1-9]$/.test(ev.key)) {
      var sel = document.querySelectorAll("[data-lane-reason]")[Number(ev.key) - 1];
      if (sel) { ev.preventDefault(); sel.focus(); }
    } else if (ev.altKey && (ev.key === "l" || ev.key === "L")) {
      var sw = document.getElementById("lang-switch");
      if (sw) { ev.preventDefault(); location.href = sw.href; }
    }
  });
})();
