"""Responses of the legacy paths: each resource's JSON view and its XML template side by side."""
