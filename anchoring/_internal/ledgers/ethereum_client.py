"""Anchoring checkpoints on an EVM chain through web3.py (producer side).

One transaction per anchoring, whatever the number of records: a zero-value
transfer (to the sender itself unless ``to`` is set) whose calldata is the
76-byte payload of docs/formats.md §10; no contract is needed.

Faults: a node that is down or times out is retried with backoff, then the
anchoring stays pending; a transaction that a reorganization dropped is found
on the next follow-up and sent again; nonce and gas errors become one-line
refusals; a node on another chain ID is refused before anything is signed.
The private key is read only when a transaction is signed, and never appears
in a message.
"""

from __future__ import annotations

__all__ = ["EthereumLedger"]

import time
from collections.abc import Callable
from typing import Any

from anchoring._internal.ledgers.submission import LedgerRefused, LedgerUnavailable, Submission
from anchoring.checkpoint import Checkpoint
from anchoring.ledgers.ethereum import ETHEREUM_RECEIPT_TYPE, anchor_payload
from anchoring.note import parse_note

_BACKOFF = (0.2, 0.5, 1.0)
#: More than an anchoring transaction can cost (21,000 + 76 bytes of calldata).
_GAS_CEILING = 30_000


def _one_line(exc: BaseException) -> str:
    first = exc.args[0] if exc.args else None
    if isinstance(first, dict) and isinstance(first.get("message"), str):
        return str(first["message"]).splitlines()[0][:300]
    return (str(exc) or type(exc).__name__).splitlines()[0][:300]


def _refusal(name: str, exc: BaseException) -> LedgerRefused:
    text = _one_line(exc)
    low = text.lower()
    if "nonce" in low:
        hint = "the nonce was refused (is another process sending with this key?)"
    elif "insufficient funds" in low:
        hint = "the sender lacks the funds to pay for gas"
    elif "gas" in low or "fee" in low or "underpriced" in low:
        hint = "the gas or fee was refused"
    else:
        hint = "the node refused the transaction"
    return LedgerRefused(f"ledger {name}: {hint}: {text}")


