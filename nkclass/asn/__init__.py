"""AS numbers and organisations for addresses.

:class:`AsDatabase` compiles an IP-to-AS database (MaxMind DB such as
GeoLite2-ASN or IPinfo ASN, CAIDA RouteViews pfx2as, iptoasn TSV, or the
GeoLite2-derived data the ``geoip2fast`` package ships) into the native
longest-prefix-match table and caches the compiled table on disk.
:func:`default_database` is the out-of-the-box table installed by the
``nkclass[asn]`` extra (None without it); :func:`default_countries` the
GeoLite2 Country table the same extra ships (:class:`CountryTable`).
"""

from __future__ import annotations

from nkclass.asn.cache import cache_dir
from nkclass.asn.database import (
    AsDatabase,
    CountryTable,
    default_countries,
    default_database,
    geoip2fast_path,
)
from nkclass.asn.formats import FORMATS, AsDataError, detect_format

__all__ = [
    "FORMATS",
    "AsDataError",
    "AsDatabase",
    "CountryTable",
    "cache_dir",
    "default_countries",
    "default_database",
    "detect_format",
    "geoip2fast_path",
]
