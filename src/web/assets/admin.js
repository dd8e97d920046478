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
  // ---- pickers: search a person or a vehicle, choose with the keyboard or the mouse ----
  // A .picker holds a search box (role=combobox), a hidden field the API gets (the chosen id)
  // and a role=listbox list. Typing searches (after a short pause), ArrowDown/ArrowUp move,
  // Enter chooses, Escape closes. The vehicle picker of a form shows the chosen vehicle's live
  // passes of the form's kind in the form's .live-warning.
  function pickerParts(box) {
    return { input: box.querySelector("input[role=combobox]"), hidden: box.querySelector("input[type=hidden]"), list: box.querySelector("[role=listbox]") };
  }
  function personText(p) { return p.name + " · " + (p.department || "") + " · " + p.category_label + " · " + (zh ? "编号 " : "no. ") + p.id; }
  function vehicleText(v) { return v.plate + (v.owner_name ? " · " + v.owner_name : "") + (v.owner_department ? " · " + v.owner_department : ""); }
  function closeList(box) {
    var x = pickerParts(box);
    x.list.hidden = true; x.input.setAttribute("aria-expanded", "false"); x.input.removeAttribute("aria-activedescendant");
  }
  function activate(box, index) {
    var x = pickerParts(box), opts = x.list.querySelectorAll("[role=option]");
    if (!opts.length) return;
    index = (index + opts.length) % opts.length;
    opts.forEach(function (o, i) { o.setAttribute("aria-selected", i === index ? "true" : "false"); });
    x.input.setAttribute("aria-activedescendant", opts[index].id);
    opts[index].scrollIntoView({ block: "nearest" });
  }
  function choose(box, option) {
    var x = pickerParts(box);
    var item = option.__item;
    x.hidden.value = String(item.id);
    x.input.value = option.dataset.text;
    box.dataset.chosen = String(item.id);
    box.__chosen = item;
    x.input.removeAttribute("aria-invalid");
    var err = box.querySelector(".error"); if (err) err.textContent = "";
    closeList(box);
    picked(box, item);
  }
  function unchoose(box) {
    var x = pickerParts(box);
    if (x.hidden.value === "") return;
    x.hidden.value = ""; delete box.dataset.chosen; box.__chosen = null;
    picked(box, null);
  }
  // What choosing changes elsewhere in the form: a vehicle's live passes, and a person's
  // vehicles (a vehicle picker that follows the person is emptied).
  function picked(box, item) {
    var form = box.closest("form");
    if (!form) return;
    if (box.dataset.picker === "person") {
      form.querySelectorAll('.picker[data-owner-from="' + pickerParts(box).hidden.name + '"]').forEach(function (v) {
        var y = pickerParts(v); y.input.value = ""; unchoose(v);
      });
    }
    if (box.dataset.picker === "vehicle") liveWarning(form);
  }
  function liveWarning(form) {
    var warn = form.querySelector(".live-warning");
    var box = form.querySelector('.picker[data-picker="vehicle"]');
    if (!warn || !box) return;
    var single = warn.dataset.singleUse !== undefined ? warn.dataset.singleUse === "true" : !!(form.querySelector("[name=single_use]") || {}).checked;
    var item = box.__chosen;
    var passes = item ? item.live_passes.filter(function (p) { return p.single_use === single; }) : [];
    var ul = warn.querySelector("ul");
    ul.textContent = "";
    passes.forEach(function (p) {
      var li = document.createElement("li");
      li.dataset.permit = p.permit_id;
      li.textContent = p.kind_label + " " + p.permit_id + (warn.dataset.no || "") + " · " + warn.dataset.holder + " " + p.holder_name + " · " + p.validity;
      ul.appendChild(li);
    });
    warn.querySelector(".intro").textContent = passes.length ? warn.dataset.intro + item.plate : "";
    warn.hidden = passes.length === 0;
    var reason = warn.querySelector("[name=override_reason]");
    if (reason) { reason.disabled = passes.length === 0; reason.required = passes.length > 0; }
  }
  function search(box) {
    var x = pickerParts(box);
    var url = box.dataset.url + "?q=" + encodeURIComponent(x.input.value.trim());
    if (box.dataset.ownerFrom) {
      var owner = box.closest("form").querySelector('[name="' + box.dataset.ownerFrom + '"]');
      if (owner && owner.value) url += "&owner_id=" + encodeURIComponent(owner.value);
    }
    var asked = x.input.value;
    send("GET", url).then(function (res) {
      if (x.input.value !== asked) return; // typed on meanwhile: a newer search follows
      // The option moved to with the arrows stays the active one when the list is redrawn.
      var was = x.list.querySelector("[aria-selected=true]");
      var keep = was ? was.dataset.id : null, at = 0;
      x.list.textContent = "";
      if (!res.ok) {
        var bad = document.createElement("li"); bad.className = "none"; bad.textContent = res.data && res.data.message || "?"; x.list.appendChild(bad);
      } else if (!res.data.length) {
        var none = document.createElement("li"); none.className = "none"; none.textContent = box.dataset.none; x.list.appendChild(none);
      } else {
        res.data.forEach(function (item, i) {
          var li = document.createElement("li");
          li.id = x.list.id + "-" + i;
          li.setAttribute("role", "option");
          li.setAttribute("aria-selected", "false");
          li.__item = item;
          li.dataset.id = item.id;
          li.dataset.text = box.dataset.picker === "person" ? item.name + " · " + (item.department || "") : item.plate;
          var main = document.createElement("span");
          main.className = box.dataset.picker === "vehicle" ? "plate" : "name";
          main.textContent = box.dataset.picker === "person" ? item.name : item.plate;
          var more = document.createElement("small");
          more.textContent = box.dataset.picker === "person" ? personText(item).slice(item.name.length) : vehicleText(item).slice(item.plate.length);
          li.appendChild(main); li.appendChild(more);
          if (item.live_passes && item.live_passes.length) {
            var tag = document.createElement("small"); tag.className = "badge active";
            tag.textContent = item.live_passes.map(function (p) { return p.kind_label; }).join(" / ");
            li.appendChild(tag);
          }
          if (keep !== null && String(item.id) === keep) at = i;
          x.list.appendChild(li);
        });
      }
      x.list.hidden = false;
      x.input.setAttribute("aria-expanded", "true");
      if (res.ok && res.data.length) activate(box, at);
    });
  }
  document.querySelectorAll(".picker").forEach(function (box) {
    var x = pickerParts(box), timer = null;
    x.input.addEventListener("input", function () {
      unchoose(box);
      clearTimeout(timer);
      timer = setTimeout(function () { search(box); }, 150);
    });
    x.input.addEventListener("focus", function () { if (!box.dataset.chosen) search(box); });
    x.input.addEventListener("keydown", function (ev) {
      var opts = x.list.querySelectorAll("[role=option]");
      var current = Array.prototype.findIndex.call(opts, function (o) { return o.getAttribute("aria-selected") === "true"; });
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        if (x.list.hidden) { search(box); return; }
        activate(box, current + (ev.key === "ArrowDown" ? 1 : -1));
      } else if (ev.key === "Enter") {
        if (!x.list.hidden && current >= 0) { ev.preventDefault(); choose(box, opts[current]); }
        else if (!box.dataset.chosen) ev.preventDefault(); // never submit with a half-typed choice
      } else if (ev.key === "Escape") {
        closeList(box);
      }
    });
    x.list.addEventListener("mousedown", function (ev) {
      var o = ev.target.closest("[role=option]");
      if (o) { ev.preventDefault(); choose(box, o); }
    });
    x.input.addEventListener("blur", function () { setTimeout(function () { closeList(box); }, 120); });
  });
  document.querySelectorAll("form [name=single_use]").forEach(function (c) {
    c.addEventListener("change", function () { liveWarning(c.form); });
  });
  // ---- gate rights: checkboxes per gate and direction → the API's text (all, all:exit, 1;2:exit) ----
  function gateRights(fs) {
    var rows = fs.querySelectorAll("tr[data-gate]");
    var all = rows[0];
    var allIn = all.querySelector("[data-dir=entry]").checked, allOut = all.querySelector("[data-dir=exit]").checked;
    var code = "", words = [];
    Array.prototype.slice.call(rows, 1).forEach(function (r) {
      r.querySelectorAll("input").forEach(function (c) {
        // Covered by 全部大门: shown ticked and locked; untied again when 全部大门 is untied.
        var covered = c.dataset.dir === "entry" ? allIn : allOut;
        if (covered && !c.disabled) { c.dataset.was = c.checked ? "1" : ""; c.checked = true; }
        if (!covered && c.disabled) c.checked = c.dataset.was === "1";
        c.disabled = covered;
      });
    });
    if (allIn || allOut) {
      code = allIn && allOut ? "all" : (allIn ? "all:entry" : "all:exit");
      words.push(allIn && allOut ? fs.dataset.all : (allIn ? fs.dataset.allEntry : fs.dataset.allExit));
    } else {
      var parts = [];
      Array.prototype.slice.call(rows, 1).forEach(function (r) {
        var i = r.querySelector("[data-dir=entry]").checked, o = r.querySelector("[data-dir=exit]").checked;
        if (!i && !o) return;
        parts.push(r.dataset.gate + (i && o ? "" : (i ? ":entry" : ":exit")));
        var dirs = i && o ? fs.dataset.both : (i ? fs.dataset.in : fs.dataset.out);
        words.push(r.dataset.name + (zh ? "（" + dirs + "）" : " (" + dirs + ")"));
      });
      code = parts.join(";");
    }
    fs.querySelector("input[name=gates]").value = code;
    fs.querySelector("output").textContent = words.length ? words.join(fs.dataset.sep) : fs.dataset.none;
  }
  document.querySelectorAll("fieldset.gate-rights").forEach(function (fs) {
    fs.addEventListener("change", function () { gateRights(fs); });
    gateRights(fs);
  });
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.dataset.url) return;
    ev.preventDefault();
    var submitter = ev.submitter;
    // A picker left without a choice, or no gate ticked: said at the field, nothing sent.
    var unpicked = Array.prototype.find.call(form.querySelectorAll(".picker"), function (box) { return !pickerParts(box).hidden.value; });
    if (unpicked) {
      var e = unpicked.querySelector(".error"); if (e) e.textContent = unpicked.dataset.choose;
      var inp = pickerParts(unpicked).input; inp.setAttribute("aria-invalid", "true"); inp.focus();
      return;
    }
    var rights = form.querySelector("fieldset.gate-rights");
    if (rights && !rights.querySelector("input[name=gates]").value) {
      var ge = rights.querySelector("[data-error-for=gates]"); if (ge) ge.textContent = rights.dataset.none;
      rights.querySelector("input[type=checkbox]").focus();
      return;
    }
    var needed = form.querySelector("[name=override_reason][required]:not([disabled])");
    if (needed && !needed.value.trim()) {
      var re = form.querySelector("[data-error-for=override_reason]");
      if (re) re.textContent = zh ? "该车已有同类有效通行证，请填写重复发证原因" : "The vehicle already holds a live pass of this kind: give the reason";
      needed.setAttribute("aria-invalid", "true"); needed.focus();
      return;
    }
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
      if (res.status === 409) {
        // A second live pass of the same kind: the reason field comes up (it may not have
        // been known when the vehicle was chosen).
        var w = form.querySelector(".live-warning"), r = form.querySelector("[name=override_reason]");
        if (w) w.hidden = false;
        if (r) { r.disabled = false; r.required = true; r.focus(); }
      }
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
