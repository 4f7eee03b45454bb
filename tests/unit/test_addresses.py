"""Address text <-> binary columns against ipaddress."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from nkclass.addresses import format_addresses, parse_addresses, parse_prefixes, to_ipv6_rows

v4_text = st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v)))
v6_text = st.integers(0, 2**128 - 1).map(lambda v: str(ipaddress.IPv6Address(v)))


def expected_rows(texts: list[str]) -> np.ndarray:
    rows = []
    for t in texts:
        a = ipaddress.ip_address(t)
        rows.append(a.packed if a.version == 6 else ipaddress.IPv6Address("::ffff:" + t).packed)
    return np.frombuffer(b"".join(rows), np.uint8).reshape(-1, 16)


@given(st.lists(v4_text, max_size=50))
def test_ipv4_text_parses_to_host_order_integers(texts):
    got = parse_addresses(texts, "col")
    assert got.dtype == np.uint32
    assert got.tolist() == [int(ipaddress.IPv4Address(t)) for t in texts]


@given(st.lists(st.one_of(v4_text, v6_text), min_size=1, max_size=50))
@example(["::ffff:0:0", "2001:db8::1"])
def test_mixed_text_parses_to_mapped_rows_and_formats_back(texts):
    got = parse_addresses(texts, "col")
    if all(":" not in t for t in texts):
        assert got.tolist() == [int(ipaddress.IPv4Address(t)) for t in texts]
        got = to_ipv6_rows(got)
    np.testing.assert_array_equal(got, expected_rows(texts))
    back = format_addresses(got).to_pylist()
    assert back == [printed(t) for t in texts]


def printed(text: str) -> str:
    """How format_addresses writes an address: IPv4-mapped ones as IPv4."""
    a = ipaddress.ip_address(text)
    mapped = a.ipv4_mapped if a.version == 6 else None
    return str(mapped if mapped is not None else a)


@pytest.mark.parametrize(
    "bad",
    [
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3.4 ",
        " 1.2.3.4",
        "",
        "1..2.3",
        "::g",
        "1:2:3:4:5:6:7:8:9",
        "fe80::1%eth0",
        "1.2.3.-4",
        "a" * 60,
    ],
)
def test_invalid_address_text_names_the_row(bad):
    with pytest.raises(ValueError, match=r"column 'x': row 1 is"):
        parse_addresses(["1.1.1.1", bad], "x")


def test_arrow_sliced_string_array_is_read_at_its_offset():
    arr = pa.array(["9.9.9.9", "1.2.3.4", "5.6.7.8"])[1:]
    assert parse_addresses(arr, "x").tolist() == [0x01020304, 0x05060708]


@given(st.lists(st.tuples(st.one_of(v4_text, v6_text), st.integers(0, 128)), max_size=40))
def test_prefix_text_parses_like_ipaddress(rows):
    texts = []
    for addr, length in rows:
        max_len = 32 if ":" not in addr else 128
        texts.append(f"{addr}/{min(length, max_len)}")
    parsed = parse_prefixes(texts)
    for value, length, i in zip(parsed.v4_network, parsed.v4_length, parsed.v4_index, strict=True):
        a, n = texts[i].split("/")
        assert (int(value), int(length)) == (int(ipaddress.IPv4Address(a)), int(n))
    for row, length, i in zip(parsed.v6_network, parsed.v6_length, parsed.v6_index, strict=True):
        a, n = texts[i].split("/")
        assert (bytes(row), int(length)) == (ipaddress.IPv6Address(a).packed, int(n))


@pytest.mark.parametrize("bad", ["1.2.3.0/", "1.2.3.0/33", "::/129", "1.2.3.0/08", "1.2.3.0/2a"])
def test_invalid_prefix_text(bad):
    with pytest.raises(ValueError, match="row 0"):
        parse_prefixes([bad])


@given(st.binary(max_size=64))
def test_random_bytes_never_crash_the_parsers(blob):
    text = blob.decode("latin-1")
    try:
        parse_addresses([text], "x")
    except ValueError:
        pass
    try:
        parse_prefixes([text])
    except ValueError:
        pass
