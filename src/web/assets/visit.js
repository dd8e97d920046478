// Self-booking on a phone (/visit): the form sent to the public JSON API, errors shown at their
// fields in the page's language, then on to the status link the answer gives. The plate is sent
// as typed beside the province picker; the server normalises it (domain::plate::with_province),
// this only tidies what the visitor sees (full width to half width, upper case). Plain ES2017,
// no dependencies, no build step.
(function () {
  "use strict";
  var lang = document.documentElement.lang === "en" ? "en" : "zh-CN";
  var zh = lang !== "en";
  var form = document.getElementById("visit-form");
  if (!form) return;
  var status = form.querySelector(".form-status");
  function halfWidth(s) {
    return s.replace(/[\uff01-\uff5e]/g, function (c) { return String.fromCharCode(c.charCodeAt(0) - 0xfee0); });
  }
  var plate = form.elements.plate;
  plate.addEventListener("input", function () {
    var tidy = halfWidth(plate.value).toUpperCase();
    if (tidy !== plate.value) plate.value = tidy;
  });
  function clearErrors() {
    Array.prototype.forEach.call(form.querySelectorAll("[data-error-for]"), function (e) { e.textContent = ""; });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (e) { e.removeAttribute("aria-invalid"); });
    status.textContent = "";
    status.className = "form-status";
  }
  function showError(field, message) {
    var slot = form.querySelector('[data-error-for="' + field + '"]');
    if (slot) slot.textContent = message;
    var input = form.elements[field];
    if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
    return !!slot;
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    clearErrors();
    var offset = form.dataset.utcOffset || "+08:00";
    var date = form.elements.date.value;
    var at = function (time) { return date && time ? date + "T" + time.slice(0, 5) + ":00" + offset : ""; };
    var body = {
      host: form.elements.host.value,
      province: form.elements.province.value,
      plate: plate.value,
      visitor_name: form.elements.visitor_name.value,
      visitor_phone: form.elements.visitor_phone.value,
      visitor_email: form.elements.visitor_email.value,
      purpose: form.elements.purpose.value,
      slot_from: at(form.elements.from.value),
      slot_until: at(form.elements.until.value)
    };
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.textContent = zh ? "正在提交…" : "Sending…";
    fetch(form.dataset.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept-Language": lang },
      credentials: "same-origin",
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
        return { status: r.status, data: data };
      });
    }, function () {
      return { status: 0, data: null };
    }).then(function (res) {
      if (res.status === 202 && res.data && res.data.status_url) {
        status.textContent = zh ? "已提交" : "Sent";
        location.assign(res.data.status_url);
        return;
      }
      button.disabled = false;
      status.className = "form-status error";
      var shown = false;
      ((res.data && res.data.fields) || []).forEach(function (f) { shown = showError(f.field, f.message) || shown; });
      if (res.status === 0) status.textContent = zh ? "无法连接服务器，请检查网络后重试" : "Cannot reach the server; check the connection and try again";
      else if (shown) status.textContent = zh ? "请修改标出的内容" : "Please correct the marked fields";
      else status.textContent = (res.data && res.data.message) || (zh ? "提交失败，请稍后重试" : "Could not send; please try again later");
      var first = form.querySelector("[aria-invalid]");
      if (first && first.focus) first.focus();
    });
  });
})();
