"""nkclass.PrefixTable against the ipaddress reference, plus its edges."""

from __future__ import annotations

import ipaddress
import pickle
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nkclass
from nkclass import PrefixTable
from tests.reference.engine import ReferenceLpm

NK = ["175.45.176.0/22", "210.52.109.0/24", "77.94.35.0/24"]


def v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def v6_rows(texts: list[str]) -> np.ndarray:
    return np.frombuffer(
        b"".join(ipaddress.IPv6Address(t).packed for t in texts), np.uint8
    ).reshape(-1, 16)


@pytest.fixture(scope="module")
def nk_table() -> PrefixTable:
    return PrefixTable(NK, [1, 2, 3])


@pytest.mark.parametrize(
    ("address", "label"),
    [
        ("175.45.175.255", 0),
        ("175.45.176.0", 1),
        ("175.45.176.71", 1),
        ("175.45.179.255", 1),
        ("175.45.180.0", 0),
        ("210.52.108.255", 0),
        ("210.52.109.0", 2),
        ("210.52.109.255", 2),
        ("210.52.110.0", 0),
        ("77.94.34.255", 0),
        ("77.94.35.0", 3),
        ("77.94.35.255", 3),
        ("77.94.36.0", 0),
    ],
)
def test_default_nk_prefix_boundaries(nk_table, address, label):
    assert nk_table.lookup(np.array([v4(address)], np.uint32)).tolist() == [label]
    assert nk_table.lookup([address]).tolist() == [label]


def test_ipv4_mapped_ipv6_matches_ipv4_prefixes(nk_table):
    rows = v6_rows(["::ffff:175.45.176.1", "::ffff:175.45.180.1", "2001:db8::1"])
    assert nk_table.lookup(rows).tolist() == [1, 0, 0]


def test_mapped_addresses_do_not_match_ipv6_default_route():
    table = PrefixTable(["::/0", "10.0.0.0/8"], [1, 2])
    assert table.lookup(["::ffff:10.1.2.3", "::ffff:11.0.0.1", "2001:db8::1"]).tolist() == [2, 0, 1]


def test_ipv6_prefix_inside_mapped_range_acts_as_ipv4():
    table = PrefixTable(["::ffff:175.45.176.0/118"], [7])
    assert table.lookup(["175.45.177.1", "::ffff:175.45.176.9", "175.45.180.1"]).tolist() == [
        7,
        7,
        0,
    ]


def test_user_more_specific_prefix_wins_inside_watched_range():
    table = PrefixTable(["175.45.176.0/22", "175.45.178.0/24"], [1, 9])
    assert table.lookup(["175.45.177.1", "175.45.178.7", "175.45.179.1"]).tolist() == [1, 9, 1]


def test_default_route_and_host_routes():
    table = PrefixTable(
        ["0.0.0.0/0", "1.2.3.4/32", "1.2.3.4/31", "::/0", "2001:db8::1/128"], [1, 2, 3, 4, 5]
    )
    got = table.lookup(["9.9.9.9", "1.2.3.4", "1.2.3.5", "1.2.3.6", "2001:db8::1", "2001:db8::2"])
    assert got.tolist() == [1, 2, 3, 1, 5, 4]


def test_s16_v16_and_uint8_rows_agree():
    texts = ["2001:db8::1", "2001:db9::1"]
    table = PrefixTable(["2001:db8::/32"], [4])
    rows = v6_rows(texts)
    assert table.lookup(rows).tolist() == [4, 0]
    assert table.lookup(rows.copy().view("S16").ravel()).tolist() == [4, 0]
    assert table.lookup(rows.copy().view("V16").ravel()).tolist() == [4, 0]


def test_duplicate_prefix_is_an_error_naming_the_row():
    with pytest.raises(ValueError, match=r"row 2 \(10.0.0.0/8\): duplicate prefix"):
        PrefixTable(["10.0.0.0/8", "11.0.0.0/8", "10.0.0.0/8"], [1, 2, 3])


