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
      var p = String(body.plate || "").trim();
      if (p && p.charCodeAt(0) < 0x2e80) p = body.province + p;
      body.plate = p;
      delete body.province;
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
      if (res.ok && form.classList.contains("command")) form.reset();
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
        div.textContent = b.plate + " · " + b.driver_name + " · " + b.host_name + " / " + b.department + " · " + b.purpose + " (" + b.status + ") ";
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
    f.province.value = "";
    f.plate.value = b.plate;
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
      u.parts.forEach(function (p) { var el = document.getElementById(p.id); if (el) el.innerHTML = p.html; });
      if (u.alert) alertBanner(u.alert);
      document.body.dataset.live = "connected";
      document.body.dataset.updated = String(Date.now());
    });
    es.onerror = function () { document.body.dataset.live = "reconnecting"; };
  }
  // ---- alarm button ----
  var alarm = document.getElementById("alarm-button");
  function raiseAlarm() {
    if (!alarm) return;
    api("POST", "/api/v1/alarms", { gate_id: Number(alarm.dataset.gate) }).then(function (res) {
      if (res.ok) { alarm.classList.add("sent"); flash(alarm.dataset.sent); }
      else flash(res.data && res.data.message || "?");
    });
  }
  if (alarm) alarm.addEventListener("click", raiseAlarm);
  // ---- keyboard ----
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "F2") { ev.preventDefault(); location.href = "/console"; }
    else if (ev.key === "F4") { ev.preventDefault(); location.href = "/console/visitors"; }
    else if (ev.key === "F9" && alarm) { ev.preventDefault(); raiseAlarm(); }
    else if (ev.altKey && /^[1-9]$/.test(ev.key)) {
      var sel = document.querySelectorAll("[data-lane-reason]")[Number(ev.key) - 1];
      if (sel) { ev.preventDefault(); sel.focus(); }
    } else if (ev.altKey && (ev.key === "l" || ev.key === "L")) {
      var sw = document.getElementById("lang-switch");
      if (sw) { ev.preventDefault(); location.href = sw.href; }
    }
  });
})();
