"""Flavors on the legacy paths: the v2.1 views (bookmarks re-pointed), in Juno's XML."""

from __future__ import annotations

from stackvol.http.compute_legacy.views.templates import compute_collection, compute_single

flavor_xml = compute_single("flavor")
flavors_xml = compute_collection("flavors", "flavor")
