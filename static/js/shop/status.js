/* What the page says about the search under way: busy (the #search-status spinner, #results
   aria-busy, the #search-button disabled), the status line #search-status-text (read out by screen
   readers) and the error #search-error. */

export function createStatus() {
  const $ = (id) => document.getElementById(id);
  const status = $("search-status");
  const text = $("search-status-text");
  const error = $("search-error");
  const button = $("search-button");
  const results = $("results");

  return {
    busy(on) {
      results.setAttribute("aria-busy", on ? "true" : "false");
      status.classList.toggle("is-busy", on);
      button.disabled = on;
      if (on) {
        text.textContent = "Searching…";
      }
    },
    say(message) {
      text.textContent = message;
    },
    showError(message) {
      error.textContent = message;
      error.hidden = false;
      text.textContent = "";
    },
    clearError() {
      error.textContent = "";
      error.hidden = true;
    },
  };
}
