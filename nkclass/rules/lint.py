"""Checking the list entries of ruleset files, as the built-in lists are held
to: ``python -m nkclass.rules.lint [FILE ...]`` (the built-in files when
none are given) prints every problem with its file and line and exits 1 if
there is one.

Parsing already refuses what makes a file unusable (bad syntax, a name
listed twice in one file). This checks what parsing lets through because a
user's layer may do it on purpose, but a maintained list must not:

- every entry names its source;
- every domain suffix is a registrable name, not a bare top-level or public
  second-level domain (``com``, ``co.uk``) that would swallow a country;
- no suffix or AS number is listed in two of the files (a later file would
  silently replace the earlier entry);
- a suffix under another service's suffix (``mail.qq.com`` under ``qq.com``)
  is declared with ``narrows = ["qq"]``, a suffix under one of its own
  service's suffixes is redundant, and a ``narrows`` names a service the
  entry really narrows;
- services that share an organisation label agree on its country (their
  operators may differ: a subsidiary keeps its own legal name).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nkclass.errors import RuleError
from nkclass.rules.model import DomainRule, Origin, Ruleset
from nkclass.rules.parse import parse_file

#: Second-level labels that registries under a country code hand out as
#: public suffixes (co.uk, com.cn, ne.jp, or.kr): such a pair names nobody.
PUBLIC_SECOND_LEVEL = frozenset(
    "ac co com edu go gov gv ltd me mil ne net or org plc sch".split()
)


@dataclass(frozen=True)
class Problem:
    """One finding: where (file and line of the entry) and what."""

    origin: Origin | None
    message: str

    def __str__(self) -> str:
        return f"{self.origin or '<rules>'}: {self.message}"


def _entries(layer: Ruleset) -> Iterable[tuple[str, object]]:
    for kind, entries in (("watched", layer.watched), ("network", layer.networks),
                          ("port", layer.ports), ("domain", layer.domains),
                          ("asn", layer.asns), ("service", layer.service_info)):
        for entry in entries:
            yield kind, entry


def _label(kind: str, entry: object) -> str:
    name = getattr(entry, "service", None) or getattr(entry, "name", None)
    if name is None and hasattr(entry, "describe"):
        name = entry.describe()
    return f"[[{kind}]] {name}"


def _public_suffix(suffix: str) -> bool:
    labels = suffix.split(".")
    return len(labels) == 1 or (
        len(labels) == 2 and labels[0] in PUBLIC_SECOND_LEVEL and len(labels[1]) == 2
    )


def _parents(suffix: str) -> Iterable[str]:
    labels = suffix.split(".")
    for i in range(1, len(labels)):
        yield ".".join(labels[i:])


def lint(layers: Sequence[Ruleset]) -> list[Problem]:
    """Every problem of the files parsed into ``layers`` (one Ruleset per
    file, not layered), in file order."""
    problems: list[Problem] = []
    for layer in layers:
        for kind, entry in _entries(layer):
            if not str(getattr(entry, "source", "")).strip():
                problems.append(Problem(entry.origin, f"{_label(kind, entry)}: no source"))

    owner: dict[str, DomainRule] = {}
    for layer in layers:
        for rule in layer.domains:
            for suffix in rule.suffixes:
                if _public_suffix(suffix):
                    problems.append(Problem(rule.origin, f"{suffix!r} ({rule.service}) is a "
                                            "public suffix, not one organisation's domain"))
                first = owner.setdefault(suffix, rule)
                if first is not rule:
                    problems.append(Problem(rule.origin, f"{suffix!r} ({rule.service}) is "
                                            f"also listed by {first.service} ({first.origin})"))
    narrowed: dict[int, set[str]] = {}
    for rule in {id(r): r for r in owner.values()}.values():
        for suffix in rule.suffixes:
            parent = next((p for p in _parents(suffix) if p in owner), None)
            if parent is None:
                continue
            above = owner[parent]
            if above.service == rule.service:
                problems.append(Problem(rule.origin, f"{suffix!r} is redundant: {parent!r} of "
                                        f"the same service ({rule.service}) covers it"))
            elif above.service not in rule.narrows:
                problems.append(Problem(rule.origin, f"{suffix!r} ({rule.service}) lies under "
                                        f"{parent!r} ({above.service}, {above.origin}); "
                                        f"declare narrows = [\"{above.service}\"] if meant"))
            narrowed.setdefault(id(rule), set()).add(above.service)
    for layer in layers:
        for rule in layer.domains:
            for name in sorted(set(rule.narrows) - narrowed.get(id(rule), set())):
                problems.append(Problem(rule.origin, f"{rule.service} declares narrows "
                                        f"{name!r}, but none of its suffixes lies under "
                                        f"a suffix of {name}"))

    as_owner: dict[object, object] = {}
    for layer in layers:
        for rule in layer.asns:
            for key in (*rule.asns, *(("name", n) for n in rule.as_names)):
                first = as_owner.setdefault(key, rule)
                if first is not rule:
                    what = f"AS{key}" if isinstance(key, int) else f"AS name {key[1]!r}"
                    problems.append(Problem(rule.origin, f"{what} ({rule.service}) is also "
                                            f"listed by {first.service} ({first.origin})"))

    seen_org: dict[str, object] = {}
    for layer in layers:
        for info in layer.service_info:
            if not info.org:
                continue
            first = seen_org.setdefault(info.org, info)
            if first.country != info.country:
                problems.append(Problem(info.origin, f"service {info.name} places organisation "
                                        f"{info.org} in {info.country or 'no country'}, "
                                        f"{first.name} ({first.origin}) in "
                                        f"{first.country or 'no country'}"))
    return problems


def lint_files(paths: Sequence[str | Path]) -> list[Problem]:
    """Parse each file on its own (a RuleError stops at the first file that
    does not parse) and :func:`lint` them together."""
    return lint([parse_file(p) for p in paths])


def main(argv: Sequence[str] | None = None) -> int:
    from nkclass.rules import builtin_paths

    parser = argparse.ArgumentParser(
        prog="python -m nkclass.rules.lint",
        description="Check the list entries of ruleset files (default: the built-in files): "
        "sources, domain names, duplicates and undeclared overlaps across services.",
    )
    parser.add_argument("files", nargs="*", help="ruleset TOML files, checked together")
    args = parser.parse_args(argv)
    paths = args.files or builtin_paths()
    try:
        problems = lint_files(paths)
    except RuleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {len(paths)} file(s)", file=sys.stderr)
        return 1
    print(f"ok: {len(paths)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
