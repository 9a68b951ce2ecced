"""The public surface: exactly what __all__ names, shown under the package's name."""

from __future__ import annotations

from types import ModuleType

import offload


def test_all_lists_exactly_the_public_names() -> None:
    # Not counted: private names, submodules (offload.pytest_plugin once pytest loads it),
    # and the "@py_builtins" that pytest's assertion rewriting adds to a plugin's package.
    public = {
        name
        for name in dir(offload)
        if not name.startswith("_")
        and name.isidentifier()
        and not isinstance(getattr(offload, name), ModuleType)
    }
    assert public == set(offload.__all__)


def test_public_callables_live_under_the_package_name() -> None:
    for name in offload.__all__:
        obj = getattr(offload, name)
        if callable(obj):
            assert obj.__module__ == "offload", name


def test_exception_hierarchy() -> None:
    assert issubclass(offload.PoolClosedError, offload.OffloadError)
    assert issubclass(offload.PoolClosedError, RuntimeError)
    assert issubclass(offload.ThreadStartError, offload.OffloadError)
    assert issubclass(offload.ThreadStartError, RuntimeError)
    assert issubclass(offload.WorkerLostError, offload.OffloadError)
    assert issubclass(offload.WorkerLostError, RuntimeError)


def test_every_module_declares_what_it_exports() -> None:
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(offload.__path__, "offload."):
        if info.ispkg or info.name == "offload.__main__":
            continue  # a folder's __init__ says what the folder is, and exports nothing
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"
