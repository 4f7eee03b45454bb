"""Detectors of the wider protocol set on real and malformed input: every
prefix and corruption of the first payloads of the real single-protocol
captures (tests/data/protocols) is parsed without reading out of bounds
(the sanitizer run checks), QUIC Initial decryption against Zeek's log of
the same capture, and the rules that keep weak guesses weak."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nkclass
from nkclass import _core
from nkclass.flows.pcap import read_pcap

DATA = Path(__file__).resolve().parents[1] / "data"
TCP, UDP = 6, 17


def inspect(proto, sport, dport, src, dst=b""):
    return _core.inspect_payload(proto, sport, dport, bytes(src), bytes(dst))


def first_payloads() -> list[tuple[str, int, int, int, bytes, bytes]]:
    out = []
    for path in sorted((DATA / "protocols").glob("*.pcap*")):
        for batch in nkclass.read(path):
            for r in batch.to_pylist():
                if r["src_payload"] or r["dst_payload"]:
                    out.append((path.name, r["protocol"], r["src_port"], r["dst_port"],
                                r["src_payload"] or b"", r["dst_payload"] or b""))
    return out


PAYLOADS = first_payloads()


def test_real_first_payloads_are_named_as_a_whole_and_never_break_cut_short():
    named = 0
    for _, proto, sport, dport, src, dst in PAYLOADS:
        whole = inspect(proto, sport, dport, src, dst)
        named += whole["app"] != "unknown"
        for n in range(0, len(src), 7):
            got = inspect(proto, sport, dport, src[:n], dst[: n // 2])
            assert got["app"] in _core.APP_NAMES and got["activity"] in _core.ACTIVITY_NAMES
    assert named >= len(PAYLOADS) * 9 // 10


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PAYLOADS), st.data())
def test_corrupted_real_payloads_never_break_the_detectors(flow, data):
    _, proto, sport, dport, src, dst = flow
    side = bytearray(src or dst)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(side) - 1))
        side[at] = data.draw(st.integers(0, 255))
    got = inspect(proto, sport, dport, bytes(side), dst if src else b"")
    assert got["app"] in _core.APP_NAMES and got["activity"] in _core.ACTIVITY_NAMES


def test_an_alpn_of_any_octets_is_reported_not_an_error():
    """ALPN protocol ids are opaque octets (RFC 7301): a byte that is not
    UTF-8 is reported as it is (Latin-1), not a decoding error."""
    hello = next(src for _, _, _, _, src, _ in PAYLOADS if b"\x02h2\x08http/1.1" in src)
    assert inspect(TCP, 54630, 443, hello)["alpn"] == "h2"
    at = hello.index(b"\x02h2\x08http/1.1") + 1
    damaged = hello[:at] + b"\x80" + hello[at + 1:]
    assert inspect(TCP, 54630, 443, damaged)["alpn"] == "\x802"


# --------------------------------------------------------------------------- QUIC


def quic_initials(path: Path, payload_bytes: int) -> list[bytes]:
    return [r["src_payload"] for batch in read_pcap(path, payload_bytes=payload_bytes)
            for r in batch.to_pylist() if r["protocol"] == UDP and r["src_payload"]]


@pytest.mark.skipif(not _core.QUIC_DECRYPTION, reason="built without libcrypto")
def test_quic_v2_initial_gives_what_zeek_logs_for_the_capture():
    # Zeek's quic.log for this trace: version quicv2, no server_name, client_protocol h3.
    (initial,) = quic_initials(DATA / "pcap" / "quic-http3.pcap", 1500)
    assert _core.quic_client_hello(initial) == {"server_name": None, "alpn": "h3",
                                                "version": 0x6B3343CF}


@pytest.mark.skipif(not _core.QUIC_DECRYPTION, reason="built without libcrypto")
def test_quic_v1_initial_gives_the_doq_alpn_tshark_shows():
    (initial,) = quic_initials(DATA / "protocols" / "dns-over-quic-udp853.pcap", 512)
    assert _core.quic_client_hello(initial) == {"server_name": None, "alpn": "doq", "version": 1}


@pytest.mark.parametrize("version", [1, 0x6B3343CF, 0xFF00001D])
def test_quic_initials_cut_or_corrupted_never_break_decryption(version):
    (initial,) = quic_initials(DATA / "pcap" / "quic-http3.pcap", 1500)
    packet = bytearray(initial)
    packet[1:5] = struct.pack("!I", version)  # other keys: decrypts to garbage frames
    rng = random.Random(version)
    for n in range(0, len(packet), 13):
        got = _core.quic_client_hello(bytes(packet[:n]))
        assert got is None or got["version"] == version
    for _ in range(300):
        bad = bytearray(initial)
        for _ in range(rng.randint(1, 4)):
            bad[rng.randrange(len(bad))] = rng.randrange(256)
        got = _core.quic_client_hello(bytes(bad))
        assert got is None or isinstance(got["version"], int)


# --------------------------------------------------------------------------- weak guesses

ENCRYPTED_A = random.Random(1).randbytes(180)
ENCRYPTED_B = random.Random(2).randbytes(150)


def test_fully_encrypted_both_ways_is_a_low_confidence_shadowsocks_guess():
    got = inspect(TCP, 50123, 8388, ENCRYPTED_A, ENCRYPTED_B)
    assert (got["app"], got["activity"]) == ("shadowsocks", "proxy")
    flows = {"src_ip": ["10.0.0.1"], "dst_ip": ["10.0.0.2"], "src_port": [50123],
             "dst_port": [8388], "protocol": [TCP], "src_payload": [ENCRYPTED_A],
             "dst_payload": [ENCRYPTED_B]}
    labelled = nkclass.Classifier().classify(flows).to_arrow().to_pylist()[0]
    assert labelled["confidence"] == "low"


@pytest.mark.parametrize(
    "src, dst",
    [
        pytest.param(ENCRYPTED_A, b"", id="no-reply"),
        pytest.param(ENCRYPTED_A, b"SSH-2.0-OpenSSH_9.6\r\n" + b"x" * 40, id="text-reply"),
        pytest.param(ENCRYPTED_A[:40], ENCRYPTED_B[:40], id="too-short"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" + ENCRYPTED_A, ENCRYPTED_B,
                     id="printable-start"),
    ],
)
def test_one_random_side_or_a_printable_start_is_not_shadowsocks(src, dst):
    assert inspect(TCP, 50123, 40000, src, dst)["app"] != "shadowsocks"


# --------------------------------------------------------------------------- added shapes


def stun_binding_request(attrs: bytes = b"") -> bytes:
    return struct.pack("!HHI", 0x0001, len(attrs), 0x2112A442) + b"\x07" * 12 + attrs


@pytest.mark.parametrize("port", [80, 443, 3478, 50000])
def test_stun_over_tcp_is_named_on_any_port(port):
    request = stun_binding_request(struct.pack("!HH", 0x0019, 4) + b"\x11\x00\x00\x00")
    response = struct.pack("!HHI", 0x0101, 0, 0x2112A442) + b"\x07" * 12
    assert inspect(TCP, 61109, port, request, response)["app"] == "stun"


def test_tcp_bytes_without_the_stun_cookie_are_not_stun():
    fake = struct.pack("!HHI", 0x0001, 0, 0x2112A443) + b"\x07" * 12
    assert inspect(TCP, 61109, 50000, fake)["app"] != "stun"


@pytest.mark.parametrize(
    "line, app",
    [
        (b"<13>2013-09-12T19:16:34.457849+04:00 localhost msg", "syslog"),  # rsyslog forward
        (b"<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - msg", "syslog"),  # RFC 5424
        (b"<5>Sep 12 19:16:12 host log", "syslog"),  # RFC 3164
        (b"<13>2013-0x-12T19:16:34 localhost", "unknown"),
        (b"<13>2013-09-12 19:16:34 localhost", "unknown"),
        (b"<999>2013-09-12T19:16:34 localhost", "unknown"),
    ],
)
def test_syslog_headers_by_their_timestamp_forms(line, app):
    assert inspect(UDP, 52693, 514, line)["app"] == app


def ref_fully_encrypted(data: bytes) -> bool:
    """Wu et al. 2023, section 4, as plainly as it reads."""
    if len(data) < 48:
        return False
    printable = [0x20 <= c <= 0x7E for c in data]
    if all(printable[:6]):
        return False
    bits = sum(bin(c).count("1") for c in data)
    if not 34 * len(data) < 10 * bits < 46 * len(data):  # 3.4 < bits per byte < 4.6
        return False
    if sum(printable) > len(data) / 2:
        return False
    run = longest = 0
    for p in printable:
        run = run + 1 if p else 0
        longest = max(longest, run)
    return longest <= 20


# Random bytes with printable runs of lengths around the limit of 20.
pieces = st.one_of(
    st.binary(min_size=1, max_size=40),
    st.integers(15, 26).map(lambda k: b"k" * k),
    st.integers(15, 26).flatmap(
        lambda k: st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                          min_size=k, max_size=k).map(str.encode)),
)
mixed_bytes = st.lists(pieces, min_size=1, max_size=16).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(src=mixed_bytes, dst=mixed_bytes)
def test_encrypted_guess_matches_the_published_exemptions(src, dst):
    got = inspect(TCP, 50123, 40000, src, dst)["app"]
    if ref_fully_encrypted(src) and ref_fully_encrypted(dst):
        assert got != "unknown"  # shadowsocks, unless a real protocol matched first
    else:
        assert got != "shadowsocks"


def ref_rtp_stream(data: bytes) -> bool:
    """RTP confirmed by a later packet of the same stream in the joined
    datagrams: the first packet's SSRC again, 8 bytes into a version-2
    header of the same payload type whose sequence number is 1-4 ahead."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return False
    pt = data[1] & 0x7F
    header = 12 + 4 * (data[0] & 0x0F)
    if len(data) < header + 12:
        return False
    seq, ssrc = int.from_bytes(data[2:4], "big"), data[8:12]
    lim = min(len(data), 1500 + 12)
    at = data.find(ssrc, header + 8, lim)
    while at >= 0:
        k = at - 8
        step = (int.from_bytes(data[k + 2:k + 4], "big") - seq) & 0xFFFF
        if data[k] >> 6 == 2 and data[k + 1] & 0x7F == pt and 1 <= step <= 4:
            return True
        at = data.find(ssrc, at + 1, lim)
    return False


