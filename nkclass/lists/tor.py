"""Tor relay data in the forms the Tor Project publishes, as dated lists.

* ``tor-consensus``: network-status consensus documents (dir-spec, section
  3.4.1; the ``ns`` and the microdescriptor flavour; CollecTor's
  ``consensuses-YYYY-MM.tar.xz`` archives read as they are). Every relay of
  a consensus (its ``r`` line's address and its ``a`` lines' addresses) is
  valid from the document's ``valid-after`` to its ``valid-until``, so a
  relay listed hour after hour is one interval. Checked: the document starts
  with ``network-status-version 3`` and says ``vote-status consensus``; the
  ``valid-after``/``fresh-until``/``valid-until`` header comes before the
  relays and its interval is not empty (valid-after < fresh-until <=
  valid-until); router entries ascend by identity, as the specification
  orders them; ``a`` and ``s`` lines follow an ``r`` line.
* ``onionoo-details``: the Onionoo ``details`` document (JSON). A relay's
  ``or_addresses`` are valid from ``first_seen`` (or
  ``last_changed_address_or_port``, when later: the addresses changed then)
  to ``last_seen`` plus 3 hours (the validity of the last consensus that
  listed it); its ``exit_addresses`` (seen in its last 24 hours, per the
  Onionoo protocol) from ``last_seen`` minus 24 hours, but not before
  ``first_seen``, to the same end. Checked: ``first_seen`` <= ``last_seen``
  <= ``relays_published``.
* ``tor-exit-list``: TorDNSEL exit lists (``@type tordnsel 1.0``;
  ``Downloaded``, then per relay ``ExitNode``, ``Published``,
  ``LastStatus`` and one or more ``ExitAddress <ip> <time>`` lines, in that
  order). An exit address is valid from the earlier of the relay's
  ``Published`` time and the test, to the later of ``LastStatus`` and the
  test plus 3 hours. Checked: the order of the lines, and no test after the
  list's ``Downloaded`` time.

Bridges (Onionoo's ``bridges``) carry no public addresses and are skipped.
``flags`` (consensus ``s`` lines, Onionoo ``flags``) keeps only relays
holding all the flags given, such as ``Exit`` or ``Guard``. Documents may
come in any order (an archive's order is incidental); each is checked as
above and errors name the file (``archive/member``) and line.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from nkclass.errors import load_json
from nkclass.lists.dated import Accumulator
from nkclass.lists.files import DatedListError, ms_text, text_lines, utc_ms

HOUR_MS = 3_600_000
#: How long a consensus stays valid after its valid-after (dir-spec: three
#: hours with hourly consensuses); used where a source gives only the time a
#: relay was last listed.
CONSENSUS_VALIDITY_MS = 3 * HOUR_MS
#: Onionoo's exit_addresses are those seen in the relay's last 24 hours.
EXIT_ADDRESS_WINDOW_MS = 24 * HOUR_MS
_FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")


def _time(text: str, name: str, line: int, what: str) -> int:
    try:
        if not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text.strip()):
            raise ValueError
        return utc_ms(text)
    except ValueError:
        raise DatedListError(f"{what}: expected a time as YYYY-MM-DD HH:MM:SS, got {text!r}",
                             name, line) from None


def _address(text: str, acc: Accumulator, name: str, line: int, what: str) -> str:
    """The canonical host prefix of an address (no prefix length allowed)."""
    canonical = None if "/" in text else acc.prefix(text)
    if canonical is None:
        raise DatedListError(f"{what}: {text!r} is not an IP address", name, line)
    return canonical


def _address_port(text: str, acc: Accumulator, name: str, line: int, what: str) -> str:
    """``1.2.3.4:9001`` or ``[2001:db8::1]:9001`` -> its address."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([0-9.]+):(\d{1,5})", text.strip())
    if m is None:
        raise DatedListError(f"{what}: {text!r} is not an address:port", name, line)
    return _address(m.group(1) or m.group(3), acc, name, line, what)


