"""``/flavors``: see the flavors issue work; routes are filled in by the flavors module."""

routes: list = []
