"""The Compute API 1.1 face (``/v1.1``, ``/v2``): JSON and XML, on the same services as v2.1."""
