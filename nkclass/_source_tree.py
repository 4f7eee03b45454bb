"""Importing nkclass from its own, unbuilt source tree.

Python puts the current folder first on ``sys.path``, so ``import nkclass``
run from a checkout finds the ``nkclass/`` source folder before the installed
package, and the source folder has no native modules unless they were built
in place. The package then loads the installed distribution in its stead, or
fails with a message saying what to run. Standard library only: this runs
before anything that needs the native modules.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import EXTENSION_SUFFIXES, PathFinder
from pathlib import Path
from types import ModuleType

NATIVE_MODULES = ("_core", "_columns", "report/_kernel")


def is_built(package_dir: Path) -> bool:
    """Whether every native module sits in ``package_dir``."""
    return all(
        any((package_dir / f"{module}{suffix}").is_file() for suffix in EXTENSION_SUFFIXES)
        for module in NATIVE_MODULES
    )


def _other_copies(name: str, here: Path):
    """Specs of ``name`` found elsewhere than ``here``, in import order."""
    for finder in sys.meta_path:
        if finder is PathFinder:
            elsewhere = [p for p in sys.path if _resolved(p) / name != here]
            spec = PathFinder.find_spec(name, elsewhere)
        else:
            find = getattr(finder, "find_spec", None)
            try:
                spec = find(name, None) if find is not None else None
            except (ImportError, AttributeError, TypeError):
                spec = None
        if spec is not None and spec.origin and Path(spec.origin).resolve().parent != here:
            yield spec


def _resolved(entry: str) -> Path:
    try:
        return Path(entry or ".").resolve()
    except (OSError, RuntimeError):
        return Path(entry)


def load_installed(name: str, init_file: str) -> ModuleType:
    """The installed ``name`` package, imported in place of the unbuilt
    source tree that holds ``init_file``; ImportError when there is none."""
    here = Path(init_file).resolve().parent
    for spec in _other_copies(name, here):
        if spec.loader is None or not is_built(Path(spec.origin).resolve().parent):
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its own submodules now import from its folder
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    raise ImportError(
        f"nkclass is being imported from its source tree ({here}), whose native modules "
        "(nkclass._core, nkclass._columns, nkclass.report._kernel) are not built, and no "
        "built nkclass is installed elsewhere. Build them in place with "
        "`pip install -e .` (or `python setup.py build_ext --inplace`), or install nkclass "
        "with `pip install .` and run Python from another folder.",
        name=name,
    )
