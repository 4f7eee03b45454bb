"""nkclass: classify and trend the internet traffic of watched networks.

The public surface::

    rules = nkclass.load_rules()                 # built-in North Korea ruleset
    clf = nkclass.Classifier(rules)
    result = clf.classify(batch)                 # numpy / pandas / pyarrow columns
    table = result.to_arrow()                    # + path, side, service, app, activity, ...

    for batch in nkclass.read("capture.pcap"):   # pcap, Parquet, nfdump, Zeek, pmacct, GoFlow2
        ...

    clf.save("rules.nkc")                        # compiled ruleset, for the C interface
    clf = nkclass.load_compiled("rules.nkc")     # ... and back

    nkclass.PrefixTable(prefixes, labels).lookup(addresses)   # low-level LPM
    nkclass.asn.AsDatabase.open("GeoLite2-ASN.mmdb").lookup(addresses)   # IP to AS
    names = nkclass.NameCache()                  # names learned on the wire, across batches
    clf.classify(batch, names=names)             # DNS answers, earlier SNI/Host name later flows
    nkclass.lists.read_dated_list(path, "tor-consensus", service="tor-relays", category="tor")

Classifiers, pair caches, prefix tables, rulesets and reports pickle. As with
any pickle, unpickling can run arbitrary code: only unpickle data you trust.
"""

from pathlib import Path as _Path

from nkclass import _source_tree

if not _source_tree.is_built(_Path(__file__).parent):
    # run from an unbuilt checkout (the source folder shadows the installed
    # package): use the installed distribution instead, or say what to build
    import sys as _sys

    del _sys.modules["nkclass._source_tree"]  # the installed package brings its own
    _sys.modules[__name__] = _source_tree.load_installed(__name__, __file__)
else:
    from nkclass import asn, lists, names
    from nkclass.classify import Classified, Classifier, PairCache, PrefixTable
    from nkclass.collect import Collector
    from nkclass.errors import (
        InputError,
        NkclassError,
        RuleError,
        SchemaTypeError,
        SchemaValueError,
    )
    from nkclass.flows.read import read
    from nkclass.flows.schema import FLOW_SCHEMA
    from nkclass.flows.write import write
    from nkclass.labels import ACTIVITIES, APPS, CONFIDENCES, EVIDENCE, SIDES
    from nkclass.names.cache import NameCache
    from nkclass.rules import Ruleset, load_rules

    load_compiled = Classifier.load

__version__ = "0.1.0"

__all__ = [
    "ACTIVITIES",
    "APPS",
    "CONFIDENCES",
    "EVIDENCE",
    "FLOW_SCHEMA",
    "SIDES",
    "Classified",
    "Classifier",
    "Collector",
    "InputError",
    "NameCache",
    "NkclassError",
    "PairCache",
    "PrefixTable",
    "RuleError",
    "Ruleset",
    "SchemaTypeError",
    "SchemaValueError",
    "asn",
    "lists",
    "load_compiled",
    "load_rules",
    "names",
    "read",
    "write",
]
