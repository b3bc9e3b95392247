/* The search session: which photo is being searched (kept in memory, so a new filter or crop re-runs
   the search without choosing the photo again), the fields sent with it, and running searches — a
   burst of changes becomes one search, and only the newest search may paint the results. It shows
   progress and errors through status.js and answers through results.js; it knows no element itself. */
import { SearchError, searchByPhoto } from "./api.js";

const RESULTS = 24;
const SEARCH_DELAY_MS = 350; // lets a burst of key presses or filter edits become one search

/**
 * `readFields()` gives the filters and crop ({category, min_price, max_price, crop}, unset ones left
 * out); `onSearched(fields)` runs after each search that painted its results, with the fields it sent.
 */
export function createSearch({ form, readFields, status, results, onSearched }) {
  const apiUrl = form.getAttribute("data-api-url");
  const state = {
    file: null,
    imageUrl: "",
    searched: form.getAttribute("data-searched") === "1", // the server rendered results already
    request: null,
    timer: 0,
  };

  function fields() {
    return { k: String(RESULTS), ...readFields() };
  }

  function hasPhoto() {
    return Boolean(state.file || state.imageUrl);
  }

  /** Resolves to true when this search painted its results (false: it failed or a newer one won). */
  async function run() {
    window.clearTimeout(state.timer);
    if (!hasPhoto()) {
      status.showError("Choose a photo or enter an image URL to search with.");
      return false;
    }
    if (state.request) {
      state.request.abort();
    }
    const controller = new AbortController();
    state.request = controller;
    status.clearError();
    status.busy(true);
    const sent = fields();
    try {
      const data = await searchByPhoto(apiUrl, {
        file: state.file,
        imageUrl: state.imageUrl,
        fields: sent,
        csrfToken: form.elements.csrfmiddlewaretoken.value,
        signal: controller.signal,
      });
      state.searched = true;
      status.say(results.render(data, sent));
      onSearched(sent);
      return true;
    } catch (error) {
      if (error.name === "AbortError") {
        return false;
      }
      results.hide();
      if (!(error instanceof SearchError)) {
        console.error(error); // a bug in this page, not a failed search: leave a trace for developers
      }
      status.showError(error instanceof SearchError ? error.message : "The search failed. Please try again.");
      return false;
    } finally {
      if (state.request === controller) {
        state.request = null;
        status.busy(false);
      }
    }
  }

  return {
    fields,
    hasPhoto,
    /** Whether results are on the page (from the server or an earlier search): edits then re-search. */
    searched: () => state.searched,
    imageUrl: () => state.imageUrl,
    /** Searches now, replacing any search under way. */
    run,
    /** Searches after a short pause, so several quick changes make one search. */
    runSoon() {
      window.clearTimeout(state.timer);
      state.timer = window.setTimeout(run, SEARCH_DELAY_MS);
    },
    useFile(file) {
      state.file = file;
      state.imageUrl = "";
    },
    useUrl(url) {
      state.file = null;
      state.imageUrl = url;
    },
  };
}
