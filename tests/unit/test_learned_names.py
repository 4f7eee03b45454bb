"""Names learned on the wire: the DNS answer parser against a builder's
intent, the name cache against a reference model, its saved form, and the
classifier naming later flows by what earlier ones taught."""

from __future__ import annotations

import ipaddress
import pickle
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nkclass
from nkclass import _core
from nkclass.lists.dated import read_dated_list
from nkclass.names import NameCache, NameStateError, learned_dated_list, write_dated_csv
from tests.reference.dns_ref import Record, expected, mapped_text, response
from tests.reference.sni_ref import build_client_hello

DATA = Path(__file__).resolve().parents[1] / "data"
T0 = 1_556_668_800_000  # 2019-05-01 00:00 UTC, in ms
WATCHED = "175.45.176.9"
RESOLVER = "8.8.8.8"


def answers(message: bytes, tcp: bool = False):
    found = _core.dns_answers(message, tcp)
    if found is None:
        return None
    qname, items = found
    return qname, [(mapped_text(raw), ttl) for raw, ttl in items]


# ---------------------------------------------------------------- DNS answers


def test_a_cname_chain_teaches_the_question_name_for_its_addresses():
    msg = response("WWW.YouTube.com", [
        Record("www.youtube.com", 5, "youtube-ui.l.google.com", 21600),
        Record("youtube-ui.l.google.com", 1, "142.250.199.78", 300),
        Record("youtube-ui.l.google.com", 28, "2404:6800:4005:80b::200e", 300),
    ])
    assert answers(msg) == ("www.youtube.com",
                            [("142.250.199.78", 300), ("2404:6800:4005:80b::200e", 300)])


def test_records_of_names_the_question_does_not_reach_are_not_taken():
    msg = response("pool.example.com", [
        Record("pool.example.com", 1, "192.0.2.10"),
        Record("bank.example.net", 1, "198.51.100.1"),  # not asked: not taught
        Record("pool.example.com", 1, "192.0.2.11", klass=3),  # CHAOS class
    ])
    assert answers(msg) == ("pool.example.com", [("192.0.2.10", 300)])


def test_cnames_in_any_order_and_dns_over_tcp():
    records = [Record("b.example", 1, "192.0.2.7"), Record("a.example", 5, "b.example"),
               Record("q.example", 5, "a.example")]
    want = ("q.example", [("192.0.2.7", 300)])
    assert answers(response("q.example", records)) == want
    assert answers(response("q.example", records, tcp=True), tcp=True) == want


@pytest.mark.parametrize("message", [
    response("x.example", [Record("x.example", 1, "192.0.2.1")], rcode=3),  # NXDOMAIN
    response("x.example", []),  # no answers
    response("x.example", [Record("x.example", 5, "y.example")]),  # no address
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01x\x00\x00\x01\x00\x01",  # a query
])
def test_what_teaches_nothing(message):
    assert answers(message) is None


def test_a_ttl_with_the_top_bit_set_counts_as_zero():
    msg = response("t.example", [Record("t.example", 1, "192.0.2.3", ttl=0x80000001)])
    assert answers(msg) == ("t.example", [("192.0.2.3", 0)])


def test_compression_loops_and_forward_pointers_are_refused():
    head = b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    question = b"\x01q\x07example\x00\x00\x01\x00\x01"
    # the answer's owner points at itself
    record = b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    loop = head + question + b"\xc0\x1b" + record
    assert answers(loop) is None
    # the question name points forward
    forward = head + b"\xc0\x20" + b"\x00\x01\x00\x01" + b"\x01q\x00"
    assert answers(forward) is None


@st.composite
def dns_cases(draw):
    label = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
    names = draw(st.lists(st.lists(label, min_size=1, max_size=4).map(".".join),
                          min_size=1, max_size=6, unique=True))
    qname = names[0]
    v4 = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
    v6 = st.integers(0, 2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))
    record = st.one_of(
        st.builds(Record, st.sampled_from(names), st.just(1), v4, st.integers(0, 2**32 - 1),
                  st.sampled_from([1, 1, 1, 3])),
        st.builds(Record, st.sampled_from(names), st.just(28), v6, st.integers(0, 2**32 - 1)),
        st.builds(Record, st.sampled_from(names), st.just(5), st.sampled_from(names)),
        st.builds(Record, st.sampled_from(names), st.sampled_from([16, 15, 2]),
                  st.binary(max_size=20)),
    )
    records = draw(st.lists(record, max_size=40))
    return qname, records, draw(st.booleans()), draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(dns_cases())
