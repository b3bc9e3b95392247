"""Page-number pagination for product lists: ?page=N, and ?page_size= up to 100."""

from rest_framework.pagination import PageNumberPagination
from rest_framework.settings import api_settings


class ProductPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request) -> int | None:
        # REST_FRAMEWORK["PAGE_SIZE"] read per request (DRF binds it when the class is defined).
        self.page_size = api_settings.PAGE_SIZE
        return super().get_page_size(request)
