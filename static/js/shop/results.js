/* Search results: the section #results, the cards in #result-grid (cloned from #card-template, the
   same markup as the server's search/_card.html), the count #results-count, the empty state
   #empty-state and the API's warnings in #search-warnings.
   Hook for more rows from the same answer (e.g. "Other things in your photo"): onRender(fn) runs
   fn(data, section, fields) after each render (fields: what the search sent, e.g. its crop);
   card(result, {queryId, rank}) builds a card for such a row. A card carries its feedback form
   (feedback.js) when given the query id of the list it is in. */

// The same words as search/views.py MATCH_LABELS (the server-rendered page): only a close hit is
// called a match; a weak one is only the nearest item.
const MATCH_LABELS = {
  close: (percent) => percent + "% match",
  similar: (percent) => "Looks similar (" + percent + "%)",
  weak: () => "Nearest item",
};

/** The API's WebP thumbnails as a srcset. A card shows its photo whole inside a square, so each file
    is described by its longer side: the same rule as card_srcset() in search/views.py. */
function cardSrcset(thumbnails) {
  return thumbnails.map((t) => t.url + " " + Math.max(t.width, t.height) + "w").join(", ");
}

// When some hits are close or similar, the weak ones (only the nearest items) are folded away under
// "N more items, less alike"; when none is, all show. Same rule as fold_weak() in search/views.py.
function foldWeak(found, cards) {
  const strong = found.map((result) => result.match === "close" || result.match === "similar");
  if (!strong.some(Boolean)) {
    return [cards, []];
  }
  return [cards.filter((_, index) => strong[index]), cards.filter((_, index) => !strong[index])];
}

function clampScore(score) {
  return Math.min(1, Math.max(0, Number(score) || 0));
}

function warningText(warning) {
  return typeof warning === "string" ? warning : warning.detail || warning.message || "";
}

export function createResults() {
  const $ = (id) => document.getElementById(id);
  const section = $("results");
  const grid = $("result-grid");
  const more = $("more-results");
  const moreGrid = $("more-grid");
  const count = $("results-count");
  const empty = $("empty-state");
  const template = $("card-template");
  const warnings = $("search-warnings");
  const renderers = [];

  /** Fills a card's "This one" / "Not what I'm looking for" form, or removes it without a query id. */
  function fillFeedback(node, result, { queryId, rank }) {
    const form = node.querySelector(".feedback");
    if (!form) return;
    if (!queryId) {
      form.remove();
      return;
    }
    form.elements.query_id.value = queryId;
    form.elements.product.value = String(result.product.id);
    form.elements.rank.value = String(rank);
    form.elements.score.value = String(clampScore(result.score));
    form.dataset.productName = result.product.name;
    // The product's name completes each button's accessible name; the visible words begin it.
    form.querySelectorAll(".feedback__button").forEach((button) => {
      button.setAttribute("aria-label", button.textContent.trim() + ": " + result.product.name);
    });
  }

  /** One result of the API ({product, score}) as a card; `queryId` and `rank` (1 = first) say which
      search's list it is in and where, for feedback on it. */
  function card(result, { queryId = "", rank = 0 } = {}) {
    const product = result.product;
    const node = template.content.firstElementChild.cloneNode(true);
    node.querySelector(".card__link").href = product.url;
    node.querySelector("img").src = product.thumbnail_url || "";
    const source = node.querySelector("source");
    const srcset = cardSrcset(product.thumbnails || []);
    if (srcset) {
      source.srcset = srcset;
    } else {
      source.remove(); // an empty srcset would show nothing: the JPEG alone
    }
    node.querySelector(".card__name").textContent = product.name;
    node.querySelector(".card__price").textContent = product.price + " " + product.currency;
    node.querySelector(".card__category").textContent = product.category ? product.category.name : "Uncategorised";
    const score = node.querySelector(".card__score");
    const match = MATCH_LABELS[result.match] ? result.match : "weak";
    const percent = Math.round(clampScore(result.score) * 100);
    score.textContent = MATCH_LABELS[match](percent);
    score.className = "card__score card__score--" + match;
    score.title = "Visual similarity " + percent + " %";
    fillFeedback(node, result, { queryId, rank });
    return node;
  }

  function renderWarnings(list) {
    warnings.textContent = "";
    if (document.querySelector(".notices")) {
      return; // the API warns about the model, which the page's banner already explains
    }
    list.forEach((warning) => {
      const p = document.createElement("p");
      p.className = "notice notice--info";
      p.textContent = warningText(warning);
      warnings.appendChild(p);
    });
  }

  return {
    card,
    /** Shows the API's answer to a search that sent `fields`; returns the sentence for the status line. */
    render(data, fields = {}) {
      const found = (data && data.results) || [];
      const queryId = (data && data.query_id) || "";
      grid.dataset.queryId = queryId;
      const cards = found.map((result, index) => card(result, { queryId, rank: index + 1 }));
      const [shown, folded] = foldWeak(found, cards);
      grid.replaceChildren(...shown);
      moreGrid.replaceChildren(...folded);
      more.hidden = folded.length === 0;
      more.open = false;
      $("more-results-summary").textContent =
        folded.length + " more item" + (folded.length === 1 ? "" : "s") + ", less alike";
      const label = found.length + " product" + (found.length === 1 ? "" : "s");
      count.textContent = label;
      empty.hidden = found.length > 0;
      $("nothing-close").hidden = !(data && data.nothing_close && found.length > 0);
      section.hidden = false;
      renderWarnings((data && data.warnings) || []);
      renderers.forEach((renderer) => renderer(data, section, fields));
      return found.length ? "Found " + label + "." : "No matching products.";
    },
    hide() {
      section.hidden = true;
    },
    onRender(renderer) {
      renderers.push(renderer);
    },
  };
}