def test_parser_matches_what_the_builder_meant(case):
    qname, records, compress, tcp = case
    msg = response(qname, records, compress=compress, tcp=tcp)
    want = expected(qname, records)
    got = answers(msg, tcp)
    assert got == ((qname.lower(), want) if want else None)


@settings(max_examples=400, deadline=None)
@given(dns_cases(), st.data())
def test_damaged_messages_never_crash_and_never_invent(case, data):
    qname, records, compress, tcp = case
    msg = bytearray(response(qname, records, compress=compress, tcp=tcp))
    for _ in range(data.draw(st.integers(0, 6))):
        if msg:
            msg[data.draw(st.integers(0, len(msg) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(msg)))
    got = answers(bytes(msg[:cut]), tcp)
    if got is not None:
        assert 1 <= len(got[1]) <= 32
        assert got[0] and all(0x21 <= ord(c) <= 0x7e for c in got[0])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_random_bytes_never_crash(blob, tcp):
    answers(blob, tcp)


# ---------------------------------------------------------------- the cache


class Model:
    """The cache's contract in plain Python: entries by (address, port) in
    learning order, intervals widened or replaced, the oldest evicted."""

    def __init__(self, capacity: int, grace_ms: int) -> None:
        self.capacity, self.grace = capacity, grace_ms
        self.entries: dict[tuple[str, int], list] = {}  # insertion order = learning order
        self.newest = -(2**63)
        self.evicted = self.expired = 0

    def learn(self, address, port, name, t, ttl_ms):
        name = name.lower().rstrip(".")
        expires = t + ttl_ms + self.grace
        self.newest = max(self.newest, t)
        key = (address, port)
        entry = self.entries.get(key)
        if entry is not None:
            if entry[0] == name:
                entry[1], entry[2] = min(entry[1], t), max(entry[2], expires)
            elif t >= entry[1]:
                entry[:] = [name, t, expires]
            else:
                return
            self.entries[key] = self.entries.pop(key)
            return
        if len(self.entries) == self.capacity:
            oldest = next(iter(self.entries))
            if self.entries.pop(oldest)[2] < self.newest:
                self.expired += 1
            else:
                self.evicted += 1
        self.entries[key] = [name, t, expires]

    def lookup(self, address, port, t):
        for key in ((address, port), (address, 0)):
            entry = self.entries.get(key)
            if entry is not None and entry[1] <= t <= entry[2]:
                return entry[0]
            if key[1] == 0:
                break
        return None


ADDRS = ["192.0.2.1", "192.0.2.2", "198.51.100.3", "2001:db8::4", "203.0.113.5"]
NAMES = ["a.example", "B.example.", "c.example", "pool.supportxmr.com"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["learn", "lookup"]), st.sampled_from(ADDRS),
                          st.sampled_from([0, 0, 443, 3333]), st.sampled_from(NAMES),
                          st.integers(0, 10_000), st.integers(0, 3_000)), max_size=80),
       st.integers(1, 4), st.integers(0, 2_000))
def test_cache_follows_the_reference_model(ops, capacity, grace):
    cache = NameCache(capacity=capacity, grace=grace / 1000)
    model = Model(capacity, grace)
    for op, address, port, name, t, ttl in ops:
        if op == "learn":
            cache.learn([address], [name], at=[t], ttl=ttl / 1000, port=port or None)
            model.learn(address, port, name, t, ttl)
        else:
            assert cache.lookup([address], at=[t], port=port) == [model.lookup(address, port, t)]
    assert len(cache) == len(model.entries)
    stats = cache.stats
    assert (stats["evicted"], stats["expired"]) == (model.evicted, model.expired)
    table = cache.entries()
    assert table.column("name").to_pylist() == [e[0] for e in model.entries.values()]


