"""Quota sets, the same call on either face (Nova's and Cinder's ``os-quota-sets``)."""

from __future__ import annotations

from typing import Any

import httpx


def put_quota(client: httpx.Client, project: str, **limits: Any) -> httpx.Response:
    """``PUT /os-quota-sets/{project}``, the answer unchecked."""
    return client.put(f"/os-quota-sets/{project}", json={"quota_set": limits})
