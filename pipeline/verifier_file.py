"""``verifier.py``: the proof verifier (docs/formats.md §8) as one file to download.

The file is generated from the real :mod:`anchoring.verify` and the modules it
imports, never maintained by hand: their sources are embedded, and a small
import hook loads them under their own names. It needs only the standard
library and ``cryptography``. Usage::

    python verifier.py PROOF.json --vkey VKEY [--vkey VKEY ...]

It runs :func:`anchoring.verify.main`, so it takes the options of ``trialproof verify``
and exits as it does: 0 verified, 1 a step failed, 2 malformed input.
"""

from __future__ import annotations

__all__ = ["verifier_closure", "verifier_source"]

import ast
import importlib.util
from functools import cache
from pathlib import Path

ROOT_MODULE = "anchoring.verify"
_PACKAGE = "anchoring"

_HEADER = '''#!/usr/bin/env python3
"""trialproof record-proof verifier (docs/formats.md §8), in one file.

Needs Python 3.11+ and the `cryptography` package. Usage:

    python verifier.py PROOF.json --vkey VKEY [--vkey VKEY ...]

Exit status: 0 verified, 1 a step failed, 2 malformed input.
Generated from the trialproof modules: {modules}.
"""
import importlib.abc
import importlib.util
import sys

_SOURCES = {sources}
_PACKAGES = {packages}


class _Embedded(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name in _SOURCES or name in _PACKAGES:
            return importlib.util.spec_from_loader(name, self, is_package=name in _PACKAGES)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        if module.__name__ in _PACKAGES:
            module.__path__ = []
        source = _SOURCES.get(module.__name__, "")
        exec(compile(source, "verifier.py:" + module.__name__, "exec"), module.__dict__)


sys.meta_path.insert(0, _Embedded())
'''

_MAIN = '''

if __name__ == "__main__":
    from anchoring.verify import main

    sys.exit(main())
'''


def _module_file(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot find module {name}")
    return Path(spec.origin)


def _imports(name: str, tree: ast.Module, is_package: bool) -> set[str]:
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == _PACKAGE or m.startswith(_PACKAGE + ".")}


def verifier_closure() -> dict[str, str]:
    """Source of every ``anchoring`` module that :mod:`anchoring.verify` needs, by name.

    A package is included only when something imports from the package itself;
    otherwise it is an empty namespace, so that its ``__init__`` does not pull
    in the producer side.
    """
    sources: dict[str, str] = {}
    pending = [ROOT_MODULE]
    while pending:
        name = pending.pop()
        if name in sources:
            continue
        try:
            path = _module_file(name)
        except (ImportError, ModuleNotFoundError):
            continue  # "from pkg import name" where name is not a module
        text = path.read_text(encoding="utf-8")
        sources[name] = text
        pending.extend(_imports(name, ast.parse(text), path.name == "__init__.py"))
    return dict(sorted(sources.items()))


@cache
def verifier_source() -> str:
    """The whole single-file verifier as Python source text."""
    sources = verifier_closure()
    packages = sorted(
        {name.rsplit(".", i)[0] for name in sources for i in range(1, name.count(".") + 1)}
        | {n for n in sources if _module_file(n).name == "__init__.py"}
    )
    for package in packages:
        sources.setdefault(package, "")
    return (
        _HEADER.format(
            modules=", ".join(sorted(sources)), sources=repr(sources), packages=repr(packages)
        )
        + _MAIN
    )