def test_names_that_are_not_names_are_refused_and_counted():
    cache = NameCache()
    taken = cache.learn(["192.0.2.1"] * 3, ["ok.example", "bad name", "x" * 254], at=T0)
    assert taken == 1 and cache.stats["refused"] == 2


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="'capacity' parameter"):
        NameCache(capacity=0)
    with pytest.raises(ValueError, match="'grace' parameter"):
        NameCache(grace=-1)
    with pytest.raises(ValueError, match="names"):
        NameCache().learn(["192.0.2.1"], [], at=T0)
    with pytest.raises(ValueError, match="origin"):
        NameCache().learn(["192.0.2.1"], ["a.example"], at=T0, origin="whois")


def test_merge_takes_the_more_recent_name_and_widens_the_same_one():
    a, b = NameCache(), NameCache()
    a.learn(["192.0.2.1", "192.0.2.2"], ["old.example", "same.example"], at=[T0, T0])
    b.learn(["192.0.2.1", "192.0.2.2", "192.0.2.3"],
            ["new.example", "same.example", "only-b.example"], at=[T0 + 5, T0 + 10**6, T0])
    a.merge(b)
    assert a.lookup(["192.0.2.1", "192.0.2.3"], at=T0 + 6) == ["new.example", "only-b.example"]
    # same name: the interval spans both learnings
    assert a.lookup(["192.0.2.2"], at=T0 + 10**6 + 86_400_000) == ["same.example"]
    assert a.lookup(["192.0.2.2"], at=T0) == ["same.example"]


def test_save_and_load_round_trip(tmp_path):
    cache = NameCache(capacity=50, grace=60.0)
    cache.learn(["192.0.2.1", "2001:db8::1"], ["a.example", "b.example"], at=[T0, T0 + 1],
                ttl=[30, 40])
    cache.learn(["198.51.100.7"], ["www.example.org"], at=T0 + 2, port=443, origin="sni")
    path = tmp_path / "names.arrow"
    cache.save(path)
    back = NameCache.load(path)
    assert (back.capacity, back.grace, len(back)) == (50, 60.0, 3)
    assert back.entries().equals(cache.entries())
    assert pickle.loads(pickle.dumps(cache)).entries().equals(cache.entries())


def test_a_damaged_or_foreign_state_is_refused_with_the_file(tmp_path):
    cache = NameCache()
    cache.learn(["192.0.2.1"], ["a.example"], at=T0)
    good = tmp_path / "names.arrow"
    cache.save(good)
    truncated = tmp_path / "truncated.arrow"
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(NameStateError, match=r"truncated\.arrow"):
        NameCache.load(truncated)
    other = tmp_path / "other.arrow"
    with pa.OSFile(str(other), "wb") as f, pa.ipc.new_file(f, pa.schema([("x", pa.int8())])) as w:
        w.write_table(pa.table({"x": pa.array([1], pa.int8())}))
    with pytest.raises(NameStateError, match="not a saved NameCache"):
        NameCache.load(other)
    table = cache.entries()
    twice = pa.concat_tables([table, table])
    state = {"capacity": 10, "grace_ms": 0, "entries": twice}
    with pytest.raises(NameStateError, match="listed twice"):
        NameCache.__new__(NameCache).__setstate__(state)
    with pytest.raises(NameStateError, match="exceed the capacity"):
        NameCache.__new__(NameCache).__setstate__({**state, "capacity": 1})
    later = pa.array(table.column("expires").cast(pa.int64()).to_numpy() + 1)
    wrong_type = table.set_column(3, "first_seen", later)
    with pytest.raises(NameStateError, match="expected the columns"):
        NameCache.__new__(NameCache).__setstate__({**state, "entries": wrong_type})
    reversed_interval = table.set_column(
        3, pa.field("first_seen", pa.timestamp("ms", tz="UTC"), nullable=False),
        later.cast(pa.timestamp("ms", tz="UTC")))
    with pytest.raises(NameStateError, match="first_seen is after expires"):
        NameCache.__new__(NameCache).__setstate__({**state, "entries": reversed_interval})


