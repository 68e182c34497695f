"""The Image API face (``/image``, a Glance v2 subset)."""
