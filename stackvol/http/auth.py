"""Who is calling: a Keystone token (``X-Auth-Token``), or Nova-noauth2-style trusted headers."""

from __future__ import annotations

from starlette.datastructures import Headers

from stackvol.http.faults import Fault
from stackvol.logs import note_caller
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import NotAuthenticated
from stackvol.services.common.policy import expand_roles
from stackvol.services.identity.api import IdentityService


class Authenticator:
    def __init__(self, identity: IdentityService, noauth: bool = False,
                 identity_url: str = "") -> None:
        self.identity = identity
        self.noauth = noauth
        self.identity_url = identity_url

    def _unauthorized(self, message: str) -> Fault:
        return Fault(401, message,
                     {"WWW-Authenticate": f'Keystone uri="{self.identity_url}"'})

    async def context(self, headers: Headers, request_id: str | None) -> RequestContext:
        """The caller's context, or a 401 fault."""
        if self.noauth:
            return self._noauth_context(headers, request_id)
        token_id = headers.get("x-auth-token")
        if not token_id:
            raise self._unauthorized("The request you have made requires authentication.")
        try:
            token = await self.identity.validate(token_id)
        except NotAuthenticated as exc:
            raise self._unauthorized(exc.message) from None
        note_caller(token.user_id, token.project_id)
        return RequestContext(user_id=token.user_id, project_id=token.project_id,
                              roles=token.role_names, request_id=request_id,
                              user_name=token.user_name, project_name=token.project_name)

    @staticmethod
    def _noauth_context(headers: Headers, request_id: str | None) -> RequestContext:
        # As Nova's noauth2: trust the headers; the user "admin" is an administrator.
        user = headers.get("x-auth-user-id") or headers.get("x-auth-user") or "admin"
        project = headers.get("x-auth-project-id") or "admin"
        names = {r.strip() for r in headers.get("x-roles", "").split(",") if r.strip()}
        if not names:
            names = {"admin"} if user == "admin" else {"member"}
        note_caller(user, project)
        return RequestContext(user_id=user, project_id=project, roles=expand_roles(names),
                              request_id=request_id)
