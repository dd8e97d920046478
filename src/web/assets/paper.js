// The booth's figures and paperwork (issue 20, item 7): the console's vehicles-inside figures
// refreshed when the live lanes change (and once a minute), the print buttons of the shift
// report and the visitor slip, and the slip's serial number asked for once when it has none.
// Plain ES2017, no dependencies, no build step. Loaded by the pages that need it; runs once.
(function () {
  "use strict";
  if (window.gatehousePaper) return;
  window.gatehousePaper = true;
  var lang = document.documentElement.lang === "en" ? "en" : "zh-CN";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }

  // ---- vehicles inside now ----
  var pending = null;
  function refreshFigures() {
    var el = document.getElementById("figures");
    if (!el || !el.dataset.refresh) return;
    fetch(el.dataset.refresh, { credentials: "same-origin", headers: { "Accept-Language": lang } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        var now = document.getElementById("figures");
        if (html && now) now.outerHTML = html;
      }, function () {});
  }
  function soon() {
    if (pending) return;
    pending = setTimeout(function () { pending = null; refreshFigures(); }, 800);
  }
  function watchLanes() {
    if (!document.getElementById("figures")) return;
    // The live stream marks the page (data-updated) and re-renders each gate's recent
    // passages whenever a gate's events arrive.
    var observer = new MutationObserver(soon);
    observer.observe(document.body, { attributes: true, attributeFilter: ["data-updated"] });
    document.querySelectorAll('[id^="recent-"]').forEach(function (el) {
      observer.observe(el, { childList: true, subtree: true, characterData: true });
    });
    setInterval(refreshFigures, 60000);
    window.addEventListener("pageshow", function (e) { if (e.persisted) refreshFigures(); });
  }

  // ---- printing ----
  function printButtons() {
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
  }

  // ---- the visitor slip's serial ----
  function issueSerial() {
    var el = document.querySelector("#slip-serial[data-issue]");
    if (!el) return;
    fetch(el.dataset.issue, {
      method: "POST", credentials: "same-origin",
      headers: { "Accept-Language": lang, "X-CSRF-Token": csrf() }
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.serial) {
          el.textContent = data.serial;
          el.removeAttribute("data-issue");
          el.setAttribute("data-issued", "");
        } else {
          el.textContent = el.dataset.failed || "?";
        }
      }, function () { el.textContent = el.dataset.failed || "?"; });
  }

  function start() {
    watchLanes();
    printButtons();
    issueSerial();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
