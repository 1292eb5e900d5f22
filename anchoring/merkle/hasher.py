"""The RFC 9162 §2.1.1 Merkle tree hash with SHA-256.

Leaves and interior nodes are domain-separated by a one-byte prefix
(0x00 and 0x01), so a leaf can never be mistaken for a node. The separation
cannot be switched off.
"""

from __future__ import annotations

import hashlib
import re
from typing import TypeGuard

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "check_hash",
    "is_hex_hash",
    "leaf_hash",
    "node_hash",
]

from anchoring.errors import InvalidHashError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

_HEX_HASH = re.compile(r"[0-9a-f]{64}")

#: MTH({}) = SHA-256() (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf_input: bytes) -> bytes:
    """MTH({d(0)}) = SHA-256(0x00 || d(0)) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(LEAF_PREFIX + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || MTH(left) || MTH(right)) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def check_hash(value: bytes, what: str = "hash") -> bytes:
    """Return ``value`` if it is a 32-byte hash, else raise :class:`InvalidHashError`."""
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise InvalidHashError(f"{what} must be {HASH_SIZE} bytes, got {size}")
    return bytes(value)


def is_hex_hash(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a 32-byte hash as JSON carries one: 64 lowercase hex digits
    (docs/formats.md, introduction)."""
    return isinstance(value, str) and _HEX_HASH.fullmatch(value) is not None