def test_one_name_replaced_thousands_of_times_stays_right():
    """An address that answers for ever new names (a CDN's): the names it
    drops are kept for reuse and freed in bulk past a few thousand; the
    cache answers the newest name throughout."""
    names = NameCache(capacity=2, grace=0.0)
    fresh = [f"host{i}.cdn.example" for i in range(9_000)]
    for i, name in enumerate(fresh):
        names.learn(["192.0.2.1"], [name], at=[T0 + i], ttl=10)
        if i % 4 == 0:  # a second key shares some of the names
            names.learn(["192.0.2.2"], [name], at=[T0 + i], ttl=10)
        if i % 997 == 0:
            assert names.lookup(["192.0.2.1"], at=[T0 + i]) == [name]
    last = T0 + len(fresh) - 1
    assert names.lookup(["192.0.2.1", "192.0.2.2"], at=[last, last]) == [fresh[-1], fresh[-4]]
    assert names.entries().column("name").to_pylist() == [fresh[-4], fresh[-1]]
    assert names.stats["replaced"] == len(fresh) - 1 + len(fresh[::4]) - 1


# ---------------------------------------------------------------- in the classifier


def dns_flow(qname, records, t, client=WATCHED):
    msg = response(qname, records)
    query = msg[:2] + b"\x01\x00" + msg[4:6] + b"\x00\x00\x00\x00\x00\x00"
    return (client, RESOLVER, 53, 17, t, query, msg)


def batch(rows):
    """rows: (src, dst, dst_port, protocol, ts_start ms, src_payload, dst_payload)."""
    src, dst, dport, proto, t, sp, dp = zip(*rows, strict=True)
    return {
        "src_ip": list(src), "dst_ip": list(dst),
        "src_port": np.full(len(rows), 40000, np.uint16),
        "dst_port": np.array(dport, np.uint16),
        "protocol": np.array(proto, np.uint8),
        "ts_start": np.array(t, np.int64),
        "src_payload": list(sp), "dst_payload": list(dp),
    }


@pytest.fixture(scope="module")
def clf():
    return nkclass.Classifier(asn=False)


def test_a_dns_answer_names_later_flows_to_its_address_in_the_same_batch(clf):
    names = NameCache()
    rows = [
        (WATCHED, "142.250.199.78", 443, 6, T0 - 1000, None, None),  # before the answer
        dns_flow("www.youtube.com", [Record("www.youtube.com", 1, "142.250.199.78")], T0),
        (WATCHED, "142.250.199.78", 443, 6, T0 + 500, None, None),
        (WATCHED, "142.250.199.78", 8080, 6, T0 + 600, None, None),  # any port
    ]
    r = clf.classify(batch(rows), names=names, server_names=True)
    # the lookup itself names its service from the query (evidence dns)
    assert r.names("service") == ["none", "youtube", "youtube", "youtube"]
    assert r.names("activity")[2:] == ["streaming", "streaming"]
    assert r.names("confidence")[2:] == ["medium", "medium"]
    assert all("dns_learned" in e.split("|") for e in r.names("evidence")[2:])
    table = r.to_arrow()
    assert table.column("learned_name").to_pylist() == [None, None, "www.youtube.com",
                                                         "www.youtube.com"]
    assert len(names) == 1


def test_a_response_with_more_answers_than_room_keeps_the_last_ones(clf):
    """Answers are learned in order under one interned name; with room for
    two, the third evicts the first within the same response."""
    names = NameCache(capacity=2, grace=0.0)
    servers = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    rows = [dns_flow("cdn.example", [Record("cdn.example", 1, s) for s in servers], T0)]
    rows += [(WATCHED, s, 443, 6, T0 + 1, None, None) for s in servers]
    r = clf.classify(batch(rows), names=names, server_names=True)
    assert r.to_arrow().column("learned_name").to_pylist() == [None, None, "cdn.example",
                                                               "cdn.example"]
    assert names.entries().column("name").to_pylist() == ["cdn.example", "cdn.example"]
    assert names.stats["learned"] == 3 and names.stats["evicted"] == 1


