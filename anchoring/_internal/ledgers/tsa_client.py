"""Asking an RFC 3161 time-stamping authority to time-stamp a checkpoint (producer side).

The request (RFC 3161 §2.4.1, over HTTP as in §3.4) carries SHA-256 of the
checkpoint body, a nonce, and asks for the TSA's certificate. The response is
checked before it becomes a receipt: status granted, the nonce echoed, the
imprint ours and, when a CA file is configured, the chain leading to it.
"""

from __future__ import annotations

__all__ = ["TsaLedger"]

import base64
import urllib.error
import urllib.request

from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import load_der_x509_certificate

from anchoring._internal.ledgers.submission import LedgerRefused, LedgerUnavailable, Submission
from anchoring.checkpoint import Checkpoint
from anchoring.errors import VerificationError
from anchoring.ledgers.tsa import (
    RFC3161_RECEIPT_TYPE,
    check_rfc3161_receipt,
    load_ca_file,
    rfc3339,
)
from anchoring.note import parse_note


class TsaLedger:
    """A time-stamping authority reached over HTTP."""

    kind = "tsa"

    def __init__(self, name: str, url: str, ca_file: str | None, timeout: float = 10.0) -> None:
        self.name = name
        self.url = url
        self.ca_file = ca_file
        self.timeout = timeout

    def submit(self, note: str) -> Submission:
        from rfc3161_client import HashAlgorithm, TimestampRequestBuilder, decode_timestamp_response

        body = parse_note(note).text.encode()
        request = (
            TimestampRequestBuilder().data(body).hash_algorithm(HashAlgorithm.SHA256)
            .cert_request(cert_request=True).nonce(nonce=True).build()
        )
        http = urllib.request.Request(
            self.url, data=request.as_bytes(), method="POST",
            headers={"Content-Type": "application/timestamp-query"},
        )
        try:
            with urllib.request.urlopen(http, timeout=self.timeout) as answer:
                der = answer.read()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise LedgerUnavailable(f"TSA {self.name} answered HTTP {exc.code}") from None
            raise LedgerRefused(f"TSA {self.name} refused the request (HTTP {exc.code})") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LedgerUnavailable(f"TSA {self.name} at {self.url}: {reason}") from None
        try:
            response = decode_timestamp_response(der)
        except ValueError:
            raise LedgerRefused(f"TSA {self.name} sent a malformed response") from None
        if response.status not in (0, 1):  # granted, grantedWithMods (RFC 3161 §2.4.2)
            raise LedgerRefused(f"TSA {self.name} did not grant the time-stamp "
                                f"(status {response.status})")
        if response.tst_info.nonce != request.nonce:
            raise LedgerRefused(f"TSA {self.name} answered another request (nonce mismatch)")
        roots = load_ca_file(self.ca_file) if self.ca_file else None
        # The certificates the TSA sent, then the CA it chains to (when configured).
        certs = [load_der_x509_certificate(c) for c in sorted(response.signed_data.certificates)]
        chain = "".join(c.public_bytes(Encoding.PEM).decode() for c in [*certs, *(roots or [])])
        receipt = {
            "type": RFC3161_RECEIPT_TYPE,
            "response": base64.b64encode(der).decode(),
            "chain": chain,
            "gen_time": rfc3339(response.tst_info.gen_time),
        }
        try:
            check_rfc3161_receipt(receipt, Checkpoint.from_body(body.decode()), note, roots)
        except VerificationError as exc:
            raise LedgerRefused(f"TSA {self.name}: {exc}") from None
        return Submission("confirmed", receipt=receipt)
