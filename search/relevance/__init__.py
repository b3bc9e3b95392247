"""The relevance self-test's engine, Django-free: shopper-like variants of catalog photos (variants) and
the figures computed from what their searches returned (figures). The run itself, which searches
through the one query service and stores the result, is search.services.relevance."""