def test_names_carry_across_batches_and_expire(clf):
    names = NameCache(grace=0.0)
    clf.classify(batch([dns_flow("pool.supportxmr.com",
                                 [Record("pool.supportxmr.com", 1, "192.0.2.10", ttl=60)], T0)]),
                 names=names)
    later = batch([(WATCHED, "192.0.2.10", 3333, 6, T0 + 30_000, None, None),
                   (WATCHED, "192.0.2.10", 3333, 6, T0 + 61_000, None, None)])
    r = clf.classify(later, names=names)
    assert r.names("activity") == ["mining", "mining_suspect"]
    assert r.names("service") == ["supportxmr", "none"]


def test_pool_names_learned_on_the_wire_become_a_dated_pool_list(clf, tmp_path):
    names = NameCache(grace=0.0)
    clf.classify(batch([
        dns_flow("pool.supportxmr.com", [Record("pool.supportxmr.com", 1, "192.0.2.10", ttl=600),
                                         Record("pool.supportxmr.com", 28, "2001:db8::10")],
                 T0 + 123),
        dns_flow("www.youtube.com", [Record("www.youtube.com", 1, "142.250.199.78")], T0),
    ]), names=names)
    pools = learned_dated_list(names, clf.rules)
    assert pools.category == "mining"
    assert pools.valid_at(T0 + 200) == [("192.0.2.10/32", "supportxmr"),
                                        ("2001:db8::10/128", "supportxmr")]
    assert pools.valid_at(T0 + 123 + 600_000) == [("192.0.2.10/32", "supportxmr")]
    assert pools.valid_at(T0 + 123 + 600_001) == []
    path = tmp_path / "pools.csv"
    assert write_dated_csv(pools, path) == 2
    assert read_dated_list(path, "csv", service="learned-pools", category="mining") == pools
    # flow records from another exporter (no DNS, no payload): named while the list holds
    elsewhere = nkclass.Classifier(clf.rules.with_dated_lists(pools), asn=False)
    r = elsewhere.classify(batch([(WATCHED, "192.0.2.10", 3333, 6, T0 + 60_000, None, None),
                                  (WATCHED, "192.0.2.10", 3333, 6, T0 + 700_000, None, None)]))
    assert r.names("activity") == ["mining", "mining_suspect"]
    assert "ip_list" in r.names("evidence")[0].split("|")
    with pytest.raises(ValueError, match="categories"):
        learned_dated_list(names, clf.rules, categories=["minning"])


def test_an_earlier_sni_names_later_flows_to_the_same_address_and_port(clf):
    hello = build_client_hello([(0, b"www.netflix.com")])
    rows = [
        (WATCHED, "198.51.100.40", 443, 6, T0, hello, None),
        (WATCHED, "198.51.100.40", 443, 6, T0 + 10, None, None),
        (WATCHED, "198.51.100.40", 80, 6, T0 + 20, None, None),  # another port: not taught
    ]
    r = clf.classify(batch(rows), names=NameCache(), server_names=True)
    assert r.names("service") == ["netflix", "netflix", "none"]
    assert r.names("evidence")[1] .split("|").count("dns_learned") == 1
    table = r.to_arrow()
    assert table.column("sni").to_pylist() == ["www.netflix.com", None, None]
    assert table.column("learned_name").to_pylist() == [None, "www.netflix.com", None]


def test_a_flows_own_server_name_wins_over_a_learned_one(clf):
    names = NameCache()
    names.learn(["198.51.100.40"], ["www.facebook.com"], at=T0 - 10)
    hello = build_client_hello([(0, b"www.netflix.com")])
    r = clf.classify(batch([(WATCHED, "198.51.100.40", 443, 6, T0, hello, None)]), names=names)
    assert r.names("service") == ["netflix"]
    assert "dns_learned" not in r.names("evidence")[0]


