"""Each module's ``__all__`` is what it really exposes: every listed name exists, nothing is
listed twice, a public function or class a module defines is listed, and a package lists
every public name it binds."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

PACKAGES = ["anchoring", "pipeline"]


def _module_names() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        path = importlib.import_module(package).__path__
        names += [info.name for info in pkgutil.walk_packages(path, f"{package}.")
                  if not info.name.endswith(".__main__")]
    return sorted(names)


MODULES = _module_names()


def _exported(module: types.ModuleType) -> list[str]:
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list), f"{module.__name__} has no __all__ list"
    return exported


def test_every_package_is_walked() -> None:
    assert {"anchoring.merkle", "anchoring.ledgers", "anchoring.verify", "anchoring._internal.tree",
            "anchoring._internal.ledgers.local", "pipeline.cli", "pipeline.hashing"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_once(name: str) -> None:
    module = importlib.import_module(name)
    exported = _exported(module)
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists names it does not have: {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_public_definitions_are_exported(name: str) -> None:
    module = importlib.import_module(name)
    defined = {n for n, value in vars(module).items()
               if not n.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
               and value.__module__ == name}
    assert defined <= set(_exported(module)), \
        f"{name} defines public names missing from __all__: {sorted(defined - set(module.__all__))}"


@pytest.mark.parametrize("name", [n for n in MODULES
                                  if hasattr(importlib.import_module(n), "__path__")])
def test_packages_export_every_public_name(name: str) -> None:
    """A package's namespace is its API: every public name of this project it binds
    (submodules aside) is in ``__all__``."""
    package = importlib.import_module(name)
    bound = {n for n, value in vars(package).items()
             if not n.startswith("_") and not isinstance(value, types.ModuleType)
             and str(getattr(value, "__module__", name)).split(".")[0] in PACKAGES}
    assert bound <= set(_exported(package)), \
        f"{name} binds names missing from __all__: {sorted(bound - set(package.__all__))}"
