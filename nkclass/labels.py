"""The label vocabulary, in code order.

The names are defined once, in the native core (csrc/include/nkclass/vocab.hpp),
and read from there, so Python, C++ and the output files always agree.

* ``APPS``: application protocols; ``APPS[0] == "unknown"``.
* ``ACTIVITIES``: what the traffic is for; ``ACTIVITIES[0] == "unknown"``. Their
  order is the default precedence: when two candidates have evidence of the
  same strength, the one listed first wins.
* ``SIDES``: where the watched address sits in a flow.
* ``CONFIDENCES``: from the strongest evidence behind the activity: ``high``
  (payload-confirmed), ``medium`` (named lists: peer networks, SNI / Host /
  DNS names, the pair cache, AS numbers), ``low`` (ports, flow shape, a
  watched server side alone), ``none``.
* ``EVIDENCE``: the bits of the ``evidence`` code, by name.
"""

from __future__ import annotations

from nkclass import _core

APPS: tuple[str, ...] = tuple(_core.APP_NAMES)
ACTIVITIES: tuple[str, ...] = tuple(_core.ACTIVITY_NAMES)
SIDES: tuple[str, ...] = ("none", "src", "dst", "both")
CONFIDENCES: tuple[str, ...] = ("none", "low", "medium", "high")
EVIDENCE: dict[str, int] = dict(_core.EVIDENCE_BITS)
RANKS: dict[str, int] = dict(_core.RANKS)

APP_CODES = {name: code for code, name in enumerate(APPS)}
ACTIVITY_CODES = {name: code for code, name in enumerate(ACTIVITIES)}


def evidence_names(bits: int) -> str:
    """``"port|ip_list"`` style text of an evidence code ("" when 0)."""
    return "|".join(name for name, bit in EVIDENCE.items() if bits & bit)
