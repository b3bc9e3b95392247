"""Who may do what through the API.

Reads are public. Writes need the Django model permission for what they change (add, change or
delete on the view's model), exactly what the admin asks of the same user: a token or a session alone
is not enough. Anonymous writers get 401 (token authentication comes first), authenticated users
without the permission get 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions

if TYPE_CHECKING:  # rest_framework.views imports the settings that name this class
    from rest_framework.request import Request
    from rest_framework.views import APIView


class CatalogWritePermission(DjangoModelPermissions):
    """Public reads; writes need the model permission of the view's `queryset` model.

    A view that accepts writes must declare `queryset`; one that does not is refused (403), never let
    through, so a new write endpoint cannot be opened by forgetting to declare what it changes.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return True
        if not request.user or not request.user.is_authenticated:
            return False
        if getattr(view, "queryset", None) is None and not hasattr(view, "get_queryset"):
            return False
        return super().has_permission(request, view)
