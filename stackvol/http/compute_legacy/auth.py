"""``GET /v1.0``: the Compute 1.0/1.1 clients' sign-in. ``X-Auth-User`` and ``X-Auth-Key`` are
a user's name and password in our identity service; the answer is a normal token of it, for
the user's default project (or ``X-Auth-Project-Id``), and the URL of that project's v1.1 API."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import Response

from stackvol.http.faults import Fault
from stackvol.services.common.errors import NotAuthenticated
from stackvol.services.identity.api import IdentityService, Token


async def _token(identity: IdentityService, user: str, key: str, project: str | None) -> Token:
    if not project:
        return await identity.authenticate_password(key, user_name=user)
    try:  # Nova's clients sent the project's id; a name is accepted too
        return await identity.authenticate_password(key, user_name=user, project_id=project)
    except NotAuthenticated:
        return await identity.authenticate_password(key, user_name=user, project_name=project)


async def sign_in(identity: IdentityService, headers: Headers, face_base: str) -> Response:
    user, key = headers.get("x-auth-user"), headers.get("x-auth-key")
    if not user or not key:
        raise Fault(401, "The request you have made requires authentication.")
    try:
        token = await _token(identity, user, key, headers.get("x-auth-project-id"))
    except NotAuthenticated as exc:
        raise Fault(401, exc.message) from None
    return Response(status_code=204, headers={
        "X-Auth-Token": token.token_id,
        "X-Server-Management-Url": f"{face_base}/v1.1/{token.project_id}",
        "X-Storage-Url": "",
        "X-CDN-Management-Url": "",
    })