# Few distinct byte values, so that partial SSRC matches are common.
rtp_noise = st.binary(max_size=40).map(lambda b: bytes(0x80 | (c & 0x3) for c in b))


@settings(max_examples=400, deadline=None)
@given(
    pt=st.integers(0, 71) | st.integers(77, 127),
    seq=st.integers(0, 0xFFFF),
    ssrc=st.binary(min_size=4, max_size=4).map(lambda b: bytes(0x80 | (c & 0x3) for c in b)),
    later=st.lists(st.tuples(rtp_noise, st.integers(0, 6), st.booleans(), st.integers(0, 4)),
                   max_size=6),
)
def test_rtp_confirmation_matches_a_search_of_the_joined_datagrams(pt, seq, ssrc, later):
    first = bytes([0x80, pt]) + seq.to_bytes(2, "big") + b"\0\0\0\0" + ssrc + b"\x11" * 12
    data = first
    for noise, step, same_pt, wrong in later:
        nxt = bytes([0x80, pt if same_pt else (pt + 1) % 72])
        # A later packet of another stream differs in one SSRC byte (or none).
        other = bytes(c ^ (1 if i == wrong else 0) for i, c in enumerate(ssrc))
        data += noise + nxt + ((seq + step) & 0xFFFF).to_bytes(2, "big") + b"\0\0\0\0" + other
    got = inspect(UDP, 40000, 40002, data)["app"]
    assert (got == "rtp") == ref_rtp_stream(data)


