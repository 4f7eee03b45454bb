"""Rulesets: watched networks and every list nkclass labels with, as data.

:func:`load_rules` returns the built-in default ruleset, or the default with
user files layered over it (see :meth:`Ruleset.layered` for what a layer
replaces). The file format is described in ``nkclass/rules/README.md``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from nkclass.errors import RuleError
from nkclass.rules.model import (
    AsRule,
    DnsTunnelOptions,
    DomainRule,
    FlowShapeOptions,
    Origin,
    PeerNetwork,
    PortRule,
    Ruleset,
    ServiceInfo,
    WatchedNetwork,
)
from nkclass.rules.parse import parse_file, parse_text

__all__ = [
    "AsRule",
    "DnsTunnelOptions",
    "DomainRule",
    "FlowShapeOptions",
    "Origin",
    "PeerNetwork",
    "PortRule",
    "Ruleset",
    "ServiceInfo",
    "WatchedNetwork",
    "builtin_path",
    "load_rules",
]


#: The built-in ruleset's files, layered in this order: the watched paths,
#: ports and domain lists, then the organisations behind AS numbers and the
#: prefix lists their operators publish.
BUILTIN_FILES = ("default.toml", "organisations.toml")


def builtin_path() -> Path:
    """Path of the built-in default ruleset file."""
    return Path(str(resources.files("nkclass.rules").joinpath("builtin/default.toml")))


def builtin_paths() -> list[Path]:
    """Paths of every built-in ruleset file, in layering order."""
    root = resources.files("nkclass.rules").joinpath("builtin")
    return [Path(str(root.joinpath(name))) for name in BUILTIN_FILES]


def load_rules(
    *paths: str | Path, defaults: bool = True, allowed_dirs: Sequence[str | Path] = ()
) -> Ruleset:
    """Load the built-in ruleset and lay the given files over it, in order.

    With ``defaults=False`` only the given files are used. Raises
    :class:`nkclass.RuleError` naming the file and line of the first problem.

    A ruleset's list files (``prefix_file``) are read only from inside its
    own folder (after resolving links), unless ``allowed_dirs`` names other
    folders to read them from; only regular files of at most 64 MiB.

    >>> rules = load_rules()
    >>> rules.paths
    ('none', 'kp_range', 'unicom', 'satgate')
    """
    layers = [parse_file(p) for p in builtin_paths()] if defaults else []
    layers += [parse_file(p, allowed_dirs) for p in paths]
    ruleset = Ruleset()
    for layer in layers:
        ruleset = ruleset.layered(layer)
    return _checked(ruleset)


def rules_from_text(
    text: str,
    *,
    defaults: bool = True,
    name: str = "<rules>",
    allowed_dirs: Sequence[str | Path] = (),
) -> Ruleset:
    """Like :func:`load_rules` for a TOML string (handy in tests and notebooks).
    A text has no folder: its list files are read only from ``allowed_dirs``."""
    base = load_rules() if defaults else Ruleset()
    return _checked(base.layered(parse_text(text, name, allowed_dirs=allowed_dirs)))


def _checked(ruleset: Ruleset) -> Ruleset:
    """Checks that need every layer: a [[service]] entry describes a service
    some [[network]] or [[domain]] rule names."""
    named = ruleset.services
    for info in ruleset.service_info:
        if info.name not in named:
            close = difflib.get_close_matches(info.name, named[1:], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            origin = info.origin
            raise RuleError(
                f"service[{info.name}]: no [[network]] or [[domain]] rule names "
                f"service {info.name!r}{hint}",
                origin.path if origin else "<rules>",
                origin.line if origin else None,
            )
    return ruleset
