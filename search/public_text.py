"""The one scrubber for text shown to people who are not staff: errors, banners, status.

Messages from the model loader, the index and storage name files on the server (weights, media,
index builds). Shoppers and anonymous API clients do not need to know where those live, and an
attacker learns the layout from them, so every path is replaced by "<path>". Staff see the original
in the admin, `manage.py search_status` and the API when logged in as staff.
"""

from __future__ import annotations

import re
from typing import Any

# An absolute or home-relative file path not inside a URL (no word character, ":" or "/" right before
# its first "/"): /opt/models/x.pth, ~/weights.pth.
_SERVER_PATH = re.compile(r"(?<![\w:/~])~?/(?:[\w.\-]+/)*[\w.\-]+")


def without_server_paths(value: Any) -> Any:
    """Strings with file paths on the server replaced by "<path>", in nested dicts and lists too."""
    if isinstance(value, str):
        return _SERVER_PATH.sub("<path>", value)
    if isinstance(value, dict):
        return {key: without_server_paths(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_server_paths(item) for item in value]
    return value


def shown_to(user: Any, value: Any) -> Any:
    """The value as is for staff, scrubbed for anyone else (anonymous users included)."""
    return value if getattr(user, "is_staff", False) else without_server_paths(value)
