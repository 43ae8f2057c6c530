"""Every public module's ``__all__`` matches its public namespace (httpx style)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import execctx_nb


def _public_modules() -> list[types.ModuleType]:
    found = [execctx_nb]
    for info in pkgutil.walk_packages(execctx_nb.__path__, "execctx_nb."):
        if any(part.startswith("_") for part in info.name.split(".")) or info.name.endswith(
            "__main__"
        ):
            continue
        if info.name == "execctx_nb.lab":  # a script entry point (starts servers on import of main)
            continue
        found.append(importlib.import_module(info.name))
    return found


def test_top_level_all_matches_its_namespace() -> None:
    # Submodules become attributes when imported anywhere, so only declared modules count.
    public = {
        name
        for name, value in vars(execctx_nb).items()
        if not name.startswith("_")
        and name != "annotations"
        and not isinstance(value, types.ModuleType)
    }
    modules = {n for n, v in vars(execctx_nb).items() if isinstance(v, types.ModuleType)}
    declared = set(execctx_nb.__all__) - {"__version__"}
    assert declared - modules == public


def test_every_module_declares_what_it_defines() -> None:
    for module in _public_modules():
        assert set(module.__all__) <= set(vars(module)), f"{module.__name__}: __all__ names missing"
        defined_here = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
        }
        assert defined_here <= set(module.__all__), (
            f"{module.__name__}: public but not in __all__: {defined_here - set(module.__all__)}"
        )


def test_top_level_names_fixed_by_the_foundation() -> None:
    for name in [
        "StepEnvelope",
        "StepMetadata",
        "ExecutionScope",
        "idempotency_key",
        "ExecctxError",
        "InvalidTenantError",
        "InvalidKeyError",
        "EnvelopeDecodeError",
        "StoreUnavailableError",
        "keys",
    ]:
        assert name in execctx_nb.__all__


def test_import_is_cheap() -> None:
    code = (
        "import sys, execctx_nb; "
        "heavy = [m for m in ('IPython', 'ipywidgets', 'anywidget', 'polars', 'pyarrow') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
