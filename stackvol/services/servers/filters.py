"""Nova's server list filters, read into one predicate over loaded servers.

The list query pages through the rows newest first and keeps those the predicate accepts, so
each filter here is a plain function of a ``Server`` (regexes, status names, tags, times).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from stackvol.services.common.errors import Invalid
from stackvol.services.servers.records import DEFAULT, Server, states_for_status

Predicate = Callable[[Server], bool]


def _parse_time(name: str, value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace(" ", "+"))
    except ValueError:
        raise Invalid(f"Invalid input for query parameters {name}. Value: {value}. "
                      f"'{value}' is not a 'date-time'") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _regex(value: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error:
        return re.compile(re.escape(value))


def _csv(value: str) -> set[str]:
    return {item for item in value.split(",") if item}


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "t", "yes", "y", "on"}


def _status_predicate(value: str, strict: bool) -> Predicate | None:
    vm_states: set[str] = set()
    task_states: set[str] = set()
    for status in _csv(value):
        found_vm, found_task = states_for_status(status)
        vm_states |= found_vm
        task_states |= found_task
    if not vm_states:
        if strict:
            raise Invalid("Invalid status value")
        return None
    any_task = DEFAULT in task_states
    return lambda s: s.vm_state in vm_states and (any_task or s.task_state in task_states)


def _time_predicates(filters: dict[str, str]) -> list[Predicate]:
    out: list[Predicate] = []
    if "changes-since" in filters:
        since = _parse_time("changes-since", filters["changes-since"])
        out.append(lambda s: (s.updated_at or s.created_at) >= since)
    if "changes-before" in filters:
        before = _parse_time("changes-before", filters["changes-before"])
        out.append(lambda s: (s.updated_at or s.created_at) <= before)
    return out


def _tag_predicates(filters: dict[str, str]) -> list[Predicate]:
    out: list[Predicate] = []
    if "tags" in filters:
        wanted = _csv(filters["tags"])
        out.append(lambda s: wanted <= set(s.tags or []))
    if "tags-any" in filters:
        any_of = _csv(filters["tags-any"])
        out.append(lambda s: bool(any_of & set(s.tags or [])))
    if "not-tags" in filters:
        not_all = _csv(filters["not-tags"])
        out.append(lambda s: not not_all <= set(s.tags or []))
    if "not-tags-any" in filters:
        none_of = _csv(filters["not-tags-any"])
        out.append(lambda s: not none_of & set(s.tags or []))
    return out


# filter name → server attribute compared for equality (as text).
_EQUAL = {
    "reservation_id": "reservation_id", "image": "image_ref", "image_ref": "image_ref",
    "flavor": "flavor_id", "availability_zone": "availability_zone", "key_name": "key_name",
    "user_id": "user_id", "vm_state": "vm_state", "task_state": "task_state",
    "power_state": "power_state", "host": "host", "node": "node", "uuid": "id",
    "hostname": "hostname", "config_drive": "config_drive",
}


def matcher(filters: dict[str, str], strict_status: bool) -> Predicate | None:
    """One predicate for every filter; ``None`` when nothing can match."""
    checks: list[Predicate] = []
    for key, version in (("ip", 4), ("ip6", 6)):
        if key in filters:
            checks.append(_address_predicate(_regex(filters[key]), version))
    name = filters.get("name", filters.get("display_name"))
    if name:
        pattern = _regex(name)
        checks.append(lambda s: bool(pattern.search(s.name)))
    if "status" in filters:
        status = _status_predicate(filters["status"], strict_status)
        if status is None:
            return None
        checks.append(status)
    if "locked" in filters:
        locked = _bool(filters["locked"])
        checks.append(lambda s: bool(s.locked) == locked)
    for key, attr in _EQUAL.items():
        if key in filters:
            checks.append(_equal(attr, filters[key]))
    checks += _time_predicates(filters) + _tag_predicates(filters)
    return lambda s: all(check(s) for check in checks)


def _equal(attr: str, value: str) -> Predicate:
    return lambda s: str(getattr(s, attr) or "") == value


def _address_predicate(pattern: re.Pattern[str], version: int) -> Predicate:
    return lambda s: any(pattern.search(a["addr"]) for net in s.addresses.values()
                         for a in net if a["version"] == version)
