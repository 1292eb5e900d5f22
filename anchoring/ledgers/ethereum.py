"""Ethereum anchor receipts (docs/formats.md §10, §13): offline and online checks.

An anchoring is one transaction whose calldata is exactly 76 bytes::

    b"TPA1" || SHA-256(origin, UTF-8) || uint64be(size) || root

Offline, a receipt (``trialproof/ethereum/v1``: chain_id, tx_hash, block_number,
block_hash, sender, payload) is checked to commit to the checkpoint. Online, the
chain itself is asked over raw JSON-RPC (Ethereum execution API:
``eth_chainId``, ``eth_getTransactionByHash``, ``eth_getTransactionReceipt``,
``eth_getBlockByNumber``, ``eth_blockNumber``) whether the transaction exists with
that calldata in a canonical block with enough confirmations.

Standard library only (plus the package's checkpoint parsing), like the verifier.
"""

from __future__ import annotations

__all__ = [
    "ETHEREUM_RECEIPT_TYPE",
    "PAYLOAD_MAGIC",
    "JsonRpc",
    "anchor_payload",
    "check_ethereum_receipt",
    "check_ethereum_receipt_format",
    "check_receipt_online",
    "verify_receipts_online",
]

import hashlib
import hmac
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from anchoring.checkpoint import Checkpoint
from anchoring.errors import (
    ProofVerificationError,
    ReceiptFormatError,
    VerificationError,
    VerificationStep,
)

