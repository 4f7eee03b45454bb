"""Dated IP lists: Tor relays, mining pool and VPN endpoints, proxies, each
entry valid for an interval of time and matched at a flow's ``ts_start``.

>>> import nkclass
>>> relays = nkclass.lists.read_dated_list(
...     "tests/data/lists/tor-consensus-2019-05-01-00", "tor-consensus",
...     service="tor-relays", category="tor")
>>> rules = nkclass.load_rules().with_dated_lists(relays)   # or a [[dated_list]] entry

Formats: ``csv`` (a plain, documented form for any dated list; see
:mod:`nkclass.lists.dated`) and the Tor Project's ``tor-consensus``,
``onionoo-details`` and ``tor-exit-list`` (see :mod:`nkclass.lists.tor`).
"""

from nkclass.lists.dated import LIST_FORMATS, DatedList, read_dated_list
from nkclass.lists.files import DatedListError

__all__ = ["LIST_FORMATS", "DatedList", "DatedListError", "read_dated_list"]
