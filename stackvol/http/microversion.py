"""Microversions: parsing, negotiation against a face's range, and the headers that echo them."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from starlette.datastructures import Headers

from stackvol.http.faults import Fault

_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


# ``order=True``: comparisons of (major, minor) generated per operator; views compare the
# request's version several times per item, and total_ordering's derived ``>=`` cost twice.
@dataclass(frozen=True, slots=True, order=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        match = _VERSION_RE.match(text.strip())
        if not match:
            raise ValueError(text)
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@functools.cache
def v(text: str) -> APIVersion:
    """A version written in the code (``at_least(request, "3.48")``), parsed once."""
    return APIVersion.parse(text)


@dataclass(frozen=True, slots=True)
class VersionRange:
    """What one face speaks: ``service`` is the word in ``OpenStack-API-Version: <service> X``."""

    service: str
    minimum: APIVersion
    maximum: APIVersion
    legacy_header: str | None = None  # e.g. X-OpenStack-Nova-API-Version

    def requested(self, headers: Headers) -> str | None:
        for value in headers.getlist("openstack-api-version"):
            for item in value.split(","):
                parts = item.strip().split(None, 1)
                if len(parts) == 2 and parts[0].lower() == self.service:
                    return parts[1].strip()
        if self.legacy_header:
            return headers.get(self.legacy_header)
        return None

    def negotiate(self, headers: Headers) -> APIVersion:
        """The version a request asks for; no header means the minimum, as in Nova and Cinder."""
        text = self.requested(headers)
        if text is None:
            return self.minimum
        if text.strip().lower() == "latest":
            return self.maximum
        try:
            version = APIVersion.parse(text)
        except ValueError:
            raise Fault(400, f"API Version String {text} is of invalid format. Must be of "
                             f"format MajorNum.MinorNum.") from None
        if not self.minimum <= version <= self.maximum:
            raise Fault(406, f"Version {text} is not supported by the API. Minimum is "
                             f"{self.minimum} and maximum is {self.maximum}.")
        return version

    def response_headers(self, version: APIVersion) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"openstack-api-version", f"{self.service} {version}".encode()),
            (b"vary", b"OpenStack-API-Version"
             + (b", " + self.legacy_header.encode() if self.legacy_header else b"")),
        ]
        if self.legacy_header:
            headers.append((self.legacy_header.lower().encode(), str(version).encode()))
        return headers
