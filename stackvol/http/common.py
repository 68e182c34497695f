"""What the endpoints of every face share: the caller, the microversion and the API root a
request carries, and how a query or body value reads as a boolean or an integer.

Each OpenStack API reads booleans its own way (which spellings, whether an unknown one is an
error, and in what words); those ways are the ``BoolWords`` constants below, side by side, all
read by the one ``parse_bool``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import Response

from stackvol.http.faults import Fault
from stackvol.http.microversion import APIVersion
from stackvol.services.common.context import RequestContext

Endpoint = Callable[[Request], Awaitable[Response]]


# context() and version() read the state dict in the scope: ``request.state`` wraps it in a
# State object first, and views ask for both several times per item.


def context(request: Request) -> RequestContext:
    """The authenticated caller (each face's dispatcher puts it in the request state)."""
    ctx: RequestContext = request.scope["state"]["context"]
    return ctx


def version(request: Request) -> APIVersion:
    """The microversion the request negotiated (the legacy face always runs at 2.1)."""
    found: APIVersion = request.scope["state"]["api_version"]
    return found


def root_url(request: Request) -> str:
    """The API's root as the caller reached it, project included if the caller used one
    (``.../compute/v2.1[/{project_id}]``, ``.../volume/v3[/{project_id}]``)."""
    # Not ``request.base_url``: Starlette builds that from the mount's ``app_root_path``,
    # while the faces put the version (and project) root in ``root_path``.
    scope = request.scope
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    server = scope.get("server")
    origin = _origin(scope.get("scheme", "http"), None if server is None else tuple(server), host)
    return f"{origin}{scope.get('root_path', '')}".rstrip("/")


@functools.lru_cache(maxsize=64)
def _origin(scheme: str, server: tuple[str, int] | None, host: bytes | None) -> str:
    """``scheme://netloc`` as Starlette's ``request.url`` reads them (it depends on nothing
    else): parsing the whole URL cost a tenth of a volume show, and a client sends the same
    Host on every request, so each one is parsed once (a bounded cache: Host is the caller's)."""
    url = URL(scope={"type": "http", "scheme": scheme, "server": server, "path": "/",
                     "headers": [] if host is None else [(b"host", host)]})
    return f"{url.scheme}://{url.netloc}"


# --- booleans --------------------------------------------------------------------------------

_Absent = TypeVar("_Absent", bool, None)  # what a parameter that is not given reads as
# oslo.utils' ``strutils`` TRUE_STRINGS and FALSE_STRINGS (compared lowercased and stripped).
TRUE_WORDS = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_WORDS = frozenset({"0", "f", "false", "off", "n", "no"})


@dataclass(frozen=True, slots=True)
class BoolWords:
    """How one API reads a boolean written as text.

    ``true`` and ``false`` are the words of each value; ``None`` for one of them means "any
    other text" (a lenient reading). With both given, other text is a 400 fault worded by
    ``refusal`` (``{value}``: the text as given, ``{name}``: the parameter). ``fold`` compares
    the text stripped and lowercased; without it, exactly as written.
    """

    true: frozenset[str] | None
    false: frozenset[str] | None
    refusal: str = ""
    fold: bool = True

    def __post_init__(self) -> None:
        if self.true is None and self.false is None:
            raise ValueError("a reading needs the words of at least one value")
        if self.true is not None and self.false is not None and not self.refusal:
            raise ValueError("a strict reading needs the words of its refusal")


# Nova: oslo's ``bool_from_string`` without ``strict``: a true word, else false. (Request
# bodies reach it only after their schema's enum, so its strictness is the schema's.)
NOVA_BOOL = BoolWords(true=TRUE_WORDS, false=None)
# Cinder's ``utils.get_bool_param``/``bool_from_string(strict=True)``: either word, else 400.
CINDER_BOOL = BoolWords(
    true=TRUE_WORDS, false=FALSE_WORDS,
    refusal="Invalid input received: Invalid value '{value}' for {name}. Accepted values are: "
            "'true', 'false', '1', '0', 'yes', 'no', 'on', 'off'")
# Cinder before 3.2 read a boolean filter loosely: ``False``/``false``/``FALSE`` (and the empty
# text) are false, anything else true, case and spaces as written.
CINDER_BOOL_BEFORE_3_2 = BoolWords(true=None, false=frozenset({"False", "false", "FALSE", ""}),
                                   fold=False)
# Glance's image list filters: ``true`` or ``false``, else 400.
GLANCE_BOOL = BoolWords(
    true=frozenset({"true"}), false=frozenset({"false"}),
    refusal="Invalid value '{value}' for {name} filter; valid values are true and false")
# Keystone's query flags: present (even empty) is true unless it says no.
KEYSTONE_BOOL = BoolWords(true=None, false=FALSE_WORDS)


def parse_bool(value: object, words: BoolWords, name: str = "") -> bool:
    """``value`` (a JSON boolean passes as it is; anything else is read as its text) as
    ``words`` read it; ``name`` is the parameter a refusal names."""
    if isinstance(value, bool):
        return value
    text = str(value)
    if words.fold:
        text = text.strip().lower()
    if words.true is not None and text in words.true:
        return True
    if words.false is not None and text in words.false:
        return False
    if words.true is None or words.false is None:
        return words.true is None  # lenient: the value without a word list is the default
    raise Fault(400, words.refusal.format(value=value, name=name))


def query_bool(request: Request, name: str, words: BoolWords,
               default: _Absent) -> bool | _Absent:
    """A boolean query parameter as ``words`` read it; ``default`` when absent."""
    raw = request.query_params.get(name)
    return default if raw is None else parse_bool(raw, words, name)


# --- integers --------------------------------------------------------------------------------

# Words a bad integer query parameter's 400: (name, raw value, whether it is only too small).
IntMessage = Callable[[str, str, bool], str]
_Default = TypeVar("_Default", int, None)


def nova_int_message(name: str, raw: str, too_small: bool) -> str:
    return (f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' does not match "
            f"'^[0-9]*$'")


def glance_int_message(name: str, raw: str, too_small: bool) -> str:
    return f"{name} param must be {'positive' if too_small else 'an integer'}"


def cinder_int_message(name: str, raw: str, too_small: bool) -> str:
    return f"Invalid input received: {glance_int_message(name, raw, too_small)}"


def query_int(request: Request, name: str, default: _Default, minimum: int = 0,
              message: IntMessage = nova_int_message,
              empty_is_absent: bool = True) -> int | _Default:
    """An integer query parameter of at least ``minimum``; ``default`` when absent (or empty,
    unless ``empty_is_absent`` is off: Glance refuses ``limit=`` as not an integer)."""
    raw = request.query_params.get(name)
    if raw is None or (raw == "" and empty_is_absent):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Fault(400, message(name, raw, False)) from None
    if value < minimum:
        raise Fault(400, message(name, raw, True))
    return value
