"""``/flavors`` on the legacy paths: the v2.1 endpoints at 2.1, bookmarks re-pointed, in JSON
or XML."""

from __future__ import annotations

from starlette.routing import Route

from stackvol.http.compute import flavors as v21
from stackvol.http.compute_legacy.rendering import relay
from stackvol.http.compute_legacy.views import flavors as views

routes = [
    Route("/flavors", relay(v21.index, views.flavors_xml), methods=["GET"]),
    Route("/flavors/detail", relay(v21.detail, views.flavors_xml), methods=["GET"]),
    Route("/flavors/{flavor_id}", relay(v21.show, views.flavor_xml), methods=["GET"]),
]
