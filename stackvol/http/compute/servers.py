"""``/servers``: see the servers issue work; routes are filled in by the servers module."""

routes: list = []
