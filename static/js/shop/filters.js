/* The filters: #id_category, #id_min_price and #id_max_price, in the fold #filters-fold. Reads them as
   the API's fields, reports when the shopper changes one, and folds them away on a narrow screen
   (the fold's summary says how many are set: #filters-count). Without JavaScript the fold stays open. */

const FIELDS = { category: "id_category", min_price: "id_min_price", max_price: "id_max_price" };
// The width from which the filters sit beside the photo (shop.css): there they are always shown.
const WIDE = window.matchMedia("(min-width: 800px)");

export function createFilters({ onChange }) {
  const inputs = Object.entries(FIELDS).map(([name, id]) => [name, document.getElementById(id)]);
  const fold = document.getElementById("filters-fold");
  const count = document.getElementById("filters-count");

  function values() {
    const set = {};
    inputs.forEach(([name, input]) => {
      if (input.value) {
        set[name] = input.value;
      }
    });
    return set;
  }

  function showCount() {
    const n = Object.keys(values()).length;
    count.textContent = n ? n + " set" : "";
  }

  function fit() {
    fold.open = WIDE.matches;
  }

  inputs.forEach(([, input]) =>
    input.addEventListener("change", () => {
      showCount();
      onChange();
    }),
  );
  WIDE.addEventListener("change", fit);
  fit();
  showCount();

  return {
    /** The filters that are set, by API field name ({category, min_price, max_price}). */
    values,
  };
}
