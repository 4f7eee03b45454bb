"""The mining pair cache: payload-confirmed (client, server) pairs carried
across batches (DOMAIN.md 3.2 and 6.5)."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

from nkclass import Classifier, PairCache, SchemaValueError, load_rules

SUBSCRIBE = b'{"id":1,"method":"mining.subscribe","params":["cpuminer/2.5"]}\n'
MINER, POOL = "175.45.176.20", "203.0.113.9"
T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def clf():
    return Classifier(load_rules())


def flows(rows):
    """rows: (src, dst, dst_port, ts_end ms, payload or None)."""
    src, dst, dport, t, payload = zip(*rows, strict=True)
    return {
        "src_ip": list(src),
        "dst_ip": list(dst),
        "src_port": np.full(len(rows), 50000, np.uint16),
        "dst_port": np.array(dport, np.uint16),
        "protocol": np.full(len(rows), 6, np.uint8),
        "ts_end": np.array(t, np.int64),
        "src_payload": list(payload),
    }


def confirm(clf, cache, t=T0, src=MINER, dst=POOL):
    r = clf.classify(flows([(src, dst, 7000, t, SUBSCRIBE)]), cache=cache)
    assert r.names("activity") == ["mining"] and r.names("confidence") == ["high"]
    return r


def test_later_flows_of_the_pair_inherit_mining_from_the_cache(clf):
    cache = PairCache(ttl=3600.0)
    confirm(clf, cache)
    assert len(cache) == 1
    r = clf.classify(flows([(MINER, POOL, 443, T0 + 60_000, None)]), cache=cache)
    assert r.names("activity") == ["mining"]
    assert r.names("confidence") == ["medium"]
    assert "pair_cache" in r.names("evidence")[0].split("|")


def test_without_a_cache_nothing_is_inherited(clf):
    confirm(clf, None)
    r = clf.classify(flows([(MINER, POOL, 7000, T0 + 60_000, None)]))
    assert r.names("activity") == ["unknown"]


def test_a_later_flow_in_the_same_batch_inherits_from_an_earlier_one(clf):
    cache = PairCache()
    r = clf.classify(
        flows([
            (MINER, POOL, 7000, T0, None),  # before the confirmation: nothing yet
            (MINER, POOL, 7000, T0 + 1000, SUBSCRIBE),
            (MINER, POOL, 7000, T0 + 2000, None),
        ]),
        cache=cache,
    )
    assert r.names("activity") == ["unknown", "mining", "mining"]
    assert r.names("evidence")[2] == "pair_cache"


def test_entries_expire_by_flow_time(clf):
    cache = PairCache(ttl=600.0)
    confirm(clf, cache)
    inside = clf.classify(flows([(MINER, POOL, 7000, T0 + 600_000, None)]), cache=cache)
    assert inside.names("activity") == ["mining"]
    late = clf.classify(flows([(MINER, POOL, 7000, T0 + 600_001, None)]), cache=cache)
    assert late.names("activity") == ["unknown"]
    assert len(cache) == 0  # the expired entry was dropped
    # A new confirmation starts a new lease.
    confirm(clf, cache, T0 + 700_000)
    again = clf.classify(flows([(MINER, POOL, 7000, T0 + 1_200_000, None)]), cache=cache)
    assert again.names("activity") == ["mining"]


def test_reconfirmation_refreshes_the_lease(clf):
    cache = PairCache(ttl=100.0)
    confirm(clf, cache, T0)
    confirm(clf, cache, T0 + 90_000)
    r = clf.classify(flows([(MINER, POOL, 7000, T0 + 150_000, None)]), cache=cache)
    assert r.names("activity") == ["mining"]


def test_the_cache_is_scoped_to_the_exact_pair_and_direction(clf):
    cache = PairCache()
    confirm(clf, cache)
    r = clf.classify(
        flows([
            (POOL, MINER, 7000, T0 + 1000, None),  # reverse direction: another pair
            (MINER, "203.0.113.10", 7000, T0 + 1000, None),  # another server
            ("175.45.176.21", POOL, 7000, T0 + 1000, None),  # another client
            ("::ffff:" + MINER, "::ffff:" + POOL, 80, T0 + 1000, None),  # same pair, mapped
        ]),
        cache=cache,
    )
    # The reverse flow's server side is in the watched range: nk_hosted_service, not mining.
    assert r.names("activity") == ["nk_hosted_service", "unknown", "unknown", "mining"]
    assert [("pair_cache" in e) for e in r.names("evidence")] == [False, False, False, True]


def test_uint32_and_16_byte_batches_share_entries(clf):
    cache = PairCache()
    b = flows([(MINER, POOL, 7000, T0, SUBSCRIBE)])
    b["src_ip"] = np.array([0xAF2DB014], np.uint32)
    b["dst_ip"] = np.array([0xCB007109], np.uint32)
    clf.classify(b, cache=cache)
    r = clf.classify(flows([(MINER, POOL, 7000, T0 + 5, None)]), cache=cache)
    assert r.names("activity") == ["mining"]


def test_capacity_bounds_memory_by_evicting_the_least_recently_confirmed(clf):
    cache = PairCache(capacity=3)
    clients = [f"175.45.176.{i}" for i in range(1, 6)]
    for i, c in enumerate(clients):
        confirm(clf, cache, T0 + i, src=c)
    assert len(cache) == 3 and cache.evictions == 2
    r = clf.classify(flows([(c, POOL, 7000, T0 + 10, None) for c in clients]), cache=cache)
    assert r.names("activity") == ["unknown", "unknown", "mining", "mining", "mining"]


def test_cache_needs_ts_end_and_a_pair_cache(clf):
    b = flows([(MINER, POOL, 7000, T0, SUBSCRIBE)])
    del b["ts_end"]
    with pytest.raises(SchemaValueError, match="ts_end"):
        clf.classify(b, cache=PairCache())
    with pytest.raises(TypeError, match="'cache' parameter"):
        clf.classify(flows([(MINER, POOL, 7000, T0, None)]), cache={})


@pytest.mark.parametrize(
    "kwargs, message",
    [({"ttl": -1}, "'ttl'"), ({"ttl": "1h"}, "'ttl'"), ({"capacity": 0}, "'capacity'"),
     ({"capacity": 2.5}, "'capacity'"), ({"ttl": float("nan")}, "'ttl'"),
     ({"capacity": 2**30 + 1}, "'capacity'"), ({"capacity": True}, "'capacity'")],
)
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PairCache(**kwargs)


def test_clear_and_pickle_keep_or_drop_the_entries(clf):
    cache = PairCache(ttl=120.0, capacity=10)
    confirm(clf, cache)
    confirm(clf, cache, src="2001:db8::7")
    copy = pickle.loads(pickle.dumps(cache))
    assert (copy.ttl, copy.capacity, len(copy)) == (120.0, 10, 2)
    client, _server, at = copy.entries()
    assert client.shape == (2, 16) and at.tolist() == [T0, T0]
    r = clf.classify(flows([(MINER, POOL, 7000, T0 + 5, None)]), cache=copy)
    assert r.names("activity") == ["mining"]
    cache.clear()
    assert len(cache) == 0 and len(copy) == 2
    assert "PairCache(ttl=120.0, capacity=10)" in repr(cache)


def good_state(clf):
    cache = PairCache(ttl=120.0, capacity=10)
    confirm(clf, cache)
    confirm(clf, cache, src="2001:db8::7")
    return cache.__getstate__()


def load_state(state):
    copy = PairCache.__new__(PairCache)
    copy.__setstate__(state)
    return copy


@pytest.mark.parametrize(
    "change, message",
    [
        ({"capacity": 2**62},
         "capacity must be an int in \\[1, 2\\*\\*30\\], got 4611686018427387904"),
        ({"capacity": 0}, "capacity must be an int"),
        ({"capacity": 1}, "2 pairs exceed the capacity of 1"),
        ({"capacity": 10.0}, "capacity must be an int"),
        ({"ttl_ms": -1}, "ttl_ms must be an int in \\[0, 2\\*\\*63 - 1\\]"),
        ({"ttl_ms": 2**63}, "ttl_ms must be an int"),
        ({"client": np.zeros((2, 16), np.float64)}, "'client' must be a \\(n, 16\\) uint8 array, "
                                                     "got float64"),
        ({"server": np.zeros((2, 15), np.uint8)}, "'server' must be a \\(n, 16\\) uint8 array"),
        ({"server": np.zeros(32, np.uint8)}, "'server' must be a \\(n, 16\\) uint8 array"),
        ({"server": [[0] * 16] * 2}, "got list"),
        ({"confirmed_at": np.zeros(2, np.uint64)}, "'confirmed_at' must be a 1-D int64 array"),
        ({"confirmed_at": np.zeros(3, np.int64)}, "differ in length \\(2, 2, 3\\)"),
    ],
)
def test_unpickling_checks_the_state(clf, change, message):
    state = good_state(clf) | change
    with pytest.raises(ValueError, match=f"invalid PairCache state: .*{message}"):
        load_state(state)


def test_unpickling_refuses_unknown_missing_and_repeated_entries(clf):
    state = good_state(clf)
    with pytest.raises(ValueError, match="invalid PairCache state: expected the keys"):
        load_state(state | {"extra": 1})
    with pytest.raises(ValueError, match="invalid PairCache state: expected the keys"):
        load_state({k: v for k, v in state.items() if k != "ttl_ms"})
    with pytest.raises(ValueError, match="invalid PairCache state: expected the keys"):
        load_state([1, 2, 3])
    twice = state | {name: np.concatenate([state[name], state[name][:1]])
                     for name in ("client", "server", "confirmed_at")}
    with pytest.raises(ValueError, match="a \\(client, server\\) pair is listed twice"):
        load_state(twice)


def test_a_valid_state_round_trips_through_the_checks(clf):
    state = good_state(clf)
    copy = load_state(state)
    assert [a.tolist() for a in copy.entries()] == [
        state[k].tolist() for k in ("client", "server", "confirmed_at")]
    empty = load_state(PairCache(capacity=1).__getstate__())
    assert len(empty) == 0 and empty.capacity == 1


def test_the_native_cache_refuses_a_capacity_beyond_the_bound():
    from nkclass import _core

    assert _core.PairCache.max_capacity == 2**30
    with pytest.raises(ValueError, match="between 1 and 2\\*\\*30"):
        _core.PairCache(2**30 + 1, 0)


def test_threads_share_one_cache(clf):
    cache = PairCache(capacity=10_000)
    errors = []

    def work(k):
        try:
            for j in range(20):
                client = f"10.{k}.{j}.1"
                clf.classify(flows([(client, POOL, 7000, T0 + j, SUBSCRIBE)]), cache=cache)
                r = clf.classify(flows([(client, POOL, 7000, T0 + j + 1, None)] * 300),
                                 cache=cache)
                assert set(r.names("activity")) == {"mining"}
                len(cache)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) == 120
