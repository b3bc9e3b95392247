/* The filters: #id_category, #id_min_price and #id_max_price. Reads them as the API's fields and
   reports when the shopper changes one. */

const FIELDS = { category: "id_category", min_price: "id_min_price", max_price: "id_max_price" };

export function createFilters({ onChange }) {
  const inputs = Object.entries(FIELDS).map(([name, id]) => [name, document.getElementById(id)]);
  inputs.forEach(([, input]) => input.addEventListener("change", onChange));

  return {
    /** The filters that are set, by API field name ({category, min_price, max_price}). */
    values() {
      const values = {};
      inputs.forEach(([name, input]) => {
        if (input.value) {
          values[name] = input.value;
        }
      });
      return values;
    },
  };
}
