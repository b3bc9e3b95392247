"""Shopper feedback without JavaScript: each result card's buttons are a small form posting here.

With JavaScript the page sends the same fields to POST /api/v1/search/feedback/ and stays put; this
answers a page saying thanks (or what went wrong) with a way back. Both call the one service,
search.services.feedback_record, and share one rate limit (SearchFeedbackThrottle).
"""

from __future__ import annotations

import math

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from search import services
from search.api.throttling import SearchFeedbackThrottle
from search.forms import FeedbackForm
from search.models import SearchFeedback

THANKS = {
    SearchFeedback.Verdict.THIS_ONE: "Thanks! You told us “{name}” is what you were looking for.",
    SearchFeedback.Verdict.NOT_THIS: "Thanks! You told us “{name}” is not what you were looking for.",
}
TOO_MANY = "You sent a lot of feedback in a short time: please wait a minute and try again."


@require_POST
def shop_feedback(request: HttpRequest) -> HttpResponse:
    throttle = SearchFeedbackThrottle()
    if not throttle.allow_request(request, None):  # counted before anything else, as the API does
        response = _answer(request, TOO_MANY, status=429)
        response["Retry-After"] = str(math.ceil(throttle.wait() or 1))
        return response
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        return _answer(request, "This feedback could not be read: please try again from the results.", 400)
    data = form.cleaned_data
    try:
        recorded = services.feedback_record(
            query_id=data["query_id"],
            product_id=data["product"],
            verdict=data["verdict"],
            rank=data["rank"],
            score=data["score"],
        )
    except services.FeedbackRefused as exc:
        return _answer(request, exc.message, exc.status_code)
    feedback = recorded.feedback
    return _answer(request, THANKS[feedback.verdict].format(name=feedback.product.name), 200, thanked=True)


def _answer(request: HttpRequest, message: str, status: int, *, thanked: bool = False) -> HttpResponse:
    back = request.POST.get("back", "")
    # Only a link to this site (a search's share link): never an open redirect to elsewhere.
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = ""
    context = {"message": message, "thanked": thanked, "back": back}
    return render(request, "search/feedback_done.html", context, status=status)
