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

from pathlib import Path

from nkclass import _core
from nkclass.errors import CompiledRulesError, RuleError
from nkclass.rules.compile import CompiledRules

#: The file format version this build writes and reads.
FORMAT_VERSION: int = _core.RULESET_FORMAT_VERSION


def encode(compiled: CompiledRules) -> bytes:
    """The compiled ruleset file bytes of ``compiled``. Dated lists are not
    part of the file format yet: a ruleset with them is refused rather than
    written without them."""
    if compiled.dated_prefixes:
        raise RuleError("compiled ruleset files do not carry [[dated_list]] entries yet; "
                        "classify with the ruleset itself")
    return _core.encode_ruleset(compiled.image)


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
        image=image,
    )


def read(path: str | Path) -> CompiledRules:
    """:func:`decode` of a file (``OSError`` when it cannot be read)."""
    return decode(Path(path).read_bytes(), str(path))