class ConsensusReader:
    """Network-status consensus documents (module docstring)."""

    def __init__(self, flags: tuple[str, ...] = ()) -> None:
        self.flags = frozenset(flags)

    def read(self, name: str, data: bytes, acc: Accumulator) -> None:
        lines = text_lines(name, data)
        started = False
        times: dict[str, tuple[int, int]] = {}  # keyword -> (ms, line)
        interval: tuple[int, int] | None = None
        relay: tuple[list[str], set[str]] | None = None
        last_identity: tuple[bytes, int] | None = None
        footer = False

        def commit() -> None:
            if relay is not None and interval is not None and self.flags <= relay[1]:
                for address in relay[0]:
                    acc.add(address, interval[0], interval[1])

        for number, line in enumerate(lines, start=1):
            if not line.strip() or (not started and line.startswith("@type ")):
                continue
            parts = line.split()
            keyword = parts[0]
            if not started:
                if keyword != "network-status-version" or len(parts) < 2 or parts[1] != "3":
                    raise DatedListError(
                        "not a network-status consensus: it must start with "
                        "'network-status-version 3'", name, number)
                started = True
                continue
            if footer:
                continue
            if keyword == "vote-status":
                if parts[1:] != ["consensus"]:
                    raise DatedListError(
                        f"vote-status {' '.join(parts[1:])!r}: a vote, not a consensus", name,
                        number)
            elif keyword in ("valid-after", "fresh-until", "valid-until"):
                if interval is not None:
                    raise DatedListError(f"out of order: {keyword} after the router entries",
                                         name, number)
                times[keyword] = (_time(" ".join(parts[1:]), name, number, keyword), number)
            elif keyword == "r":
                if interval is None:
                    interval = self._interval(times, name, number)
                commit()
                if len(parts) not in (8, 9):
                    raise DatedListError(
                        f"an 'r' line has 8 or 9 fields (nickname, identity, [digest,] "
                        f"publication date and time, address, ORPort, DirPort), got "
                        f"{len(parts) - 1}", name, number)
                identity = self._identity(parts[2], name, number)
                if last_identity is not None and identity <= last_identity[0]:
                    raise DatedListError(
                        f"out of order: router {parts[2]} does not come after the router of "
                        f"line {last_identity[1]}; router entries ascend by identity", name,
                        number)
                last_identity = (identity, number)
                relay = ([_address(parts[-3], acc, name, number, "r line address")], set())
            elif keyword in ("a", "s"):
                if relay is None:
                    raise DatedListError(f"out of order: an '{keyword}' line before any 'r' line",
                                         name, number)
                if keyword == "a":
                    if len(parts) != 2:
                        raise DatedListError("an 'a' line holds one address:port", name, number)
                    relay[0].append(_address_port(parts[1], acc, name, number, "a line"))
                else:
                    relay[1].update(parts[1:])
            elif keyword == "directory-footer":
                commit()
                relay = None
                footer = True
        if not started:
            raise DatedListError("empty: not a network-status consensus", name)
        if interval is None:
            interval = self._interval(times, name, len(lines))
        commit()

    @staticmethod
    def _identity(text: str, name: str, line: int) -> bytes:
        try:
            digest = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 20:
            raise DatedListError(f"router identity {text!r} is not a base64 SHA-1 digest", name,
                                 line)
        return digest

    @staticmethod
    def _interval(times: dict[str, tuple[int, int]], name: str, line: int) -> tuple[int, int]:
        for keyword in ("valid-after", "fresh-until", "valid-until"):
            if keyword not in times:
                raise DatedListError(f"out of order: no {keyword} line before the router entries",
                                     name, line)
        after, _ = times["valid-after"]
        fresh, fresh_line = times["fresh-until"]
        until, until_line = times["valid-until"]
        if until <= after:
            raise DatedListError(
                f"empty validity: valid-until {ms_text(until)} is not after valid-after "
                f"{ms_text(after)}", name, until_line)
        if not after < fresh <= until:
            raise DatedListError(
                f"fresh-until {ms_text(fresh)} is not within (valid-after, valid-until]", name,
                fresh_line)
        return after, until


