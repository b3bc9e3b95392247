/* Live progress for admin pages: polls the JSON endpoint named by data-poll-url and fills elements
   carrying data-field="<key>" (text), data-value-field="<key>" (a <progress> value) or data-show-when
   (shown while the key is truthy). When the work ends ("finished" turns true, or "busy" turns false)
   the page reloads once so the server-rendered final state, with all errors, is shown.
   The pages only include this script while something is in progress; without JavaScript they still work. */
(function () {
  "use strict";
  var root = document.querySelector("[data-poll-url]");
  if (!root) { return; }
  var url = root.getAttribute("data-poll-url");
  var every = parseInt(root.getAttribute("data-poll-every") || "1000", 10);
  var wasBusy = root.getAttribute("data-busy") === "true";

  function lookup(data, path) {
    return path.split(".").reduce(function (value, key) {
      return value === null || value === undefined ? value : value[key];
    }, data);
  }

  function fill(data) {
    root.querySelectorAll("[data-field]").forEach(function (element) {
      var value = lookup(data, element.getAttribute("data-field"));
      element.textContent = value === null || value === undefined ? "" : String(value);
    });
    root.querySelectorAll("[data-value-field]").forEach(function (element) {
      var value = lookup(data, element.getAttribute("data-value-field"));
      if (typeof value === "number") { element.value = value; }
    });
    root.querySelectorAll("[data-show-when]").forEach(function (element) {
      element.hidden = !lookup(data, element.getAttribute("data-show-when"));
    });
  }

  function finished(data) {
    if ("finished" in data) { return data.finished; }
    var ended = wasBusy && !data.busy;
    wasBusy = Boolean(data.busy);
    return ended;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        fill(data);
        if (finished(data)) { window.location.reload(); return; }
        window.setTimeout(poll, every);
      })
      .catch(function () { window.setTimeout(poll, every * 5); });
  }

  window.setTimeout(poll, every);
})();