def test_duplicate_prefix_last_wins_when_asked():
    table = PrefixTable(
        ["10.0.0.0/8", "10.0.0.0/8", "2001:db8::/32", "2001:db8::/32"],
        [1, 2, 3, 4],
        duplicates="last",
    )
    assert table.lookup(["10.1.1.1", "2001:db8::5"]).tolist() == [2, 4]


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("10.0.0.1/8", "host bits set"),
        ("2001:db8::1/32", "host bits set"),
        ("10.0.0.0/33", "expected an IPv4 or IPv6 prefix"),
        ("10.0.0/8", "expected an IPv4"),
        ("010.0.0.0/8", "expected an IPv4"),
        ("", "expected an IPv4"),
    ],
)
def test_invalid_prefixes_are_refused(prefix, message):
    with pytest.raises(ValueError, match=message):
        PrefixTable(["1.0.0.0/8", prefix], [1, 2])


@pytest.mark.parametrize("label", [0, -1, 2**31])
def test_labels_outside_range_are_refused(label):
    with pytest.raises(ValueError, match="labels: row 0"):
        PrefixTable(["1.0.0.0/8"], [label])


def test_label_count_must_match():
    with pytest.raises(ValueError, match="expected 2 labels"):
        PrefixTable(["1.0.0.0/8", "2.0.0.0/8"], [1])


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.float64, np.int32])
def test_wrong_address_dtype_is_a_type_error(nk_table, dtype):
    with pytest.raises(TypeError, match="expected uint32 IPv4"):
        nk_table.lookup(np.array([1, 2], dtype=dtype))


def test_bad_address_text_names_the_row(nk_table):
    with pytest.raises(ValueError, match=r"row 1 is '1.2.3.256'"):
        nk_table.lookup(["1.2.3.4", "1.2.3.256"])


def test_non_contiguous_input_is_handled(nk_table):
    addrs = np.array([v4("175.45.176.1"), 0, v4("77.94.35.1"), 0], np.uint32)
    assert nk_table.lookup(addrs[::2]).tolist() == [1, 3]


def test_empty_table_and_empty_lookup():
    empty = PrefixTable([], [])
    assert empty.lookup(np.array([1, 2], np.uint32)).tolist() == [0, 0]
    assert empty.lookup(np.zeros(0, np.uint32)).tolist() == []
    assert empty.lookup(np.zeros((0, 16), np.uint8)).tolist() == []


def test_table_pickles(nk_table):
    clone = pickle.loads(pickle.dumps(nk_table))
    assert clone.lookup(["175.45.177.1", "77.94.35.9", "1.1.1.1"]).tolist() == [1, 3, 0]


def test_threads_share_one_table():
    rng = np.random.default_rng(3)
    nets = (rng.integers(0, 2**24, 5000, dtype=np.uint32) << 8).astype(np.uint32)
    table = PrefixTable.from_ipv4_arrays(
        nets, np.full(5000, 24, np.uint8), np.arange(1, 5001, dtype=np.uint32), duplicates="last"
    )
    addrs = rng.integers(0, 2**32, 200_000, dtype=np.uint32)
    expected = table.lookup(addrs)
    results = [None] * 4

    def work(i: int) -> None:
        results[i] = table.lookup(addrs)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(r, expected) for r in results)


def test_large_table_uses_the_24_bit_first_level():
    rng = np.random.default_rng(1)
    nets = np.unique(rng.integers(0, 2**24, 40_000, dtype=np.uint32)) << 8
    table = PrefixTable.from_ipv4_arrays(
        nets.astype(np.uint32), np.full(len(nets), 24, np.uint8), np.ones(len(nets), np.uint32)
    )
    assert table.first_stride == 24
    # Compressed: 4 MiB of change bitmaps plus the runs, not a 64 MiB flat level.
    assert table.memory_bytes < 8 << 20
    assert PrefixTable(NK, [1, 2, 3]).first_stride == 16


# ----------------------------------------------------------------- properties


def v4_prefixes(max_len: int = 32):
    return st.tuples(st.integers(0, 2**32 - 1), st.integers(0, max_len)).map(
        lambda t: str(
            ipaddress.IPv4Network((t[0] >> (32 - t[1]) << (32 - t[1]) if t[1] else 0, t[1]))
        )
    )


def v6_prefixes():
    return st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: str(
            ipaddress.IPv6Network((t[0] >> (128 - t[1]) << (128 - t[1]) if t[1] else 0, t[1]))
        )
    )


def nested_v4(base: str):
    """Prefixes clustered inside one /16 so nesting and overlap are common."""
    net = ipaddress.IPv4Network(base)
    return st.tuples(st.integers(0, 2**16 - 1), st.integers(16, 32)).map(
        lambda t: str(
            ipaddress.IPv4Network(
                (
                    int(net.network_address)
                    + (t[0] >> (32 - t[1]) << (32 - t[1]) if t[1] < 32 else t[0]),
                    t[1],
                ),
                strict=False,
            )
        )
    )


