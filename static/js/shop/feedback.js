/* Shopper feedback on a hit: the "This one" / "Not what I'm looking for" buttons of every result card
   and of every row of other things (form.feedback, from search/_feedback.html or #card-template).
   Without JavaScript each is a small form posting to the page. With it, a click sends the same fields
   to the JSON API (POST /api/v1/search/feedback/, the address in #results' data-feedback-url) and the
   page stays: the button clicked becomes pressed (aria-pressed, the other one not), and the polite
   live region #feedback-status says thanks, or why the feedback was not sent (the buttons then go back
   to what they were). One listener on #results serves the cards of every later search too. */

// The same words as search/feedback_page.py THANKS (the no-JavaScript answer).
const THANKS = {
  this_one: (name) => "Thanks! You told us “" + name + "” is what you were looking for.",
  not_this: (name) => "Thanks! You told us “" + name + "” is not what you were looking for.",
};
const TOO_MANY = "You sent a lot of feedback in a short time: please wait a minute and try again.";
const SHOWN_MS = 6000; // the thanks stays on screen this long (screen readers have announced it by then)

class FeedbackError extends Error {}

async function sendFeedback(apiUrl, csrfToken, form, verdict) {
  const fields = form.elements;
  const body = {
    query_id: fields.query_id.value,
    product: Number(fields.product.value),
    verdict,
    rank: Number(fields.rank.value),
    score: Number(fields.score.value),
  };
  let response;
  try {
    response = await fetch(apiUrl, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
  } catch {
    throw new FeedbackError("Your feedback could not be sent. Check your connection and try again.");
  }
  if (response.status === 429) {
    throw new FeedbackError(TOO_MANY);
  }
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    const detail = data && typeof data.detail === "string" ? data.detail : "";
    throw new FeedbackError(detail || "Your feedback could not be sent (HTTP " + response.status + ").");
  }
}

/** `root`: the element holding the results (#results); `csrfToken()`: the page's CSRF token. */
export function createFeedback({ root, csrfToken }) {
  const apiUrl = root.getAttribute("data-feedback-url");
  const status = document.getElementById("feedback-status");
  let timer = 0;

  function say(text) {
    window.clearTimeout(timer);
    status.textContent = text;
    timer = window.setTimeout(() => {
      status.textContent = "";
    }, SHOWN_MS);
  }

  root.addEventListener("click", async (event) => {
    const button = event.target.closest(".feedback__button");
    if (!button || !button.form || !apiUrl) {
      return; // no API address: the form posts to the page as without JavaScript
    }
    event.preventDefault();
    const form = button.form;
    if (form.dataset.sending) {
      return; // one at a time per hit; the first click's answer decides
    }
    const buttons = [...form.querySelectorAll(".feedback__button")];
    const before = buttons.map((other) => other.getAttribute("aria-pressed"));
    buttons.forEach((other) => other.setAttribute("aria-pressed", String(other === button)));
    form.dataset.sending = "1";
    try {
      await sendFeedback(apiUrl, csrfToken(), form, button.value);
      say(THANKS[button.value](form.dataset.productName || "this product"));
    } catch (error) {
      buttons.forEach((other, index) => other.setAttribute("aria-pressed", before[index]));
      if (!(error instanceof FeedbackError)) {
        console.error(error); // a bug in this page: leave a trace for developers
      }
      say(error instanceof FeedbackError ? error.message : "Your feedback could not be sent. Please try again.");
    } finally {
      delete form.dataset.sending;
    }
  });
}