class ExitListReader:
    """TorDNSEL exit lists (module docstring)."""

    ORDER = ("ExitNode", "Published", "LastStatus", "ExitAddress")

    def read(self, name: str, data: bytes, acc: Accumulator) -> None:
        lines = text_lines(name, data)
        downloaded: int | None = None
        record: dict | None = None
        last_keyword = None

        def commit() -> None:
            if record is None:
                return
            for address, tested in record["exits"]:
                published = record.get("Published", tested)
                last_status = record.get("LastStatus", tested)
                acc.add(address, min(published, tested),
                        max(last_status, tested) + CONSENSUS_VALIDITY_MS)

        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("@type "):
                continue
            keyword, _, value = line.partition(" ")
            if keyword == "Downloaded":
                if record is not None:
                    raise DatedListError("out of order: Downloaded after the relay records",
                                         name, number)
                downloaded = _time(value, name, number, "Downloaded")
            elif keyword == "ExitNode":
                if not _FINGERPRINT.match(value.strip()):
                    raise DatedListError(
                        f"ExitNode {value!r} is not a relay fingerprint (40 hex digits)", name,
                        number)
                commit()
                record = {"exits": []}
                last_keyword = keyword
            elif keyword in ("Published", "LastStatus", "ExitAddress"):
                if record is None:
                    raise DatedListError(f"out of order: {keyword} before any ExitNode", name,
                                         number)
                if self.ORDER.index(keyword) < self.ORDER.index(last_keyword) or (
                        keyword == last_keyword and keyword != "ExitAddress"):
                    raise DatedListError(
                        f"out of order: {keyword} after {last_keyword}; a record's lines go "
                        "ExitNode, Published, LastStatus, ExitAddress", name, number)
                last_keyword = keyword
                if keyword == "ExitAddress":
                    address, _, when = value.strip().partition(" ")
                    tested = _time(when, name, number, "ExitAddress")
                    if downloaded is not None and tested > downloaded:
                        raise DatedListError(
                            f"out of order: tested at {ms_text(tested)}, after the list was "
                            f"downloaded ({ms_text(downloaded)})", name, number)
                    record["exits"].append(
                        (_address(address, acc, name, number, "ExitAddress"), tested))
                else:
                    record[keyword] = _time(value, name, number, keyword)
            else:
                raise DatedListError(
                    f"unknown keyword {keyword!r}; an exit list has Downloaded, ExitNode, "
                    "Published, LastStatus and ExitAddress lines", name, number)
        commit()


class OnionooReader:
    """Onionoo details documents (module docstring)."""

    def __init__(self, flags: tuple[str, ...] = ()) -> None:
        self.flags = frozenset(flags)

    def read(self, name: str, data: bytes, acc: Accumulator) -> None:
        text = "\n".join(text_lines(name, data))
        doc = load_json(text, DatedListError, name)
        if not isinstance(doc, dict) or not isinstance(doc.get("relays"), list):
            raise DatedListError("not an Onionoo details document: no 'relays' list", name, 1)
        published_text = doc.get("relays_published")
        if not isinstance(published_text, str):
            raise DatedListError("no 'relays_published' time", name, 1)
        published = _time(published_text, name, _line_of(text, published_text),
                          "relays_published")
        for index, relay in enumerate(doc["relays"]):
            self._relay(relay, index, published, text, name, acc)

    def _relay(self, relay: object, index: int, published: int, text: str, name: str,
               acc: Accumulator) -> None:
        where = f"relays[{index}]"
        fingerprint = relay.get("fingerprint") if isinstance(relay, dict) else None
        line = _line_of(text, fingerprint) if isinstance(fingerprint, str) else None
        if not isinstance(relay, dict):
            raise DatedListError(f"{where} is not an object", name, line)

        def field(key: str, required: bool = True) -> str | None:
            value = relay.get(key)
            if value is None and not required:
                return None
            if not isinstance(value, str):
                raise DatedListError(f"{where}.{key}: expected a time string, got "
                                     f"{type(value).__name__}", name, line)
            return value

        first = _time(field("first_seen"), name, line, f"{where}.first_seen")
        last = _time(field("last_seen"), name, line, f"{where}.last_seen")
        if last < first:
            raise DatedListError(
                f"empty validity: {where}.last_seen {ms_text(last)} is before first_seen "
                f"{ms_text(first)}", name, line)
        if last > published:
            raise DatedListError(
                f"out of order: {where}.last_seen {ms_text(last)} is after relays_published "
                f"{ms_text(published)}", name, line)
        flags = relay.get("flags", [])
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise DatedListError(f"{where}.flags: expected a list of strings", name, line)
        if not self.flags <= set(flags):
            return
        end = last + CONSENSUS_VALIDITY_MS
        changed = field("last_changed_address_or_port", required=False)
        or_start = first
        if changed is not None:
            or_start = max(first, _time(changed, name, line,
                                        f"{where}.last_changed_address_or_port"))
        or_start = min(or_start, last)
        for key, start in (("or_addresses", or_start),
                           ("exit_addresses", max(first, last - EXIT_ADDRESS_WINDOW_MS))):
            values = relay.get(key, [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise DatedListError(f"{where}.{key}: expected a list of strings", name, line)
            for value in values:
                if key == "or_addresses":
                    address = _address_port(value, acc, name, line, f"{where}.{key}")
                else:
                    address = _address(value, acc, name, line, f"{where}.{key}")
                acc.add(address, start, end)


def _line_of(text: str, value: str) -> int | None:
    at = text.find(json.dumps(value))
    return None if at < 0 else text.count("\n", 0, at) + 1
