"""Keypair material as Nova makes and checks it: generated RSA keys (OpenSSH public key, PEM
private key), self-signed x509 certificates (the WinRM kind), and their fingerprints (MD5 of an
SSH key's blob, SHA-1 of a certificate), each in colon-separated hex."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from stackvol.services.common.errors import Invalid

SSH = "ssh"
X509 = "x509"
KEY_BITS = 2048
# The comment Nova puts on the public keys it generates.
GENERATED_COMMENT = "Generated-by-Nova"
# Microsoft's User Principal Name, the subjectAltName WinRM maps a certificate to a user by.
UPN_OID = ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
CERT_DAYS = 3650


@dataclass(frozen=True, slots=True)
class Material:
    """A generated key: what is stored (public key or certificate, fingerprint), and the private
    key that is only ever handed to the caller once."""

    public_key: str
    fingerprint: str
    private_key: str


def _colons(hex_digest: str) -> str:
    return ":".join(hex_digest[i:i + 2] for i in range(0, len(hex_digest), 2))


def invalid(reason: str) -> Invalid:
    return Invalid(f"Keypair data is invalid: {reason}")


def ssh_fingerprint(public_key: str) -> str:
    """MD5 of the key blob; ``Invalid`` unless ``public_key`` is an OpenSSH public key."""
    try:
        serialization.load_ssh_public_key(public_key.encode())
        blob = base64.b64decode(public_key.split()[1])
    except (ValueError, IndexError, TypeError, binascii.Error, UnsupportedAlgorithm):
        raise invalid("failed to generate fingerprint") from None
    return _colons(hashlib.md5(blob, usedforsecurity=False).hexdigest())


def x509_fingerprint(certificate: str) -> str:
    """SHA-1 of the certificate; ``Invalid`` unless ``certificate`` is one in PEM."""
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
    except (ValueError, TypeError) as exc:
        raise invalid(f"failed to generate X509 fingerprint. Error message: {exc}") from None
    return _colons(cert.fingerprint(hashes.SHA1()).hex())  # SHA-1: the fingerprint Nova shows


def fingerprint(key_type: str, public_key: str) -> str:
    return x509_fingerprint(public_key) if key_type == X509 else ssh_fingerprint(public_key)


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def generate_ssh() -> Material:
    """A new RSA key: ``ssh-rsa ... Generated-by-Nova`` and its private key in PEM."""
    key = _rsa_key()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    public = f"{public} {GENERATED_COMMENT}"
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    return Material(public, ssh_fingerprint(public), private)


def _utf8_string(text: str) -> bytes:
    """A DER UTF8String (the UPN's value)."""
    data = text.encode()
    if len(data) < 0x80:
        length = bytes([len(data)])
    else:
        size = (len(data).bit_length() + 7) // 8
        length = bytes([0x80 | size]) + len(data).to_bytes(size, "big")
    return b"\x0c" + length + data


def generate_x509(user_id: str) -> Material:
    """A self-signed client certificate for ``user_id`` (as Nova's WinRM certificates: CN the
    user, UPN ``user@localhost``, client authentication) and its private key in PEM."""
    key = _rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(
            [x509.OtherName(UPN_OID, _utf8_string(f"{user_id}@localhost"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    public = cert.public_bytes(serialization.Encoding.PEM).decode()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return Material(public, x509_fingerprint(public), private)


def generate(key_type: str, user_id: str) -> Material:
    return generate_x509(user_id) if key_type == X509 else generate_ssh()
