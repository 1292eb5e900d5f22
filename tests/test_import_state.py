"""Importing any module of trialproof changes no process-wide state: no fork or exit hooks,
no signal handlers, no Arrow memory pool, no environment variables. Such state is set by
an explicit call where it is needed (a log's first engine; ingest chooses the memory
pool)."""

from __future__ import annotations

import json
import subprocess
import sys

from trialproof_paths import REPO_ROOT

_PROBE = """
import atexit, importlib, json, os, pkgutil, signal, sys
calls = []
ours = tuple(os.path.join(root, package) + os.sep for root in sys.argv[1:]
             for package in ("anchoring", "pipeline"))
def recorder(name, original):
    def record(*args, **kwargs):
        # Only our own code counts: the standard library and others register hooks too.
        if sys._getframe(1).f_code.co_filename.startswith(ours):
            calls.append(name)
        return original(*args, **kwargs)
    return record
os.register_at_fork = recorder("os.register_at_fork", os.register_at_fork)
atexit.register = recorder("atexit.register", atexit.register)
signal.signal = recorder("signal.signal", signal.signal)
import pyarrow as pa
import polars  # sets an allocator variable in os.environ when imported: not ours
pa.set_memory_pool = recorder("pyarrow.set_memory_pool", pa.set_memory_pool)
pool_before = pa.default_memory_pool().backend_name
environ = dict(os.environ)
for package in ("anchoring", "pipeline"):
    importlib.import_module(package)
    for info in pkgutil.walk_packages(sys.modules[package].__path__, package + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
on_import = list(calls)
pool_after_import = pa.default_memory_pool().backend_name
changed = sorted(k for k in set(environ) | set(os.environ) if environ.get(k) != os.environ.get(k))
from anchoring._internal.log import TransparencyLog
TransparencyLog("sqlite://", "example.org/log")
TransparencyLog("sqlite://", "example.org/log")
after_logs = list(calls)
from pipeline.records import use_system_memory_pool
use_system_memory_pool()
print(json.dumps({"on_import": on_import, "environ": changed, "after_logs": after_logs,
                  "pools": [pool_before, pool_after_import,
                            pa.default_memory_pool().backend_name]}))
"""


def test_imports_change_no_process_state() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(REPO_ROOT)], capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["on_import"] == []
    assert result["environ"] == []
    # The log registers its fork hook with its first engine, once.
    assert result["after_logs"].count("os.register_at_fork") == 1
    # Arrow's memory pool is its own default (mimalloc or jemalloc) until ingest chooses
    # the system allocator with an explicit call.
    before, after_import, chosen = result["pools"]
    assert before != "system" and after_import == before
    assert chosen == "system"
