"""RFC 3161 time-stamp receipts (docs/formats.md §8, §13): offline verification.

A receipt ``trialproof/rfc3161/v1`` keeps the TSA's ``TimeStampResp`` (RFC 3161
§2.4.2) as base64 DER in ``response``, the TSA's certificates as PEM in
``chain``, and the token's ``genTime`` in ``gen_time`` (RFC 3339). Its message
imprint is SHA-256 of the checkpoint note's body (the text without its
signature lines).

Checking the CMS signature and the certificate path uses the ``rfc3161-client``
package (the ``tsa`` extra), imported only when a TSA receipt is checked; the
rest of the verifier needs the standard library and ``cryptography`` only.
"""

from __future__ import annotations

__all__ = [
    "RFC3161_RECEIPT_TYPE",
    "check_rfc3161_receipt",
    "check_rfc3161_receipt_format",
    "checkpoint_imprint",
    "load_ca_file",
    "proven_time",
    "rfc3339",
    "verify_tsa_receipts",
]

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from anchoring.checkpoint import Checkpoint
from anchoring.errors import (
    MalformedError,
    ProofVerificationError,
    ReceiptFormatError,
    VerificationError,
    VerificationStep,
)
from anchoring.note import parse_note

RFC3161_RECEIPT_TYPE = "trialproof/rfc3161/v1"
_SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")


def checkpoint_imprint(note: str) -> bytes:
    """SHA-256 of the checkpoint note's body (docs/formats.md §8, last bullet)."""
    return hashlib.sha256(parse_note(note).text.encode()).digest()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_ca_file(path: str | Path) -> list[x509.Certificate]:
    """The CA certificates of a PEM file."""
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:  # the verifier's input, not the proof, is bad
        raise MalformedError(f"CA file {path}: {exc}") from None


def _chain(receipt: Mapping[str, Any]) -> list[x509.Certificate]:
    chain = receipt.get("chain")
    if not isinstance(chain, str) or not chain.strip():
        raise ReceiptFormatError("rfc3161 receipt has no chain")
    try:
        return x509.load_pem_x509_certificates(chain.encode())
    except ValueError:
        raise ReceiptFormatError("rfc3161 receipt's chain is not PEM certificates") from None


def _response_der(receipt: Mapping[str, Any]) -> bytes:
    response = receipt.get("response")
    if not isinstance(response, str):
        raise ReceiptFormatError("rfc3161 receipt has no response")
    try:
        return base64.b64decode(response, validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptFormatError("rfc3161 receipt's response is not base64") from None


def check_rfc3161_receipt_format(receipt: Mapping[str, Any]) -> None:
    """Raise :class:`ReceiptFormatError` unless the receipt's fields have their form
    (docs/formats.md §13): the response in base64, the chain as PEM certificates, the
    token's time as an RFC 3339 string."""
    _response_der(receipt)
    _chain(receipt)
    if not isinstance(receipt.get("gen_time"), str):
        raise ReceiptFormatError("rfc3161 receipt has no gen_time")


def check_rfc3161_receipt(
    receipt: Mapping[str, Any],
    checkpoint: Checkpoint,
    note: str,
    trusted_roots: Sequence[x509.Certificate] | None = None,
) -> None:
    """Raise unless the time-stamp token covers ``note`` and its signature verifies.

    With ``trusted_roots`` (a configured CA file) the TSA's certificate must chain
    to one of them, valid at the token's genTime, with the critical
    id-kp-timeStamping usage (RFC 3161 §2.3). Without, the signature is checked
    under the self-signed certificates the receipt carries, if any, which shows
    the token is intact but not whom to trust; the imprint is always checked.
    """
    del checkpoint  # the imprint commits to the whole body, origin, size and root included
    try:
        from rfc3161_client import VerificationError as TokenError
        from rfc3161_client import VerifierBuilder, decode_timestamp_response
    except ImportError:
        raise VerificationError(
            "checking an RFC 3161 receipt needs the rfc3161-client package"
        ) from None
    der = _response_der(receipt)
    chain = _chain(receipt)
    try:
        response = decode_timestamp_response(der)
    except ValueError as exc:
        raise ReceiptFormatError(f"rfc3161 response is malformed: {exc}") from None
    imprint = response.tst_info.message_imprint
    if imprint.hash_algorithm != _SHA256_OID:
        raise VerificationError("rfc3161 token does not use SHA-256")
    if not hmac.compare_digest(imprint.message, checkpoint_imprint(note)):
        raise VerificationError("rfc3161 token's message imprint is not this checkpoint's")
    if receipt.get("gen_time") != rfc3339(response.tst_info.gen_time):
        raise VerificationError("rfc3161 receipt's gen_time is not the token's genTime")
    roots = list(trusted_roots) if trusted_roots is not None else [
        c for c in chain if c.issuer == c.subject
    ]
    if not roots:
        return  # no root to check the signature under: trust in a TSA comes from its CA file
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify(response, imprint.message)
    except (TokenError, ValueError) as exc:
        raise VerificationError(f"rfc3161 token does not verify: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    """The OpenSSL verify reason when there is one, not the whole error stack."""
    found = re.search(r'Verify error: ([^"]+)"', str(exc))
    return found.group(1) if found else str(exc).splitlines()[0][:200]


def verify_tsa_receipts(anchors: Iterable[Mapping[str, Any]], note: str, ca_file: Path) -> None:
    """Check every rfc3161 receipt of a proof against a trusted CA file, at the step
    ``anchor``; a proof without one fails, since a trusted time was asked for."""
    roots = load_ca_file(ca_file)
    checkpoint = Checkpoint.from_body(parse_note(note).text)
    checked = 0
    for i, receipt in enumerate(anchors):
        if receipt.get("type") != RFC3161_RECEIPT_TYPE:
            continue
        try:
            check_rfc3161_receipt(receipt, checkpoint, note, roots)
        except VerificationError as exc:
            raise ProofVerificationError(VerificationStep.ANCHOR, f"anchors[{i}]: {exc}") from None
        checked += 1
    if not checked:
        raise ProofVerificationError(VerificationStep.ANCHOR,
                                      "the proof carries no RFC 3161 time-stamp receipt")


def proven_time(receipt: Mapping[str, Any]) -> str | None:
    """The time an rfc3161 receipt proves (its ``gen_time``), once it has been checked."""
    value = receipt.get("gen_time")
    return value if receipt.get("type") == RFC3161_RECEIPT_TYPE and isinstance(value, str) else None