ETHEREUM_RECEIPT_TYPE = "trialproof/ethereum/v1"
PAYLOAD_MAGIC = b"TPA1"
PAYLOAD_BYTES = 4 + 32 + 8 + 32
_HASH = re.compile(r"0x[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_PAYLOAD = re.compile(r"0x[0-9a-f]{152}")


def anchor_payload(checkpoint: Checkpoint) -> bytes:
    """The 76-byte calldata committing to ``checkpoint`` (docs/formats.md §10)."""
    return (
        PAYLOAD_MAGIC
        + hashlib.sha256(checkpoint.origin.encode("utf-8")).digest()
        + checkpoint.size.to_bytes(8, "big")
        + checkpoint.root
    )


def _field(receipt: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = receipt.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ReceiptFormatError(f"ethereum receipt has no valid {name}")
    return value


def _count(receipt: Mapping[str, Any], name: str, minimum: int = 0) -> int:
    value = receipt.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ReceiptFormatError(f"ethereum receipt has no valid {name}")
    return value


def check_ethereum_receipt_format(receipt: Mapping[str, Any]) -> None:
    """Raise :class:`ReceiptFormatError` unless every field of the receipt has its form
    (docs/formats.md §13): a positive chain ID, a block number, 0x-prefixed lowercase
    hashes, a sender address and the 76-byte payload in hex."""
    _count(receipt, "chain_id", 1)
    _count(receipt, "block_number")
    _field(receipt, "tx_hash", _HASH)
    _field(receipt, "block_hash", _HASH)
    _field(receipt, "sender", _ADDRESS)
    _field(receipt, "payload", _PAYLOAD)


def check_ethereum_receipt(receipt: Mapping[str, Any], checkpoint: Checkpoint, note: str) -> None:
    """Raise unless the receipt's payload commits to ``checkpoint`` (offline).

    That the transaction is on the chain, canonical and confirmed needs the chain:
    :func:`check_receipt_online`.
    """
    del note  # the payload commits to origin, size and root, not to the note text
    check_ethereum_receipt_format(receipt)
    if not hmac.compare_digest(bytes.fromhex(receipt["payload"][2:]), anchor_payload(checkpoint)):
        raise VerificationError(
            f"ethereum receipt's payload does not commit to {checkpoint.origin} "
            f"size {checkpoint.size} with this root"
        )


class JsonRpc:
    """A minimal JSON-RPC 2.0 client over HTTP (urllib)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self._id = 0

    def call(self, method: str, *params: Any) -> Any:
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method,
                           "params": list(params)}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as exc:
            raise VerificationError(f"JSON-RPC {self.url}: {getattr(exc, 'reason', exc)}") from None
        if not isinstance(answer, dict):
            raise VerificationError(f"JSON-RPC {self.url}: malformed answer to {method}")
        if answer.get("error"):
            message = answer["error"].get("message") if isinstance(answer["error"], dict) else ""
            raise VerificationError(f"JSON-RPC {self.url}: {method} failed: {message}")
        return answer.get("result")


def _int(value: Any, what: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise VerificationError(f"the node returned no valid {what}")
    return int(value, 16)


def check_receipt_online(receipt: Mapping[str, Any], rpc: JsonRpc) -> int:
    """Raise unless the chain holds the receipt's transaction with its calldata, in the
    canonical block it names, with the confirmations the receipt asks for; returns the
    confirmations seen."""
    chain_id = _int(rpc.call("eth_chainId"), "chain ID")
    if chain_id != receipt["chain_id"]:
        raise VerificationError(f"the node is on chain {chain_id}, the receipt on "
                                f"{receipt['chain_id']}")
    tx = rpc.call("eth_getTransactionByHash", receipt["tx_hash"])
    if not isinstance(tx, dict):
        raise VerificationError(f"transaction {receipt['tx_hash']} is not on the chain")
    if str(tx.get("input", "")).lower() != receipt["payload"]:
        raise VerificationError("the transaction's calldata is not the receipt's payload")
    if str(tx.get("from", "")).lower() != str(receipt["sender"]).lower():
        raise VerificationError("the transaction was sent by another address")
    if tx.get("blockHash") != receipt["block_hash"]:
        raise VerificationError("the transaction is not in the block the receipt names")
    status = rpc.call("eth_getTransactionReceipt", receipt["tx_hash"])
    if not isinstance(status, dict) or _int(status.get("status"), "status") != 1:
        raise VerificationError("the transaction did not succeed")
    block = rpc.call("eth_getBlockByNumber", hex(receipt["block_number"]), False)
    if not isinstance(block, dict) or block.get("hash") != receipt["block_hash"]:
        raise VerificationError(f"block {receipt['block_number']} of the canonical chain is "
                                "not the receipt's block (reorganized?)")
    head = _int(rpc.call("eth_blockNumber"), "block number")
    seen = head - int(receipt["block_number"]) + 1
    # The receipt may ask for more confirmations, never for fewer than one: the verifier,
    # not the receipt, decides that a transaction must be mined into the chain it sees.
    wanted = max(receipt.get("confirmations", 1), 1) if isinstance(
        receipt.get("confirmations", 1), int) else None
    if wanted is None or seen < wanted:
        raise VerificationError(f"the transaction has {seen} confirmation(s); {wanted} needed")
    return seen


def verify_receipts_online(anchors: Iterable[Mapping[str, Any]], rpc_urls: Sequence[str]) -> None:
    """Check every ethereum receipt of a proof on its chain, at the step ``anchor``.

    Each receipt is checked against the ``rpc_urls`` endpoint serving its chain ID.
    A proof without any ethereum receipt fails: online checking was asked for.
    """
    by_chain: dict[int, JsonRpc] = {}
    for url in rpc_urls:
        rpc = JsonRpc(url)
        try:
            by_chain[_int(rpc.call("eth_chainId"), "chain ID")] = rpc
        except VerificationError as exc:
            raise ProofVerificationError(VerificationStep.ANCHOR, str(exc)) from None
    checked = 0
    for i, receipt in enumerate(anchors):
        if receipt.get("type") != ETHEREUM_RECEIPT_TYPE:
            continue
        chain_rpc = by_chain.get(receipt.get("chain_id", -1))
        if chain_rpc is None:
            raise ProofVerificationError(
                VerificationStep.ANCHOR,
                f"anchors[{i}]: no --rpc serves chain {receipt.get('chain_id')}")
        try:
            check_receipt_online(receipt, chain_rpc)
        except VerificationError as exc:
            raise ProofVerificationError(VerificationStep.ANCHOR,
                                          f"anchors[{i}] online: {exc}") from None
        checked += 1
    if not checked:
        raise ProofVerificationError(VerificationStep.ANCHOR,
                                      "the proof carries no ethereum receipt to check online")
