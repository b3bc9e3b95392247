"""Rate limits: anonymous photo searches (each one runs the model: the expensive request) and shopper
feedback (anyone may send it: a flood must not fill the review queue)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class SearchAnonThrottle(AnonRateThrottle):
    """Anonymous searches per client IP, at REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["search_anon"]
    (env SEARCH_ANON_RATE). Token-authenticated integrations are not limited by it."""

    scope = "search_anon"

    def get_rate(self) -> str | None:
        # Read the rate now, not at import: DRF binds THROTTLE_RATES when the class is defined.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class SearchFeedbackThrottle(UserRateThrottle):
    """Feedback per client IP (per user when authenticated), at DEFAULT_THROTTLE_RATES["search_feedback"]
    (env SEARCH_FEEDBACK_RATE). The API and the page's no-JavaScript form share one budget."""

    scope = "search_feedback"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
