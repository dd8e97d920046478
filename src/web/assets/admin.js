// Gatehouse administration pages: forms sent to the JSON API with the session's CSRF token
// (fields converted to the API's types, errors shown at their fields in the page's language),
// confirmation dialogs for campus-wide modes, and the bulk import (dry run, progress, every bad
// row, then the commit). Plain ES2017, no dependencies, no build step; the pages work with the
// keyboard alone (native forms, buttons and <dialog>).
(function () {
  "use strict";
  var lang = document.documentElement.lang === "en" ? "en" : "zh-CN";
  var zh = lang !== "en";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }
  function send(method, url, body, extra) {
    var headers = { "Accept-Language": lang, "X-CSRF-Token": csrf() };
    var payload;
    if (body instanceof ArrayBuffer) { headers["Content-Type"] = "application/octet-stream"; payload = body; }
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
    Object.keys(extra || {}).forEach(function (k) { headers[k] = extra[k]; });
    return fetch(url, { method: method, headers: headers, credentials: "same-origin", body: payload }).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
        return { ok: r.ok, status: r.status, data: data };
      });
    }, function () {
      return { ok: false, status: 0, data: { message: zh ? "无法连接服务器" : "Cannot reach the server" } };
    });
  }
  // The language switch comes back to this very page (with its filters).
  var sw = document.getElementById("lang-switch");
  if (sw) {
    var to = new URL(sw.href, location.href).searchParams.get("to");
    sw.href = "/lang?to=" + to + "&next=" + encodeURIComponent(location.pathname + location.search);
  }
  // ---- forms with data-url: the fields as the API's JSON ----
  // data-type on a field: number, datetime (a datetime-local in the site's zone, Asia/Shanghai),
  // numbers (a comma list), list (checkboxes with one name → an array), bool (a checkbox).
  // data-optional: left out when empty. data-skip: never sent (e.g. a confirmation box).
  function body(form, submitter) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "submit" || el.type === "button" || el.disabled) return;
      if (el.dataset.skip !== undefined) return;
      var t = el.dataset.type, v = el.value;
      if (t === "list") {
        if (!out[el.name]) out[el.name] = [];
        if (el.checked) out[el.name].push(el.dataset.num !== undefined ? Number(v) : v);
        return;
      }
      if (el.type === "checkbox") { out[el.name] = el.checked; return; }
      if (el.type === "radio") { if (el.checked) out[el.name] = v; return; }
      if (v === "" && (el.dataset.optional !== undefined || t === "number" || t === "datetime")) return;
      if (t === "number") v = Number(v);
      else if (t === "datetime") v = v.length === 16 ? v + ":00" + (document.body.dataset.utcOffset || "+08:00") : v;
      else if (t === "numbers") v = v.split(/[,，;；\s]+/).filter(Boolean).map(Number);
      out[el.name] = v;
    });
    if (submitter && submitter.name) out[submitter.name] = submitter.dataset.type === "bool" ? submitter.value === "true" : submitter.value;
    return out;
  }
  // Answers are shown at their forms by gatehouse.js (loaded first on every page).
  var clearErrors = window.Gatehouse.clearErrors;
  function show(form, res) { window.Gatehouse.showResult(form, res, zh ? "已保存" : "Saved"); }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.dataset.url) return;
    ev.preventDefault();
    var submitter = ev.submitter;
    var unconfirmed = form.querySelector("input[type=checkbox][data-skip][required]:not(:checked)");
    if (unconfirmed) {
      var st = form.querySelector(".form-status");
      if (st) { st.textContent = zh ? "请先勾选确认框" : "Tick the confirmation first"; st.className = "form-status bad"; }
      unconfirmed.focus();
      return;
    }
    var url = (submitter && submitter.dataset.url) || form.dataset.url;
    var method = (submitter && submitter.dataset.method) || form.dataset.method || "POST";
    var extra = {};
    if (form.dataset.ifMatch) extra["If-Match"] = '"' + form.dataset.ifMatch + '"';
    var b = form.dataset.empty !== undefined ? undefined : body(form, submitter);
    if (form.dataset.empty !== undefined && form.querySelector("[name]")) b = body(form, submitter);
    form.setAttribute("aria-busy", "true");
    Array.prototype.forEach.call(form.querySelectorAll("button"), function (x) { x.disabled = true; });
    send(method, url, b, extra).then(function (res) {
      form.removeAttribute("aria-busy");
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (x) { x.disabled = false; });
      show(form, res);
      if (res.ok) {
        var dlg = form.closest("dialog");
        if (dlg && form.dataset.keepOpen === undefined) setTimeout(function () { dlg.close(); }, 800);
        if (form.dataset.reload !== undefined) setTimeout(function () { location.reload(); }, 700);
      }
    });
  });
  // ---- confirmation dialogs: a button with data-dialog opens it, filling its fields ----
  document.addEventListener("click", function (ev) {
    var opener = ev.target.closest("[data-dialog]");
    if (opener) {
      var dlg = document.getElementById(opener.dataset.dialog);
      if (!dlg) return;
      Object.keys(opener.dataset).forEach(function (k) {
        if (k.indexOf("set") !== 0 || k.length < 4) return;
        var name = k.charAt(3).toLowerCase() + k.slice(4);
        dlg.querySelectorAll('[data-fill="' + name + '"]').forEach(function (el) {
          if ("value" in el && el.tagName !== "BUTTON") el.value = opener.dataset[k]; else el.textContent = opener.dataset[k];
        });
      });
      var form = dlg.querySelector("form");
      if (form) { form.reset && form.querySelectorAll("input[type=checkbox]").forEach(function (c) { c.checked = false; }); clearErrors(form); var st = form.querySelector(".form-status"); if (st) { st.textContent = ""; st.className = "form-status"; } }
      dlg.showModal();
      var focus = dlg.querySelector("[autofocus]") || dlg.querySelector("textarea, input, select");
      if (focus) focus.focus();
      return;
    }
    if (ev.target.closest("[data-print]")) { window.print(); return; }
    var closer = ev.target.closest("[data-close]");
    if (closer) { var d = closer.closest("dialog"); if (d) d.close(); }
  });
  // ---- bulk import ----
  var imp = document.getElementById("import-form");
  if (imp) {
    var out = document.getElementById("import-report");
    var bar = document.getElementById("import-progress");
    var commitBtn = document.getElementById("import-commit");
    var checkedFile = null;
    function fileOf() { var f = imp.querySelector("#import-file"); return f.files && f.files[0]; }
    imp.addEventListener("change", function () { commitBtn.disabled = true; checkedFile = null; });
    function text(key) { return out.dataset[key] || ""; }
    function render(job) {
      out.textContent = "";
      var p = document.createElement("p");
      p.className = "summary " + (job.errors.length || job.failure ? "bad" : "ok");
      p.setAttribute("role", "status");
      if (job.failure) p.textContent = job.failure;
      else if (job.errors.length) p.textContent = text("bad").replace("{n}", job.error_count || job.errors.length).replace("{t}", job.total_rows);
      else if (job.commit) p.textContent = text("imported").replace("{n}", job.imported);
      else p.textContent = text("good").replace("{n}", job.valid_rows);
      out.appendChild(p);
      if (job.errors.length) {
        var table = document.createElement("table");
        table.id = "import-errors";
        var cap = document.createElement("caption"); cap.textContent = text("caption"); table.appendChild(cap);
        var head = document.createElement("tr");
        [text("line"), text("column"), text("reason")].forEach(function (h) { var th = document.createElement("th"); th.scope = "col"; th.textContent = h; head.appendChild(th); });
        var thead = document.createElement("thead"); thead.appendChild(head); table.appendChild(thead);
        var tbody = document.createElement("tbody");
        job.errors.forEach(function (e) {
          var tr = document.createElement("tr");
          tr.dataset.line = e.line;
          var names = {};
          try { names = JSON.parse(out.dataset.columns || "{}"); } catch (x) { names = {}; }
          [e.line, names[e.column] || e.column, e.message].forEach(function (c) { var td = document.createElement("td"); td.textContent = c; tr.appendChild(td); });
          tbody.appendChild(tr);
        });
        table.appendChild(tbody);
        out.appendChild(table);
      }
      document.body.dataset.importState = job.failure || job.errors.length ? "refused" : (job.commit ? "imported" : "checked");
    }
    function poll(id, commit) {
      send("GET", "/api/v1/bulk/jobs/" + id).then(function (res) {
        if (!res.ok) { out.textContent = res.data && res.data.message || "?"; return; }
        var job = res.data;
        bar.max = Math.max(job.total, 1); bar.value = job.processed;
        bar.textContent = job.processed + "/" + job.total;
        document.getElementById("import-phase").textContent = (out.dataset["phase_" + job.phase] || job.phase) + " " + job.processed + " / " + job.total;
        if (job.state === "running") { setTimeout(function () { poll(id, commit); }, 200); return; }
        job.total_rows = job.valid_rows + job.errors.length;
        render(job);
        commitBtn.disabled = !(job.state === "done" && !commit && job.errors.length === 0);
        if (!commitBtn.disabled) checkedFile = fileOf();
        imp.removeAttribute("aria-busy");
      });
    }
    function start(commit) {
      var file = fileOf();
      if (!file) { out.textContent = text("nofile"); return; }
      var kind = imp.querySelector("#import-kind").value;
      imp.setAttribute("aria-busy", "true");
      document.body.dataset.importState = "running";
      file.arrayBuffer().then(function (buf) {
        return send("POST", "/api/v1/bulk/" + kind + "/import?commit=" + commit, buf);
      }).then(function (res) {
        if (!res.ok) { out.textContent = res.data && res.data.message || "?"; document.body.dataset.importState = "refused"; imp.removeAttribute("aria-busy"); return; }
        poll(res.data.job_id, commit);
      });
    }
    imp.addEventListener("submit", function (ev) { ev.preventDefault(); commitBtn.disabled = true; start(false); });
    commitBtn.addEventListener("click", function () { if (checkedFile && checkedFile === fileOf()) { commitBtn.disabled = true; start(true); } });
  }
})();
