"""Who is asking: the identity every service call acts for (no HTTP in it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestContext:
    user_id: str
    project_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    request_id: str | None = None
    user_name: str | None = None
    project_name: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def visible_project(self) -> str | None:
        """The project a lookup by id is limited to: the caller's own, or ``None`` (every
        project) for an admin."""
        return None if self.is_admin else self.project_id

    @classmethod
    def system(cls, request_id: str | None = None) -> RequestContext:
        """The context background work runs with: admin, acting for no project in particular."""
        return cls(user_id="stackvol", project_id="", roles=frozenset({"admin"}),
                   request_id=request_id)
