"""Compiled ruleset files (``nkclass rules compile``): everything the native
classifier is built from, in one versioned, checksummed binary file that the
C interface (``csrc/include/nkclass/nkclass.h``) and :func:`nkclass.load_compiled`
read. The format is documented in ``csrc/include/nkclass/ruleset_file.hpp``;
writing and reading both run in the native core, so there is one
implementation of it.

A loaded file is checked whole (magic, version, length, checksum, every
section and code) before anything is built from it; the classifier it gives
is the one the C interface runs.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from nkclass import _core
from nkclass.errors import CompiledRulesError
from nkclass.rules.compile import CompiledRules

#: The file format version this build writes and reads.
FORMAT_VERSION: int = _core.RULESET_FORMAT_VERSION


def encode(compiled: CompiledRules) -> bytes:
    """The compiled ruleset file bytes of ``compiled``: its tables, the AS
    stage and table when on, and its dated lists' prefixes, validity
    intervals and verdicts."""
    return _core.encode_ruleset(compiled.image)


def _dated_prefixes(rows: tuple) -> tuple[str, ...]:
    """The dated-list prefixes by key, as text, from the prefix table state
    of a file (row labels are 1 + the key)."""
    net4, len4, lab4, net6, len6, lab6 = rows[:6]
    by_key: dict[int, str] = {}
    for network, length, label in zip(net4.tolist(), len4.tolist(), lab4.tolist(), strict=True):
        by_key[label - 1] = f"{ipaddress.IPv4Address(network)}/{length}"
    for network, length, label in zip(net6, len6.tolist(), lab6.tolist(), strict=True):
        by_key[label - 1] = f"{ipaddress.IPv6Address(network.tobytes())}/{length}"
    return tuple(by_key[k] for k in sorted(by_key))


def decode(data: bytes, path: str = "<bytes>") -> CompiledRules:
    """The tables and classifier of a compiled ruleset file's bytes.

    Raises :class:`nkclass.errors.CompiledRulesError` naming ``path``, the
    byte offset and the reason when the bytes are not a whole, valid file of
    this format version and label vocabulary."""
    image, kind, offset, message = _core.load_ruleset(data)
    if image is None:
        raise CompiledRulesError(message, path, offset=offset, kind=kind)
    attribution = None
    if image["as_stage"]:
        from nkclass.asn.attribution import AsAttribution
        from nkclass.asn.database import AsDatabase

        database = None
        if image["as_table"] is not None:
            orgs = tuple(image["as_org_names"])
            database = AsDatabase.from_native(
                image["as_table"], image["as_numbers"],
                tuple(orgs[code] for code in image["as_orgs"].tolist()),
                {"path": path, "format": "compiled ruleset"},
            )
        attribution = AsAttribution.from_image(image, database)
    native = image.pop("classifier")
    image.pop("as_table")
    return CompiledRules(
        paths=tuple(image["path_names"]),
        services=tuple(image["service_names"]),
        native=native,
        path_table=_core.PrefixTable(*image["paths"]),
        service_table=_core.PrefixTable(*image["services"]),
        port_table=_core.PortTable(*image["ports"], False),
        domain_suffixes=tuple(image["domain_suffixes"]),
        domain_services=image["domain_services"],
        domain_activities=image["domain_activities"],
        attribution=attribution,
        dated_prefixes=_dated_prefixes(image["dated_rows"]) if image["dated"] else (),
        image=image,
    )


def read(path: str | Path) -> CompiledRules:
    """:func:`decode` of a file (``OSError`` when it cannot be read)."""
    return decode(Path(path).read_bytes(), str(path))
