"""A small, deliberately naive reference of RFC 9162 §2.1, used only by the tests.

It follows the recursive definitions of the RFC word for word, on plain lists
of leaf inputs, and imports nothing from :mod:`anchoring`, so that it can serve
as an independent oracle for the production tree, proofs and verifiers.
The hash functions are parameters so that a test can also build the same
shape without domain separation (to compare with peers that have none).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

LeafHash = Callable[[bytes], bytes]
NodeHash = Callable[[bytes, bytes], bytes]


def rfc_leaf(data: bytes) -> bytes:
    """SHA-256(0x00 || d) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + data).digest()


def rfc_node(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two k with k < n <= 2k (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes], leaf: LeafHash = rfc_leaf, node: NodeHash = rfc_node) -> bytes:
    """MTH(D[n]) (RFC 9162 §2.1.1)."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf(d[0])
    k = split(n)
    return node(mth(d[:k], leaf, node), mth(d[k:], leaf, node))


def path(
    m: int, d: Sequence[bytes], leaf: LeafHash = rfc_leaf, node: NodeHash = rfc_node
) -> list[bytes]:
    """PATH(m, D[n]): the inclusion proof of leaf m, leaf sibling first (RFC 9162 §2.1.3.1)."""
    n = len(d)
    if n == 1:
        assert m == 0
        return []
    k = split(n)
    if m < k:
        return [*path(m, d[:k], leaf, node), mth(d[k:], leaf, node)]
    return [*path(m - k, d[k:], leaf, node), mth(d[:k], leaf, node)]


def proof(
    m: int, d: Sequence[bytes], leaf: LeafHash = rfc_leaf, node: NodeHash = rfc_node
) -> list[bytes]:
    """PROOF(m, D[n]): the consistency proof from size m (RFC 9162 §2.1.4.1). 0 < m <= n."""
    assert 0 < m <= len(d)
    return subproof(m, d, True, leaf, node)


def subproof(
    m: int, d: Sequence[bytes], b: bool, leaf: LeafHash = rfc_leaf, node: NodeHash = rfc_node
) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (RFC 9162 §2.1.4.1)."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d, leaf, node)]
    k = split(n)
    if m <= k:
        return [*subproof(m, d[:k], b, leaf, node), mth(d[k:], leaf, node)]
    return [*subproof(m - k, d[k:], False, leaf, node), mth(d[:k], leaf, node)]
