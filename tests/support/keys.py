"""Key material the tests make themselves (never by the server under test)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def md5_fingerprint(public_key: str) -> str:
    """An OpenSSH public key's fingerprint as Nova shows it: MD5 of the blob, hex pairs."""
    digest = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def ssh_public_key(comment: str = "me@host") -> tuple[str, str]:
    """A new OpenSSH RSA public key (with ``comment``) and its fingerprint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return f"{public} {comment}", md5_fingerprint(public)
