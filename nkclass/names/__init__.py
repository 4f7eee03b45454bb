"""Names learned on the wire: address (and port) -> server name mappings
from DNS answers (pcap payloads, Zeek ``dns.log``) and from the TLS SNI /
HTTP Host of earlier flows, so flow records without payload are named
through the domain rules (evidence ``dns_learned``).

>>> import nkclass
>>> names = nkclass.NameCache()
>>> clf = nkclass.Classifier()
>>> for batch in nkclass.read("tests/data/pcap/dns53.pcap"):
...     result = clf.classify(batch, names=names)
"""

from nkclass.names.cache import MAX_CAPACITY, STATE_SCHEMA, NameCache, NameStateError
from nkclass.names.lists import learned_dated_list, write_dated_csv
from nkclass.names.zeek import DnsLogReader, is_dns_log

__all__ = ["MAX_CAPACITY", "STATE_SCHEMA", "DnsLogReader", "NameCache", "NameStateError",
           "is_dns_log", "learned_dated_list", "write_dated_csv"]
