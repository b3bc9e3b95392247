"""Rate limit for anonymous photo searches (each one runs the model: the expensive request)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle


class SearchAnonThrottle(AnonRateThrottle):
    """Anonymous searches per client IP, at REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["search_anon"]
    (env SEARCH_ANON_RATE). Token-authenticated integrations are not limited by it."""

    scope = "search_anon"

    def get_rate(self) -> str | None:
        # Read the rate now, not at import: DRF binds THROTTLE_RATES when the class is defined.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