def test_without_names_nothing_is_learned_or_used(clf):
    rows = [dns_flow("www.youtube.com", [Record("www.youtube.com", 1, "142.250.199.78")], T0),
            (WATCHED, "142.250.199.78", 443, 6, T0 + 500, None, None)]
    r = clf.classify(batch(rows))
    assert r.names("service")[1] == "none"
    with pytest.raises(TypeError, match="'names' parameter"):
        clf.classify(batch(rows), names={})


def test_many_threads_share_one_cache(clf):
    import threading

    names = NameCache(capacity=10_000)
    rng = random.Random(5)
    work = []
    for k in range(8):
        addr = f"192.0.2.{k + 1}"
        rows = [dns_flow(f"h{k}.youtube.com", [Record(f"h{k}.youtube.com", 1, addr)], T0)]
        rows += [(WATCHED, addr, 443, 6, T0 + 1 + rng.randrange(1000), None, None)
                 for _ in range(200)]
        work.append(batch(rows))
    results = [None] * len(work)

    def run(i):
        results[i] = clf.classify(work[i], names=names)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(set(r.names("service")[1:]) == {"youtube"} for r in results)
    assert len(names) == 8


def test_a_cache_too_large_to_stay_cached_names_flows_the_same(clf):
    """Past a few thousand entries the classifier fetches the cache's slots
    ahead of each block of flows; a flow to a peer learned earlier in the
    same block is still named."""
    n = 6_000
    servers = [str(ipaddress.IPv4Address(0xC6336400 + i)) for i in range(n)]
    names = NameCache(grace=0.0)
    names.learn(servers, [f"s{i}.example" for i in range(n)], at=[T0] * n, ttl=60)
    rng = random.Random(5)
    picks = [rng.randrange(n) for _ in range(3_000)]
    rows = [(WATCHED, servers[i], 443, 6, T0 + 1, None, None) for i in picks]
    late = "203.0.113.77"  # learned within the batch, then looked up
    rows[700:702] = [dns_flow("late.example", [Record("late.example", 1, late)], T0 + 1),
                     (WATCHED, late, 443, 6, T0 + 2, None, None)]
    r = clf.classify(batch(rows), names=names, server_names=True)
    expected = [f"s{i}.example" for i in picks]
    expected[700:702] = [None, "late.example"]
    assert r.to_arrow().column("learned_name").to_pylist() == expected


SERVERS = ["198.51.100.1", "198.51.100.2", "203.0.113.3", "2001:db8::5", "192.0.2.7"]
SNI_NAMES = ["www.netflix.com", "a.example", "pool.supportxmr.com"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(SERVERS), st.sampled_from([443, 8443]),
                                   st.integers(0, 3_000), st.none() | st.sampled_from(SNI_NAMES)),
                         min_size=1, max_size=40), min_size=1, max_size=3),
       st.integers(1, 4))
def test_classify_names_flows_as_the_reference_model_says(batches, capacity):
    """Flows in order: one without a server name of its own is named by
    what the model holds for its peer; one with an SNI then teaches it. A
    small capacity evicts, so the cache's address summary goes stale."""
    clf = nkclass.Classifier(asn=False)
    names, model = NameCache(capacity=capacity, grace=0.0), Model(capacity, 0)
    for flows in batches:
        rows, expected_names = [], []
        for server, port, t, sni in flows:
            hello = build_client_hello([(0, sni.encode())]) if sni else None
            rows.append((WATCHED, server, port, 6, T0 + t, hello, None))
            expected_names.append(None if sni else model.lookup(server, port, T0 + t))
            if sni:
                model.learn(server, port, sni, T0 + t, 0)
        r = clf.classify(batch(rows), names=names, server_names=True)
        assert r.to_arrow().column("learned_name").to_pylist() == expected_names
    assert len(names) == len(model.entries)


# ---------------------------------------------------------------- Zeek dns.log


def test_zeek_dns_log_tsv_and_json_teach_the_same():
    tsv, js = NameCache(), NameCache()
    assert tsv.learn_dns_log(DATA / "flows" / "zeek-dns.log") == 3
    assert js.learn_dns_log(DATA / "flows" / "zeek-dns.json") == 3
    assert tsv.entries().equals(js.entries())
    assert tsv.lookup(["142.250.199.78", "192.0.2.10", "2a03:2880:f12f:83:face:b00c:0:25de"],
                      at=1_556_668_900_000) == ["www.youtube.com", "pool.supportxmr.com",
                                                "www.facebook.com"]


