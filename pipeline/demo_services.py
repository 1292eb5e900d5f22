"""Throwaway ledger services on loopback, for the anchoring demo, benchmarks and tests.

- an EVM node: Foundry's ``anvil`` (installed from npm by ``make install``);
- witnesses: ``trialproof witness serve`` processes;
- a time-stamping authority: ``openssl ts -reply`` behind a small HTTP handler,
  with a CA made on the spot.

None of this is for production: the CA and keys are created in a scratch folder.
"""

from __future__ import annotations

__all__ = [
    "ANVIL",
    "ANVIL_KEY",
    "OpensslTsa",
    "anvil_process",
    "free_port",
    "make_tsa_ca",
    "stop",
    "wait_for_port",
    "witness_process",
]

import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ANVIL = Path(os.environ.get("TRIALPROOF_ANVIL") or Path(__file__).resolve().parents[1] / (
    "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"))
#: anvil's first default account: a well-known test key, funded on every anvil chain.
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"process exited with {proc.returncode}: {err.strip()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def witness_process(home: Path, log_vkeys: list[str], port: int) -> Iterator[str]:
    """``trialproof witness serve`` as its own process; yields its URL."""
    args = [sys.executable, "-m", "pipeline", "witness", "serve", "--home", str(home),
            "--port", str(port)]
    for vkey in log_vkeys:
        args += ["--log", vkey]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@contextmanager
def anvil_process(port: int, chain_id: int = 31337) -> Iterator[str]:
    """Foundry's anvil on loopback, mining each transaction at once; yields its RPC URL."""
    proc = subprocess.Popen([str(ANVIL), "--host", "127.0.0.1", "--port", str(port),
                             "--chain-id", str(chain_id), "--silent"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tsa_ca(folder: Path, *, expired: bool = False, label: str = "demo") -> Path:
    """A CA and a TSA certificate signed by it (critical id-kp-timeStamping, RFC 3161 §2.3).

    Writes ``ca.pem``, ``tsa.pem`` and ``tsa.key``; returns ``folder``. With ``expired``
    the TSA certificate's validity ended yesterday.
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name(f"{label} TSA root"))
        .issuer_name(_name(f"{label} TSA root")).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=10)).not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    valid_until = now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=30)
    tsa = (
        x509.CertificateBuilder().subject_name(_name(f"{label} TSA"))
        .issuer_name(ca.subject).public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=5)).not_valid_after(valid_until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "tsa.pem").write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    (folder / "tsa.key").write_bytes(tsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    os.chmod(folder / "tsa.key", 0o600)
    return folder


_OPENSSL_TSA_CONFIG = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
other_policies = 1.3.6.1.4.1.99999.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class OpensslTsa:
    """``openssl ts -reply`` behind an HTTP handler on loopback (RFC 3161 §3.4 transport)."""

    def __init__(self, ca_folder: Path, port: int = 0) -> None:
        self.folder = ca_folder
        (ca_folder / "serial").write_text("01\n")
        (ca_folder / "openssl-tsa.cnf").write_text(_OPENSSL_TSA_CONFIG.format(dir=ca_folder))
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OpensslTsa:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reply(self, query: bytes) -> bytes | None:
        with self._lock, tempfile.TemporaryDirectory() as scratch:
            tsq, tsr = Path(scratch) / "q.tsq", Path(scratch) / "r.tsr"
            tsq.write_bytes(query)
            done = subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(self.folder / "openssl-tsa.cnf"),
                 "-queryfile", str(tsq), "-out", str(tsr)],
                capture_output=True, check=False,
            )
            return tsr.read_bytes() if done.returncode == 0 and tsr.is_file() else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = tsa.reply(query)
                if answer is None:
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
