/* Live progress for admin pages: polls the JSON endpoint named by data-poll-url and fills elements
   carrying data-field="<key>" (text), data-value-field="<key>" (a <progress> value), data-rows-field
   (a table body refilled from a list, cells named by data-row-keys) or data-show-when (shown while
   the key is truthy). When the work ends ("finished" turns true, or "busy" turns false)
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
    root.querySelectorAll("[data-rows-field]").forEach(function (body) {
      // A list of objects as table rows, one cell per key; text only, never HTML.
      var items = lookup(data, body.getAttribute("data-rows-field")) || [];
      var keys = body.getAttribute("data-row-keys").split(",");
      var rows = document.createDocumentFragment();
      items.forEach(function (item) {
        var row = document.createElement("tr");
        keys.forEach(function (key) {
          var cell = document.createElement("td");
          cell.textContent = item[key] === null || item[key] === undefined ? "" : String(item[key]);
          row.appendChild(cell);
        });
        rows.appendChild(row);
      });
      body.replaceChildren(rows);
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