def test_a_bad_dns_log_line_names_file_and_line_or_is_skipped(tmp_path):
    lines = (DATA / "flows" / "zeek-dns.log").read_text().splitlines()
    lines[9] = lines[9].replace("60.000000", "sixty")
    bad = tmp_path / "dns.log"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(nkclass.InputError, match=r"dns.log:10: .*TTL"):
        NameCache().learn_dns_log(bad)
    from nkclass.names import DnsLogReader

    reader = DnsLogReader(bad, errors="skip")
    assert sum(len(b["name"]) for b in reader) == 2
    assert reader.stats.skipped == 1


# ---------------------------------------------------------------- command line


def _csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_classify_learns_from_a_dns_log_given_with_the_flows(tmp_path, capsys):
    from nkclass.cli import main

    out = tmp_path / "out.csv"
    conn = DATA / "flows" / "zeek-conn-after-dns.log"
    assert main(["classify", str(DATA / "flows" / "zeek-dns.log"), str(conn), "-o", str(out),
                 "--no-asn", "--server-names"]) == 0
    err = capsys.readouterr().err
    assert "3 names learned from 5 dns.log records" in err
    assert err.strip().splitlines()[-1].startswith("nkclass: 4 rows in, 4 rows out")
    rows = _csv_rows(out)
    assert [r["service"] for r in rows] == ["none", "youtube", "supportxmr", "facebook"]
    assert [r["learned_name"] for r in rows] == ["", "www.youtube.com", "pool.supportxmr.com",
                                                 "www.facebook.com"]
    assert rows[2]["activity"] == "mining" and rows[2]["confidence"] == "medium"
    plain = tmp_path / "plain.csv"
    assert main(["classify", str(conn), "-o", str(plain), "--no-asn"]) == 0
    assert "learned_name" not in _csv_rows(plain)[0]
    assert {r["service"] for r in _csv_rows(plain)} == {"none"}


def test_names_carry_across_runs_in_a_state_file(tmp_path, capsys):
    from nkclass.cli import main

    state = tmp_path / "names.arrow"
    out = tmp_path / "out.csv"
    assert main(["classify", str(DATA / "flows" / "zeek-dns.json"), "-o", str(out),
                 "--names-state", str(state)]) == 0
    assert len(NameCache.load(state)) == 3
    assert main(["classify", str(DATA / "flows" / "zeek-conn-after-dns.log"), "-o", str(out),
                 "--no-asn", "--names-state", str(state)]) == 0
    assert [r["service"] for r in _csv_rows(out)] == ["none", "youtube", "supportxmr",
                                                      "facebook"]
    assert main(["classify", str(DATA / "flows" / "zeek-conn-after-dns.log"), "-o", str(out),
                 "--no-asn", "--no-learned-names", "--names-state", str(state)]) == 0
    assert {r["service"] for r in _csv_rows(out)} == {"none"}


def test_learned_name_usage_errors_come_before_reading(tmp_path, capsys):
    from nkclass.cli import main

    with pytest.raises(SystemExit) as info:
        main(["classify", str(DATA / "flows" / "zeek-dns.log"), "-o", str(tmp_path / "o.csv"),
              "--no-learned-names"])
    assert info.value.code == 2 and "dns.log" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["report", str(DATA / "flows" / "zeek-conn.log"), "--names-state",
              str(tmp_path / "missing" / "names.arrow")])
    assert info.value.code == 2


def test_report_reads_dns_logs_among_its_inputs(capsys):
    from nkclass.cli import main

    assert main(["top", str(DATA / "flows" / "zeek-dns.log"),
                 str(DATA / "flows" / "zeek-conn-after-dns.log"), "--by", "service",
                 "--no-asn"]) == 0
    out = capsys.readouterr().out
    assert "youtube" in out and "supportxmr" in out
