"""The legacy face's content negotiation and rendering, and the shared boolean and integer
readers, called directly (no server)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Scope

from stackvol.http.common import (
    CINDER_BOOL,
    CINDER_BOOL_BEFORE_3_2,
    FALSE_WORDS,
    GLANCE_BOOL,
    KEYSTONE_BOOL,
    NOVA_BOOL,
    TRUE_WORDS,
    BoolWords,
    cinder_int_message,
    glance_int_message,
    parse_bool,
    query_bool,
    query_int,
)
from stackvol.http.compute_legacy import negotiation
from stackvol.http.compute_legacy.negotiation import (
    JSON,
    VND_JSON,
    VND_XML,
    XML,
    Media,
    best_match,
    body_type,
    media_of,
    negotiate,
    strip_suffix,
)
from stackvol.http.compute_legacy.rendering import Negotiated, fault_response
from stackvol.http.compute_legacy.xml import Node
from stackvol.http.faults import Fault


def _scope(accept: str | None = None, query: str = "") -> Scope:
    headers = [(b"accept", accept.encode())] if accept is not None else []
    return {"type": "http", "method": "GET", "path": "/", "root_path": "", "headers": headers,
            "query_string": query.encode(), "state": {}}


# --- the response type ----------------------------------------------------------------------


def test_a_suffix_wins_over_the_accept_header() -> None:
    scope = _scope("application/json")
    assert negotiate(scope, "/p/os-volumes.xml") == "/p/os-volumes"
    assert media_of(scope) == Media(XML)
    scope = _scope("application/xml")
    assert negotiate(scope, "/p/os-volumes/detail.json") == "/p/os-volumes/detail"
    assert media_of(scope) == Media(JSON)


def test_strip_suffix_leaves_other_paths_alone() -> None:
    assert strip_suffix("/p/servers") == ("/p/servers", None)
    assert strip_suffix("/p/servers.yaml") == ("/p/servers.yaml", None)


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, JSON),
    ("", JSON),
    ("   ", JSON),
    ("*/*", JSON),  # a tie goes to the first offer
    ("application/*", JSON),
    ("application/xml", XML),
    ("text/xml, application/xml", XML),
    ("application/vnd.openstack.compute+xml", VND_XML),
    ("application/vnd.openstack.compute+json", VND_JSON),
    ("APPLICATION/XML", XML),  # media ranges are case-insensitive
    ("application/json;q=0.5, application/xml", XML),
    ("application/json;q=0.9, application/xml;q=0.8", JSON),
    ("*/*;q=0.1, application/xml;q=0.2", XML),
    ("application/json;q=0, */*", VND_JSON),  # the most specific range decides an offer
    ("application/xml;q=bogus, application/json;q=0.1", JSON),  # a bad q is 0
    ("text/html", None),
    ("application/json;q=0", None),
])
def test_the_accept_header_picks_the_best_supported_type(accept: str | None,
                                                         chosen: str | None) -> None:
    assert best_match(accept) == chosen


def test_nothing_acceptable_is_406_and_remembers_nothing() -> None:
    scope = _scope("text/html")
    with pytest.raises(Fault) as caught:
        negotiate(scope, "/p/os-volumes")
    assert caught.value.code == 406
    assert media_of(scope) == negotiation.DEFAULT  # so the fault itself is JSON


def test_media_is_xml_by_its_type() -> None:
    assert Media(XML).is_xml and Media(VND_XML).is_xml
    assert not Media(JSON).is_xml and not Media(VND_JSON).is_xml


# --- the request body type ------------------------------------------------------------------


@pytest.mark.parametrize(("content_type", "kind"), [
    (None, "json"),
    ("", "json"),
    ("application/json", "json"),
    ("application/json; charset=UTF-8", "json"),
    ("Application/JSON", "json"),
    ("application/vnd.openstack.compute+json", "json"),
    ("application/xml", "xml"),
    ("text/xml;charset=utf-8", "xml"),
    ("application/vnd.openstack.compute+xml", "xml"),
    ("text/plain", None),
    ("application/x-www-form-urlencoded", None),
])
def test_body_type_by_content_type(content_type: str | None, kind: str | None) -> None:
    assert body_type(content_type) == kind


# --- Negotiated: a Response rendered by the negotiated type ----------------------------------


def _volume_xml(data: dict[str, Any]) -> Node:
    return Node("volume", {"id": data["volume"]["id"]})


def _sent(response: Response, scope: Scope) -> list[Message]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    asyncio.run(response(scope, receive, send))
    return messages


@pytest.mark.parametrize("media", [JSON, XML, VND_JSON, VND_XML])
def test_negotiated_sends_what_a_plain_response_of_that_type_would(media: str) -> None:
    data = {"volume": {"id": "v-1", "name": None}}
    scope = _scope()
    scope["state"]["legacy_media"] = Media(media)
    sent = _sent(Negotiated(data, _volume_xml, 202, {"Location": "http://h/v"}), scope)
    body = (b"<?xml version='1.0' encoding='UTF-8'?>\n<volume id=\"v-1\"/>"
            if media.endswith("xml") else orjson.dumps(data))
    expected = Response(body, 202, {"Location": "http://h/v"}, media_type=media)
    assert sent == [
        {"type": "http.response.start", "status": 202, "headers": expected.raw_headers},
        {"type": "http.response.body", "body": body},
    ]


def test_negotiated_is_a_response_and_renders_on_request() -> None:
    response = Negotiated({"a": 1}, lambda data: Node("a", text=str(data["a"])))
    assert isinstance(response, Response)
    response.negotiate(Media(XML))
    assert response.body == b"<?xml version='1.0' encoding='UTF-8'?>\n<a>1</a>"
    assert response.headers["content-type"] == XML
    assert response.headers["content-length"] == str(len(response.body))
    response.negotiate(Media(JSON))
    assert (response.body, response.headers["content-type"]) == (b'{"a":1}', JSON)
    assert response.headers.getlist("content-type") == [JSON]


def test_without_a_negotiated_type_the_answer_is_json() -> None:
    sent = _sent(Negotiated({"a": 1}, lambda data: Node("a")), _scope())
    assert sent[1]["body"] == b'{"a":1}'
    assert (b"content-type", JSON.encode()) in sent[0]["headers"]


def test_a_fault_in_xml_has_no_declaration_and_keeps_its_headers() -> None:
    scope = _scope()
    scope["state"]["legacy_media"] = Media(XML)
    sent = _sent(fault_response(Fault(413, "Over", {"Retry-After": "0"})), scope)
    assert sent[0]["status"] == 413
    assert (b"retry-after", b"0") in sent[0]["headers"]
    assert sent[1]["body"] == (b'<overLimit code="413" xmlns="http://docs.openstack.org/compute/'
                               b'api/v1.1"><message>Over</message><retryAfter>0</retryAfter>'
                               b"</overLimit>")


# --- booleans -------------------------------------------------------------------------------


def test_oslo_words() -> None:
    assert {"1", "t", "true", "on", "y", "yes"} == TRUE_WORDS
    assert {"0", "f", "false", "off", "n", "no"} == FALSE_WORDS


@pytest.mark.parametrize("words", [NOVA_BOOL, CINDER_BOOL, CINDER_BOOL_BEFORE_3_2, GLANCE_BOOL,
                                   KEYSTONE_BOOL])
def test_json_booleans_pass_as_they_are(words: BoolWords) -> None:
    assert parse_bool(True, words) is True
    assert parse_bool(False, words) is False


@pytest.mark.parametrize(("value", "expected"), [
    ("True", True), (" yes ", True), ("t", True), ("Y", True), ("1", True), ("on", True),
    ("false", False), ("nonsense", False), ("", False), (None, False), ("2", False),
])
def test_nova_reads_a_true_word_or_else_false(value: object, expected: bool) -> None:
    assert parse_bool(value, NOVA_BOOL) is expected


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), (" On ", True), ("t", True), ("y", True), (1, True), ("YES", True),
    ("false", False), ("Off", False), ("f", False), ("n", False), (0, False), ("no", False),
])
def test_cinder_reads_both_word_lists(value: object, expected: bool) -> None:
    assert parse_bool(value, CINDER_BOOL, "force") is expected


@pytest.mark.parametrize("value", ["maybe", "", 2, None])
def test_cinder_refuses_other_text_in_its_words(value: object) -> None:
    with pytest.raises(Fault) as caught:
        parse_bool(value, CINDER_BOOL, "force")
    assert caught.value.code == 400
    assert caught.value.message == (
        f"Invalid input received: Invalid value '{value}' for force. Accepted values are: "
        f"'true', 'false', '1', '0', 'yes', 'no', 'on', 'off'")


@pytest.mark.parametrize(("value", "expected"), [
    ("False", False), ("false", False), ("FALSE", False), ("", False),
    ("fAlse", True), (" false", True), ("0", True), ("no", True), ("anything", True),
])
def test_cinder_before_3_2_is_false_only_for_three_spellings(value: str, expected: bool) -> None:
    assert parse_bool(value, CINDER_BOOL_BEFORE_3_2, "bootable") is expected


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), (" TRUE ", True), ("false", False), ("False", False)])
def test_glance_reads_true_or_false(value: str, expected: bool) -> None:
    assert parse_bool(value, GLANCE_BOOL, "protected") is expected


@pytest.mark.parametrize("value", ["1", "yes", ""])
def test_glance_refuses_other_words(value: str) -> None:
    with pytest.raises(Fault) as caught:
        parse_bool(value, GLANCE_BOOL, "protected")
    assert caught.value.message == (f"Invalid value '{value}' for protected filter; valid "
                                    f"values are true and false")


@pytest.mark.parametrize(("value", "expected"), [
    ("", True), ("true", True), ("anything", True), ("0", False), (" No ", False),
    ("f", False), ("off", False)])
def test_keystone_reads_anything_but_a_no_as_true(value: str, expected: bool) -> None:
    assert parse_bool(value, KEYSTONE_BOOL) is expected


def test_a_reading_needs_words_and_a_strict_one_a_refusal() -> None:
    with pytest.raises(ValueError):
        BoolWords(true=None, false=None)
    with pytest.raises(ValueError):
        BoolWords(true=TRUE_WORDS, false=FALSE_WORDS)


def _request(query: str) -> Request:
    return Request(_scope(query=query))


def test_query_bool_reads_the_parameter_or_gives_the_default() -> None:
    assert query_bool(_request("force=yes"), "force", CINDER_BOOL, False) is True
    assert query_bool(_request(""), "force", CINDER_BOOL, False) is False
    assert query_bool(_request(""), "enabled", KEYSTONE_BOOL, None) is None
    assert query_bool(_request("enabled"), "enabled", KEYSTONE_BOOL, None) is True
    with pytest.raises(Fault):
        query_bool(_request("force="), "force", CINDER_BOOL, False)


# --- integers -------------------------------------------------------------------------------


def test_query_int_default_bounds_and_messages() -> None:
    assert query_int(_request(""), "limit", 7) == 7
    assert query_int(_request("limit="), "limit", 7) == 7
    assert query_int(_request("limit=3"), "limit", 7) == 3
    with pytest.raises(Fault) as caught:
        query_int(_request("limit=x"), "limit", 7)
    assert caught.value.message == ("Invalid input for query parameters limit. Value: x. 'x' "
                                    "does not match '^[0-9]*$'")
    with pytest.raises(Fault) as caught:
        query_int(_request("offset=-1"), "offset", 0, message=cinder_int_message)
    assert caught.value.message == "Invalid input received: offset param must be positive"


def test_glance_refuses_an_empty_integer() -> None:
    assert query_int(_request(""), "size_min", None, message=glance_int_message,
                     empty_is_absent=False) is None
    with pytest.raises(Fault) as caught:
        query_int(_request("size_min="), "size_min", None, message=glance_int_message,
                  empty_is_absent=False)
    assert caught.value.message == "size_min param must be an integer"