# -- word-at-a-time name and token scans, at every length around their word sizes --

@pytest.mark.parametrize("length", range(1, 41))
def test_host_names_and_targets_of_every_length_are_read_whole(length):
    # Names and request targets are copied and scanned eight (or four)
    # bytes at a time with an overlapping last word: each length lands the
    # name's end at a different place in its words.
    name = ("AbCdEfGhIj-" * 4)[:length]
    target = "/" + ("x" * 40)[: length - 1]
    request = f"GET {target} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: x\r\n\r\n".encode()
    got = inspect(TCP, 50123, 80, request)
    assert (got["app"], got["server_name"]) == ("http", name.lower())


@pytest.mark.parametrize("at", range(0, 24))
def test_an_unprintable_byte_anywhere_in_a_host_name_refuses_the_name(at):
    name = bytearray(b"abcdefghijklmnopqrstuvwx")
    name[at] = 0x01
    request = b"GET / HTTP/1.1\r\nHost: " + bytes(name) + b"\r\n\r\n"
    assert inspect(TCP, 50123, 80, request)["server_name"] is None


RULE_SUFFIXES = ["example.com", "b.example.com", "minexmr.com", "x.y", "ab"]
LABELS = ["a", "b", "ab", "x", "y", "example", "Example", "com", "minexmr", "q" * 20, "r" * 63]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LABELS), min_size=1, max_size=12))
def test_names_matched_in_place_get_the_domain_tables_answer(labels):
    # The detectors match a name where it was written (lookup_padded, reading
    # words past its end); DomainTable.lookup copies it first. Up to the
    # 253-byte limit, each name must get the same answer both ways.
    name = ".".join(labels)
    if len(name) > 253:
        name = name[len(name) - 253:].lstrip(".")
    services = np.arange(1, len(RULE_SUFFIXES) + 1, dtype=np.uint32)
    activities = np.zeros(len(RULE_SUFFIXES), np.uint8)
    table = _core.DomainTable(RULE_SUFFIXES, services, activities)
    inspector = _core.PayloadInspector(RULE_SUFFIXES, services, activities)
    request = f"GET / HTTP/1.1\r\nHost: {name}\r\n\r\n".encode()
    src = np.frombuffer(request, np.uint8)
    offsets = np.array([0, len(request)], np.int64)
    _, _, service = inspector.inspect_batch(
        np.array([TCP], np.uint8), np.array([50123], np.uint16), np.array([80], np.uint16),
        src, offsets, np.zeros(0, np.uint8), np.zeros(2, np.int64))
    assert service[0] == table.lookup([name])[0][0]
