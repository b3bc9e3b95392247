/* The JSON search API (POST /api/v1/search/; the page gives its address in the form's data-api-url).
   Owns the request's shape — a photo file goes as multipart, an image URL as JSON, each with the
   fields (k, filters, crop) — and turns the answer into data, or into a SearchError whose message can
   be shown to the shopper as is. Nothing else on the page talks to the API. */

export class SearchError extends Error {}

function request({ file, imageUrl, fields, csrfToken, signal }) {
  const headers = { Accept: "application/json", "X-CSRFToken": csrfToken };
  const options = { method: "POST", headers, credentials: "same-origin", signal };
  if (file) {
    const body = new FormData();
    body.append("image", file, file.name || "photo");
    Object.entries(fields).forEach(([key, value]) => body.append(key, value));
    return { ...options, body };
  }
  headers["Content-Type"] = "application/json";
  return { ...options, body: JSON.stringify({ ...fields, url: imageUrl }) };
}

// The API's errors carry {"detail": "...", "code": "..."} (docs/api.md); a bare field dict is DRF's default.
function errorMessage(response, data) {
  if (data && typeof data.detail === "string") {
    return data.detail;
  }
  if (data && typeof data === "object") {
    const field = Object.keys(data)[0];
    const problem = [].concat(data[field])[0];
    if (field && problem) {
      return field.replace(/_/g, " ") + ": " + problem;
    }
  }
  if (response.status === 413) {
    return "This photo is too large.";
  }
  return "The search failed (HTTP " + response.status + "). Please try again.";
}

/**
 * Searches with a photo: `file` (a File or Blob) or else `imageUrl`; `fields` are form fields
 * ({k, category, min_price, max_price, crop}). Resolves to the API's answer ({results, warnings, ...}).
 * Rejects with a SearchError, or with the AbortError of `signal` when a newer search replaced this one.
 */
export async function searchByPhoto(apiUrl, { file, imageUrl, fields, csrfToken, signal }) {
  let response;
  try {
    response = await fetch(apiUrl, request({ file, imageUrl, fields, csrfToken, signal }));
  } catch (error) {
    if (error.name === "AbortError") {
      throw error;
    }
    throw new SearchError("Could not reach the shop. Check your connection and try again.");
  }
  const data = await response.json().catch(() => null);
  if (signal && signal.aborted) {
    throw new DOMException("A newer search replaced this one.", "AbortError"); // stale, not empty
  }
  if (!response.ok) {
    throw new SearchError(errorMessage(response, data));
  }
  return data;
}
