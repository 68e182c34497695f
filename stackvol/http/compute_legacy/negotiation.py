"""Content negotiation as Nova's legacy ``wsgi.Request`` did it: a ``.json``/``.xml`` suffix on
the path wins, then the ``Accept`` header's best match, then JSON."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import Scope

from stackvol.http.faults import Fault

JSON = "application/json"
XML = "application/xml"
VND_JSON = "application/vnd.openstack.compute+json"
VND_XML = "application/vnd.openstack.compute+xml"
# In the order Nova offered them: on a tie (e.g. ``*/*``) the first wins.
SUPPORTED = (JSON, VND_JSON, XML, VND_XML)
_SUFFIXES = {".json": JSON, ".xml": XML}
_STATE_KEY = "legacy_media"


@dataclass(frozen=True, slots=True)
class Media:
    content_type: str

    @property
    def is_xml(self) -> bool:
        return self.content_type.endswith("xml")


DEFAULT = Media(JSON)


def strip_suffix(path: str) -> tuple[str, str | None]:
    """The path without a ``.json``/``.xml`` suffix, and the type that suffix asks for."""
    for suffix, content_type in _SUFFIXES.items():
        if path.endswith(suffix):
            return path[: -len(suffix)], content_type
    return path, None


def _ranges(accept: str) -> list[tuple[str, float]]:
    out = []
    for item in accept.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            continue
        quality = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        out.append((parts[0].lower(), quality))
    return out


def _matches(media_range: str, offer: str) -> bool:
    if media_range in ("*/*", offer):
        return True
    major, _, minor = media_range.partition("/")
    return minor == "*" and offer.startswith(major + "/")


def best_match(accept: str | None) -> str | None:
    """The supported type the ``Accept`` header likes best (JSON when there is no header)."""
    if not accept or not accept.strip():
        return JSON
    ranges = _ranges(accept)
    best, best_quality = None, 0.0
    for offer in SUPPORTED:
        # The most specific range naming the offer decides its quality (RFC 7231 5.3.2).
        fitting = [(r, q) for r, q in ranges if _matches(r, offer)]
        if not fitting:
            continue
        _, quality = max(fitting, key=lambda rq: (rq[0].count("*") == 0, rq[0] != "*/*"))
        if quality > best_quality:
            best, best_quality = offer, quality
    return best


def negotiate(scope: Scope, path: str) -> str:
    """Choose the response type (406 when nothing fits), remember it in the request state for
    the responses and faults, and return the path without its format suffix."""
    path, wanted = strip_suffix(path)
    chosen = wanted or best_match(Headers(scope=scope).get("accept"))
    if chosen is None:
        raise Fault(406)
    scope.setdefault("state", {})[_STATE_KEY] = Media(chosen)
    return path


def media_of(scope: Scope) -> Media:
    return scope.get("state", {}).get(_STATE_KEY, DEFAULT)


def body_type(content_type: str | None) -> str | None:
    """``json`` or ``xml`` for a request Content-Type (JSON when absent), ``None`` if neither."""
    if not content_type:
        return "json"
    base = content_type.split(";", 1)[0].strip().lower()
    if base in (JSON, VND_JSON):
        return "json"
    if base in (XML, VND_XML, "text/xml"):
        return "xml"
    return None
