"""Query parameters of ``/flavors`` (Nova's ``schemas/flavors.py``)."""

from __future__ import annotations

from stackvol.services.flavors.api import CONSTANT_SORT_KEYS, SORT_KEYS

SORT_KEY_VALUES = frozenset(SORT_KEYS) | frozenset(CONSTANT_SORT_KEYS)
SORT_DIRS = frozenset({"asc", "desc"})
# Every parameter Nova's index/detail schema knows (2.75+ rejects others).
LIST_QUERY = frozenset({"sort_key", "sort_dir", "is_public", "minRam", "minDisk", "limit",
                        "marker"})