def addresses_near(prefixes: list[str]):
    """Addresses at, just inside and just outside each prefix, plus random ones."""
    out: list[str] = []
    for text in prefixes:
        net = ipaddress.ip_network(text)
        first, last = int(net.network_address), int(net.broadcast_address)
        top = 2**32 - 1 if net.version == 4 else 2**128 - 1
        for value in (first, last, first - 1, last + 1, (first + last) // 2):
            if 0 <= value <= top:
                out.append(
                    str(
                        ipaddress.ip_address(value)
                        if net.version == 4
                        else ipaddress.IPv6Address(value)
                    )
                )
    return out


def table_with_first_stride(prefixes: list[str], labels: list[int], stride: int) -> PrefixTable:
    """An IPv4 table built with a forced first stride (0: chosen by size)."""
    parsed = nkclass.addresses.parse_prefixes(prefixes)
    table = PrefixTable.__new__(PrefixTable)
    table._native = nkclass._core.PrefixTable(
        parsed.v4_network,
        parsed.v4_length,
        np.array(labels, np.uint32)[parsed.v4_index],
        parsed.v6_network,
        parsed.v6_length,
        np.zeros(0, np.uint32),
        False,
        stride,
    )
    return table


@given(
    st.lists(st.one_of(v4_prefixes(), nested_v4("175.45.0.0/16")), max_size=40, unique=True),
    st.lists(st.integers(0, 2**32 - 1), max_size=30),
    st.sampled_from([0, 16, 24]),
)
def test_ipv4_matches_reference(prefixes, extra, stride):
    labels = list(range(1, len(prefixes) + 1))
    ref = ReferenceLpm(prefixes, labels)
    table = table_with_first_stride(prefixes, labels, stride)
    queries = addresses_near(prefixes) + [str(ipaddress.IPv4Address(x)) for x in extra]
    got = table.lookup(queries).tolist() if queries else []
    assert got == [ref.lookup(q) for q in queries]


@given(
    st.lists(st.one_of(v4_prefixes(), nested_v4("175.45.0.0/16")), max_size=40, unique=True),
    st.lists(st.integers(0, 2**32 - 1), max_size=30),
)
def test_bulk_lookup_in_a_compressed_24_bit_table_matches_reference(prefixes, extra):
    """A long array takes the pipelined bulk path (its first and last lookups
    are drained separately), which short text queries never reach."""
    labels = list(range(1, len(prefixes) + 1))
    ref = ReferenceLpm(prefixes, labels)
    table = table_with_first_stride(prefixes, labels, 24)
    near = [v4(q) for q in addresses_near(prefixes)]
    distinct = np.array(near + extra + [0, 2**32 - 1], np.uint32)
    queries = np.resize(distinct, 67 + 3 * len(distinct))  # not a multiple of the window
    expected = {a: ref.lookup(str(ipaddress.IPv4Address(a))) for a in distinct.tolist()}
    assert table.lookup(queries).tolist() == [expected[a] for a in queries.tolist()]


@given(
    st.lists(st.one_of(v6_prefixes(), v4_prefixes()), max_size=30, unique=True),
    st.lists(st.integers(0, 2**128 - 1), max_size=20),
)
def test_mixed_ipv4_ipv6_matches_reference(prefixes, extra):
    labels = list(range(1, len(prefixes) + 1))
    ref = ReferenceLpm(prefixes, labels)
    table = PrefixTable(prefixes, labels)
    queries = addresses_near(prefixes) + [str(ipaddress.IPv6Address(x)) for x in extra]
    queries += ["::ffff:" + q for q in queries if "." in q and ":" not in q][:10]
    got = table.lookup(queries).tolist() if queries else []
    assert got == [ref.lookup(q) for q in queries]


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)), max_size=50))
def test_duplicates_last_matches_reference(rows):
    prefixes = [str(ipaddress.IPv4Network((a, n), strict=False)) for a, n in rows]
    labels = list(range(1, len(prefixes) + 1))
    table = PrefixTable(prefixes, labels, duplicates="last")
    ref = ReferenceLpm(prefixes, labels)
    queries = addresses_near(prefixes)
    got = table.lookup(queries).tolist() if queries else []
    assert got == [ref.lookup(q) for q in queries]
