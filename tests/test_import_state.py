"""Importing any module of trialproof changes no process-wide state: no fork or exit hooks,
no signal handlers, no Arrow memory pool, no environment variables. Such state is set by
an explicit call where it is needed (a log's first engine, ingest)."""

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
environ = dict(os.environ)
for package in ("anchoring", "pipeline"):
    importlib.import_module(package)
    for info in pkgutil.walk_packages(sys.modules[package].__path__, package + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
on_import = list(calls)
changed = sorted(k for k in set(environ) | set(os.environ) if environ.get(k) != os.environ.get(k))
from anchoring._internal.log import TransparencyLog
TransparencyLog("sqlite://", "example.org/log")
TransparencyLog("sqlite://", "example.org/log")
print(json.dumps({"on_import": on_import, "environ": changed, "after_logs": calls}))
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