class EthereumLedger:
    """An EVM chain reached over JSON-RPC."""

    kind = "ethereum"

    def __init__(
        self, name: str, rpc: str, chain_id: int, read_key: Callable[[], str], *,
        confirmations: int = 1, to: str | None = None, timeout: float = 10.0,
        receipt_wait: float = 3.0,
    ) -> None:
        self.name = name
        self.rpc = rpc
        self.chain_id = chain_id
        self._read_key = read_key
        self.confirmations = confirmations
        self.to = to
        self.timeout = timeout
        self.receipt_wait = receipt_wait

    def _web3(self) -> Any:
        from web3 import Web3

        return Web3(Web3.HTTPProvider(self.rpc, request_kwargs={"timeout": self.timeout}))

    def _retrying(self, what: str, call: Callable[[], Any]) -> Any:
        """Run ``call``, retrying connection faults with backoff; then give up as pending."""
        import requests
        from web3.exceptions import ProviderConnectionError, RequestTimedOut

        transient = (requests.ConnectionError, requests.Timeout, ProviderConnectionError,
                     RequestTimedOut, ConnectionError, TimeoutError)
        for delay in (*_BACKOFF, None):
            try:
                return call()
            except transient as exc:
                if delay is None:
                    raise LedgerUnavailable(
                        f"ledger {self.name}: node {self.rpc} unreachable while {what}: "
                        f"{type(exc).__name__}"
                    ) from None
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _checked_chain(self, w3: Any) -> None:
        actual = int(self._retrying("asking its chain ID", lambda: w3.eth.chain_id))
        if actual != self.chain_id:
            raise LedgerRefused(
                f"ledger {self.name}: the node at {self.rpc} is on chain {actual}, not the "
                f"configured {self.chain_id}; refusing to anchor"
            )

    def submit(self, note: str) -> Submission:
        """Send the anchoring transaction, then report how far it got."""
        from eth_account import Account
        from web3.exceptions import Web3RPCError

        checkpoint = Checkpoint.from_body(parse_note(note).text)
        payload = anchor_payload(checkpoint)
        w3 = self._web3()
        self._checked_chain(w3)
        try:
            account = Account.from_key(self._read_key())
        except (ValueError, TypeError):
            raise LedgerRefused(f"ledger {self.name}: its key is not a valid private key") from None

        def send() -> str:
            gas_price = w3.eth.gas_price
            if w3.eth.get_balance(account.address) < gas_price * _GAS_CEILING:
                raise LedgerRefused(f"ledger {self.name}: the sender {account.address} lacks "
                                    "the funds to pay for gas")
            tx: dict[str, Any] = {
                "from": account.address,
                "to": self.to or account.address,
                "value": 0,
                "data": payload,
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": self.chain_id,
                "gasPrice": gas_price,
            }
            tx["gas"] = w3.eth.estimate_gas(tx)
            signed = account.sign_transaction(tx)
            return "0x" + bytes(w3.eth.send_raw_transaction(signed.raw_transaction)).hex()

        try:
            tx_hash = self._retrying("sending the transaction", send)
        except Web3RPCError as exc:
            raise _refusal(self.name, exc) from None
        data = {"tx_hash": tx_hash, "sender": account.address, "payload": "0x" + payload.hex()}
        return self._status(w3, data, wait=self.receipt_wait)

    def follow_up(self, note: str, data: dict[str, Any]) -> Submission:
        """Check a pending transaction; send it again when the chain dropped it."""
        from web3.exceptions import TransactionNotFound

        w3 = self._web3()
        self._checked_chain(w3)
        tx_hash = data["tx_hash"]

        def lookup() -> Any:
            try:
                return w3.eth.get_transaction(tx_hash)
            except TransactionNotFound:
                return None

        if self._retrying("looking up the transaction", lookup) is None:
            resent = self.submit(note)
            reason = f"resubmitted: the chain dropped transaction {tx_hash} (reorganization)"
            return Submission(resent.state, receipt=resent.receipt,
                              data={**resent.data, "dropped": [*data.get("dropped", []), tx_hash]},
                              reason=reason if resent.state == "pending" else None)
        return self._status(w3, data, wait=0.0)

    def _status(self, w3: Any, data: dict[str, Any], wait: float) -> Submission:
        from web3.exceptions import TimeExhausted, TransactionNotFound

        tx_hash = data["tx_hash"]

        def receipt() -> Any:
            try:
                if wait > 0:
                    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=wait,
                                                               poll_latency=0.1)
                return w3.eth.get_transaction_receipt(tx_hash)
            except (TimeExhausted, TransactionNotFound):
                return None

        mined = self._retrying("waiting for the receipt", receipt)
        if mined is None:
            return Submission("pending", data=data, reason="waiting to be mined")
        if int(mined["status"]) != 1:
            raise LedgerRefused(f"ledger {self.name}: transaction {tx_hash} failed on chain")
        number = int(mined["blockNumber"])
        head = int(self._retrying("reading the chain head", lambda: w3.eth.block_number))
        seen = head - number + 1
        block_hash = "0x" + bytes(mined["blockHash"]).hex()
        if seen < self.confirmations:
            return Submission("pending", data=data,
                              reason=f"{seen} of {self.confirmations} confirmations")
        receipt_json = {
            "type": ETHEREUM_RECEIPT_TYPE,
            "chain_id": self.chain_id,
            "tx_hash": tx_hash,
            "block_number": number,
            "block_hash": block_hash,
            "sender": data["sender"],
            "payload": data["payload"],
            "confirmations": self.confirmations,
            "gas_used": int(mined["gasUsed"]),
        }
        return Submission("confirmed", receipt=receipt_json, data=data)
