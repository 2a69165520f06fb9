// cobox dashboard: live updates. The pages work without this script; with it, a page
// marked data-live re-reads itself when the agent reports an event (server-sent events,
// the same stream as the control API's /v1/events) and every few seconds.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.hasAttribute("data-live") || !window.fetch || !window.DOMParser) {
    return;
  }
  var busy = false;
  function refresh() {
    // Not while a form of the page is being filled in: it would be replaced.
    var active = document.activeElement;
    if (busy || document.hidden || (active && active.form && main.contains(active))) {
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null) { return; }
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("main");
        if (fresh) { main.innerHTML = fresh.innerHTML; }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  if (window.EventSource) {
    var events = new EventSource("/live");
    events.onmessage = refresh;
  }
  window.setInterval(refresh, 5000);
})();
