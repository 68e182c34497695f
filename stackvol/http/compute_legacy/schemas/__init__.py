"""Request bodies of the legacy paths: the v2.1 schemas as the legacy API applied them, and the
XML deserializers of the Juno API."""
