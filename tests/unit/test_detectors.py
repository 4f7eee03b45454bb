"""Payload detectors: positive, negative and malformed payloads, real
captures, and the native stratum / SNI parsers against slow references."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nkclass import _core
from tests.reference.pcap_payloads import flows
from tests.reference.sni_ref import build_client_hello, client_hello_sni
from tests.reference.stratum_ref import scan_stratum as ref_scan_stratum

TCP, UDP = 6, 17
WALLET = "4" + "A" * 94  # 95 characters, standard Monero address shape


def inspect(proto, sport, dport, src, dst=b""):
    return _core.inspect_payload(proto, sport, dport, bytes(src), bytes(dst))


def dns_query(name: str, qtype: int = 1, *, txid: int = 0x1234, flags: int = 0x0100) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return (
        struct.pack("!HHHHHH", txid, flags, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", qtype, 1)
    )


def ovpn_udp(opcode: int, session: bytes, ack_of: bytes | None = None) -> bytes:
    acks = b"\x00" if ack_of is None else b"\x01" + b"\0\0\0\0" + ack_of
    return bytes([opcode << 3]) + session + acks + b"\0\0\0\0"


def ike_header(version: int, exchange: int, length: int = 28) -> bytes:
    return (
        b"\x11" * 8
        + b"\0" * 8
        + bytes([33, version, exchange, 8])
        + b"\0" * 4
        + struct.pack("!I", length)
    )


HELLO = build_client_hello([(0, b"Pool.SupportXMR.com")], before=[(0x0A0A, b"")])
TOR_HELLO = build_client_hello([(0, b"www.q2hf3nu7sbgaxk4.com")])
QUIC_V1 = bytes([0xC3]) + b"\0\0\0\x01" + b"\x08" + b"\x11" * 8 + b"\x00" + b"\x00" * 40
SESSION = b"\x8a\x11\x22\x33\x44\x55\x66\x77"

# name: (protocol, src_port, dst_port, src, dst, app, activity)
POSITIVE = {
    "stratum_v1_subscribe": (
        TCP,
        50000,
        3333,
        b'{"id": 1, "method": "mining.subscribe", "params": ["cpuminer/2.4.3"]}\n',
        b"",
        "stratum",
        "mining",
    ),
    "xmrig_login_id_first": (
        TCP,
        50000,
        3333,
        b'{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"'
        + WALLET.encode()
        + b'","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.2.0",'
        b'"algo":["rx/0","cn/r"]}}\n',
        b"",
        "stratum",
        "mining",
    ),
    "xmrstak_login_method_first": (
        TCP,
        50000,
        5555,
        b'{"method":"login","params":{"login":"'
        + WALLET.encode()
        + b'","pass":"x","agent":"xmr-stak-cpu/1.3.0-1.5.0"},"id":1}\n',
        b"",
        "stratum",
        "mining",
    ),
    "login_spaced_no_pass": (
        TCP,
        50000,
        14444,
        b'{ "id" : 1 , "method" : "login" , "params" : { "login" : "w", "agent" : "a/1" } }\r\n',
        b"",
        "stratum",
        "mining",
    ),
    "job_push_from_pool": (
        TCP,
        50000,
        3333,
        b"",
        b'{"jsonrpc":"2.0","method":"job","params":{"blob":"0707","job_id":"1","target":"b88d0600",'
        b'"seed_hash":"ab"}}\n',
        "stratum",
        "mining",
    ),
    "login_reply_with_job": (
        TCP,
        50000,
        3333,
        b"",
        b'{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"s","job":{"blob":"07","job_id":"j",'
        b'"target":"b88d0600"},"status":"OK"}}\n',
        "stratum",
        "mining",
    ),
    "submit_share": (
        TCP,
        50000,
        3333,
        b'{"id":4,"jsonrpc":"2.0","method":"submit","params":{"id":"s","job_id":"j",'
        b'"nonce":"0a0b0c0d","result":"' + b"ab" * 32 + b'"}}\n',
        b"",
        "stratum",
        "mining",
    ),
    "keepalived": (
        TCP,
        50000,
        3333,
        b'{"id":9,"jsonrpc":"2.0","method":"keepalived","params":{"id":"s"}}\n',
        b"",
        "stratum",
        "mining",
    ),
    "eth_submit_login": (
        TCP,
        50000,
        9999,
        b'{"worker": "eth1.0", "jsonrpc": "2.0", "params": ["0xabc", "x"], "id": 2, '
        b'"method": "eth_submitLogin"}\n',
        b"",
        "stratum",
        "mining",
    ),
    "subscribe_reply_and_notify": (
        TCP,
        50000,
        3333,
        b"",
        b'{"result":[[["mining.notify","1"]],"00b61738",4],"error":null,"id":0}\n'
        b'{"method":"mining.set_difficulty","params":[4096],"id":1}\n',
        "stratum",
        "mining",
    ),
    "second_line_authorize": (
        TCP,
        50000,
        3333,
        b'{"id":5,"result":true}\n{"id":2,"method":"mining.authorize","params":["u","p"]}\n',
        b"",
        "stratum",
        "mining",
    ),
    "http_getblocktemplate": (
        TCP,
        50000,
        8332,
        b"POST / HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n\r\n"
        b'{"id": 0, "method": "getblocktemplate", "params": []}',
        b"",
        "http",
        "mining",
    ),
    "monero_levin": (
        TCP,
        50000,
        18080,
        b"\x01\x21\x01\x01\x01\x01\x01\x01" + b"\0" * 25,
        b"",
        "monero_p2p",
        "crypto_p2p",
    ),
    "bitcoin_version": (
        TCP,
        50000,
        8333,
        bytes.fromhex("f9beb4d9") + b"version\0\0\0\0\0" + b"\x66\0\0\0" + b"\0" * 30,
        b"",
        "bitcoin_p2p",
        "crypto_p2p",
    ),
    "ethereum_discv4": (
        UDP,
        30303,
        30303,
        b"\x11" * 97 + b"\x01" + b"\xde" + b"\x05" * 40,
        b"",
        "ethereum_p2p",
        "crypto_p2p",
    ),
    "tls_client_hello": (TCP, 50000, 443, HELLO, b"", "tls", "unknown"),
    "tls_tor_like_name": (TCP, 50000, 9001, TOR_HELLO, b"", "tls", "tor"),
    "http_get": (
        TCP,
        50000,
        80,
        b"GET /index.html HTTP/1.1\r\nHost: Example.org:8080\r\nUser-Agent: curl/8.0\r\n\r\n",
        b"",
        "http",
        "unknown",
    ),
    "http_connect": (
        TCP,
        50000,
        3128,
        b"CONNECT example.org:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"",
        "http_proxy",
        "proxy",
    ),
    "tor_consensus": (
        TCP,
        50000,
        9030,
        b"GET /tor/status-vote/current/consensus HTTP/1.0\r\nHost: 1.2.3.4\r\n\r\n",
        b"",
        "http",
        "tor",
    ),
    "bittorrent_tracker": (
        TCP,
        50000,
        6969,
        b"GET /announce?info_hash=%12%34&peer_id=-UT-&port=6881 HTTP/1.1\r\n\r\n",
        b"",
        "bittorrent",
        "p2p_filesharing",
    ),
    "bittorrent_handshake": (
        TCP,
        50000,
        6881,
        b"\x13BitTorrent protocol" + b"\0" * 48,
        b"",
        "bittorrent",
        "p2p_filesharing",
    ),
    "bittorrent_dht": (
        UDP,
        6881,
        6881,
        b"d1:ad2:id20:" + b"a" * 20 + b"e1:q4:ping1:t2:aa1:y1:qe",
        b"",
        "bittorrent",
        "p2p_filesharing",
    ),
    "dns_query": (UDP, 40000, 53, dns_query("www.Example.com"), b"", "dns", "unknown"),
    "dns_tcp": (
        TCP,
        40000,
        53,
        struct.pack("!H", len(dns_query("a.b"))) + dns_query("a.b"),
        b"",
        "dns",
        "unknown",
    ),
    "mdns_query": (
        UDP,
        5353,
        5353,
        dns_query("printer.local", 12, txid=0, flags=0),
        b"",
        "mdns",
        "unknown",
    ),
    "ssh_banner": (
        TCP,
        50000,
        22,
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"SSH-2.0-OpenSSH_8.9\r\n",
        "ssh",
        "remote_admin",
    ),
    "smtp_greeting": (
        TCP,
        50000,
        25,
        b"",
        b"220 mx.example.org ESMTP Postfix\r\n",
        "smtp",
        "email",
    ),
    "imap_greeting": (
        TCP,
        50000,
        143,
        b"",
        b"* OK [CAPABILITY IMAP4rev1] ready\r\n",
        "imap",
        "email",
    ),
    "pop3_greeting": (TCP, 50000, 110, b"", b"+OK POP3 ready\r\n", "pop3", "email"),
    "openvpn_udp": (
        UDP,
        50000,
        1195,
        ovpn_udp(7, SESSION),
        ovpn_udp(8, b"\x99" * 8, ack_of=SESSION),
        "openvpn",
        "vpn",
    ),
    "openvpn_tcp": (
        TCP,
        50000,
        443,
        struct.pack("!H", 14) + ovpn_udp(7, SESSION),
        b"",
        "openvpn",
        "vpn",
    ),
    "wireguard_initiation": (
        UDP,
        50000,
        51000,
        b"\x01\0\0\0" + b"\x42" * 144,
        b"",
        "wireguard",
        "vpn",
    ),
    # A flow meter joins a direction's first datagrams: the initiation is
    # followed by transport data, the response likewise.
    "wireguard_joined_datagrams": (
        UDP,
        45965,
        51194,
        b"\x01\0\0\0" + b"\x42" * 144 + b"\x04\0\0\0" + b"\x17" * 60,
        b"\x02\0\0\0" + b"\x43" * 88 + b"\x04\0\0\0" + b"\x18" * 28,
        "wireguard",
        "vpn",
    ),
    "ike_v2_sa_init": (UDP, 500, 500, ike_header(0x20, 34, 300) + b"\0" * 40, b"", "ipsec", "vpn"),
    "ike_nat_t": (UDP, 4500, 4500, b"\0\0\0\0" + ike_header(0x20, 35, 200), b"", "ipsec", "vpn"),
    "socks5_onion": (
        TCP,
        50000,
        9050,
        b"\x05\x01\x00"
        + b"\x05\x01\x00\x03"
        + bytes([22])
        + b"expyuzz4wqqyqhjn.onion"
        + b"\x00\x50",
        b"",
        "socks",
        "tor",
    ),
    "socks4": (
        TCP,
        50000,
        1080,
        b"\x04\x01\x00\x50\x01\x02\x03\x04user\x00",
        b"",
        "socks",
        "proxy",
    ),
    "quic_v1_initial": (UDP, 50000, 443, QUIC_V1, b"", "quic", "unknown"),
}


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_positive_sample_gives_expected_labels(name):
    proto, sport, dport, src, dst, app, activity = POSITIVE[name]
    got = inspect(proto, sport, dport, src, dst)
    assert (got["app"], got["activity"]) == (app, activity)
    assert got["rank"] == _core.RANKS["payload"]


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_every_truncation_of_a_positive_sample_is_safe(name):
    proto, sport, dport, src, dst, _app, _activity = POSITIVE[name]
    for cut in range(len(src) + 1):
        got = inspect(proto, sport, dport, src[:cut], dst)
        assert got["app"] in _core.APP_NAMES
    for cut in range(len(dst) + 1):
        got = inspect(proto, sport, dport, src, dst[:cut])
        assert got["app"] in _core.APP_NAMES


def test_extracted_fields():
    got = inspect(*POSITIVE["xmrig_login_id_first"][:5])
    assert got["agent"].startswith("XMRig/6.21.0") and got["coin"] == "xmr"
    got = inspect(*POSITIVE["xmrstak_login_method_first"][:5])
    assert got["agent"] == "xmr-stak-cpu/1.3.0-1.5.0" and got["coin"] == "xmr"
    assert inspect(*POSITIVE["stratum_v1_subscribe"][:5])["agent"] == "cpuminer/2.4.3"
    assert inspect(*POSITIVE["eth_submit_login"][:5])["coin"] == "eth"
    assert inspect(*POSITIVE["job_push_from_pool"][:5])["coin"] == "xmr"
    tls = inspect(*POSITIVE["tls_client_hello"][:5])
    assert (tls["server_name"], tls["name_source"]) == ("pool.supportxmr.com", "sni")
    http = inspect(*POSITIVE["http_get"][:5])
    assert (http["server_name"], http["agent"]) == ("example.org", "curl/8.0")
    assert inspect(*POSITIVE["dns_query"][:5])["server_name"] == "www.example.com"
    assert inspect(*POSITIVE["socks5_onion"][:5])["server_name"] == "expyuzz4wqqyqhjn.onion"


def test_tor_like_sni_is_a_named_guess_never_payload_rank():
    got = inspect(*POSITIVE["tls_tor_like_name"][:5])
    assert got["activity_rank"] == _core.RANKS["named"]
    assert got["evidence"] & _core.EVIDENCE_BITS["sni"]
    for word_like in (b"www.facebook.com", b"www.wikipedia.net", b"www.abc.com"):
        hello = build_client_hello([(0, word_like)])
        assert inspect(TCP, 1, 443, hello)["activity"] == "unknown"


NEGATIVE = {
    "jsonrpc_get_balance": (
        TCP,
        1,
        8545,
        b'{"jsonrpc":"2.0","method":"getBalance","params":[],"id":1}\n',
    ),
    "eth_node_query": (
        TCP,
        1,
        8545,
        b'{"jsonrpc":"2.0","method":"eth_getBalance","params":["0x1"],"id":1}',
    ),
    "html_with_words": (
        TCP,
        80,
        1,
        b'<html><title>mining.subscribe "method":"login"</title></html>',
    ),
    "smtp_ehlo": (TCP, 1, 25, b'EHLO {"method":"mining.subscribe"}\r\n'),
    "bare_method_id_blob": (TCP, 1, 3333, b'{"method":"x","id":1,"blob":"00","job_id":"1"}\n'),
    "login_without_agent_or_pass": (TCP, 1, 3333, b'{"method":"login","params":{"login":"w"}}\n'),
    "login_params_list": (TCP, 1, 3333, b'{"method":"login","params":["w","x","agent"]}\n'),
    "subscribe_without_params": (TCP, 1, 3333, b'{"id":1,"method":"mining.subscribe"}\n'),
    "method_in_nested_object": (
        TCP,
        1,
        3333,
        b'{"data":{"method":"mining.subscribe","params":[]}}\n',
    ),
    "method_as_key_in_string": (
        TCP,
        1,
        3333,
        b'{"note":"\\"method\\":\\"mining.notify\\"","params":[]}\n',
    ),
    "truncated_login": (TCP, 1, 3333, b'{"id":1,"method":"login","params":{"login":"w","pass":"x"'),
    "json_array_first": (TCP, 1, 3333, b'[{"method":"mining.subscribe","params":[]}]\n'),
    "web_json_api": (TCP, 1, 443, b'{"user":{"login":"bob","pass":"x","agent":"Mozilla"}}'),
}


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_look_alike_is_not_mining(name):
    got = inspect(*NEGATIVE[name])
    assert got["activity"] != "mining"
    assert got["app"] != "stratum"


def test_random_short_payloads_rarely_match():
    import random

    rng = random.Random(7)
    hits = 0
    for _ in range(20000):
        src = rng.randbytes(rng.randint(1, 200))
        got = inspect(
            rng.choice([TCP, UDP]), rng.randint(1024, 65535), rng.randint(1024, 65535), src
        )
        hits += got["app"] != "unknown"
    assert hits < 20  # < 0.1% of random binary payloads on non-service ports


@settings(max_examples=3000, deadline=None)
@given(
    proto=st.sampled_from([TCP, UDP, 1]),
    sport=st.sampled_from([53, 500, 4500, 5353, 1194, 30303, 51820, 3333, 443, 40000]),
    dport=st.sampled_from([53, 500, 4500, 5353, 1194, 30303, 51820, 3333, 443, 40000]),
    src=st.binary(max_size=300),
    dst=st.binary(max_size=300),
)
def test_random_bytes_never_crash(proto, sport, dport, src, dst):
    got = inspect(proto, sport, dport, src, dst)
    assert got["app"] in _core.APP_NAMES and got["activity"] in _core.ACTIVITY_NAMES


# -- stratum: native vs the json-module reference --------------------------------

KEYS = [
    "login",
    "agent",
    "pass",
    "blob",
    "job_id",
    "target",
    "nonce",
    "result",
    "seed_hash",
    "algo",
    "id",
    "rigid",
    "worker",
    "job",
]
METHODS = [
    "mining.subscribe",
    "mining.authorize",
    "mining.submit",
    "mining.notify",
    "mining.set_difficulty",
    "mining.set_target",
    "mining.configure",
    "mining.extranonce.subscribe",
    "login",
    "job",
    "submit",
    "keepalived",
    "eth_submitLogin",
    "eth_getWork",
    "eth_submitWork",
    "eth_submitHashrate",
    "getwork",
    "getblocktemplate",
    "submitblock",
    "getBalance",
    "eth_getBalance",
    "mining",
    "Login",
    "mining.subscribe ",
    "auth",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        ["rx/0", "cn/r", "kawpow", WALLET, "8" + "b" * 105, "XMRig/6.1", "mining.notify"]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    ),
    max_leaves=12,
)
params = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=7),
    st.lists(json_values, max_size=4),
    json_values,
)


@st.composite
def messages(draw):
    obj = {}
    for key in draw(st.permutations(["id", "jsonrpc", "method", "params", "result", "error"])):
        if not draw(st.booleans()):
            continue
        if key == "method":
            obj[key] = draw(st.sampled_from(METHODS) | json_values)
        elif key == "params":
            obj[key] = draw(params)
        elif key == "result":
            obj[key] = draw(
                st.one_of(
                    st.fixed_dictionaries(
                        {"job": st.dictionaries(st.sampled_from(KEYS), scalars, max_size=6)}
                    ),
                    st.lists(
                        st.lists(st.sampled_from(["mining.notify", "x"]) | json_values, max_size=3),
                        max_size=3,
                    ),
                    json_values,
                )
            )
        else:
            obj[key] = draw(json_values)
    seps = draw(st.sampled_from([(",", ":"), (", ", ": "), (" , ", " : ")]))
    text = json.dumps(obj, separators=seps, ensure_ascii=draw(st.booleans()))
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " ", "\r"]))


@st.composite
def stratum_payloads(draw):
    lines = draw(st.lists(messages(), min_size=1, max_size=3))
    data = "\n".join(lines).encode()
    if draw(st.booleans()):
        data += b"\n"
    mutation = draw(st.sampled_from(["none", "none", "truncate", "flip", "insert"]))
    if mutation == "truncate" and data:
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    elif mutation == "insert":
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.binary(min_size=1, max_size=3)) + data[i:]
    return data


def _agree(data: bytes) -> None:
    ref = ref_scan_stratum(data)
    native = _core.scan_stratum(data)
    assert (ref is None) == (native is None), (data, ref, native)
    if ref is None:
        return
    coin, agent = ref
    assert native["coin"] == coin
    if agent is not None and agent.isascii():
        assert native["agent"] == agent.encode()[:63]
    elif agent is None:
        assert native["agent"] is None


@settings(max_examples=4000, deadline=None)
@given(stratum_payloads())
def test_stratum_scan_matches_json_reference(data):
    _agree(data)


@pytest.mark.parametrize("name", [n for n in sorted(POSITIVE) if POSITIVE[n][5] == "stratum"])
def test_stratum_samples_match_reference_at_every_cut(name):
    _, _, _, src, dst, *_ = POSITIVE[name]
    payload = src or dst
    assert ref_scan_stratum(payload) is not None
    for cut in range(len(payload) + 1):
        _agree(payload[:cut])


def test_stratum_escapes_and_duplicates_follow_json():
    _agree(b'{"\\u006dethod":"log\\u0069n","params":{"login":"w","pass":"x"}}')
    assert _core.scan_stratum(b'{"method":"login","params":{"login":"w","pass":"x"}}')
    assert not _core.scan_stratum(
        b'{"method":"login","method":"x","params":{"login":"w","pass":"x"}}'
    )
    assert not _core.scan_stratum(
        b'{"method":"login","params":{"login":"w","pass":"x"},"params":1}'
    )
    assert not _core.scan_stratum(b'{"method":"getwork","x":NaN}')
    deep = b'{"method":"getwork","p":' + b"[" * 40 + b"]" * 40 + b"}"
    _agree(deep)


# -- SNI: native vs the struct reference -------------------------------------------

hostnames = st.one_of(
    st.from_regex(r"[A-Za-z0-9-]{1,20}(\.[A-Za-z0-9-]{1,20}){0,4}", fullmatch=True).map(str.encode),
    st.binary(min_size=0, max_size=300),
)
grease = st.sampled_from([0x0A0A, 0x1A1A, 0xFAFA, 0x0010, 0x002B, 0x0033, 0xFF01])
extensions = st.lists(st.tuples(grease, st.binary(max_size=40)), max_size=4)


@st.composite
def client_hellos(draw):
    names = draw(
        st.lists(st.tuples(st.sampled_from([0, 0, 1, 255]), hostnames), min_size=0, max_size=3)
    )
    data = build_client_hello(
        names,
        before=draw(extensions),
        after=draw(extensions),
        session_id=draw(st.binary(max_size=32)),
        ciphers=draw(st.binary(min_size=2, max_size=60)),
        record_version=draw(st.sampled_from([0x0301, 0x0303, 0x0300])),
    )
    mutation = draw(st.sampled_from(["none", "truncate", "flip", "none"]))
    if mutation == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "flip":
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    return data


@settings(max_examples=4000, deadline=None)
@given(client_hellos())
def test_sni_matches_struct_reference(data):
    assert _core.tls_sni(data) == client_hello_sni(data)


def test_sni_first_host_name_wins_and_truncation_keeps_complete_name():
    hello = build_client_hello(
        [(1, b"other"), (0, b"First.example"), (0, b"second.example")], before=[(0x0A0A, b"\0")]
    )
    assert _core.tls_sni(hello) == "first.example"
    end = hello.index(b"First.example") + len(b"First.example")
    assert _core.tls_sni(hello[:end]) == "first.example"
    assert _core.tls_sni(hello[: end - 1]) is None


# -- real captures -------------------------------------------------------------------

DATA = Path(__file__).resolve().parents[1] / "data"
CATEGORY_OK = {
    "mining": lambda r: r["activity"] == "mining",
    "vpn": lambda r: r["activity"] == "vpn",
    "ssh": lambda r: r["app"] == "ssh",
    "tls": lambda r: r["app"] == "tls" and r["activity"] != "mining",
    "http": lambda r: r["app"] == "http" and r["activity"] != "mining",
    "dns": lambda r: r["app"] == "dns",
    "p2p": lambda r: r["activity"] in ("p2p_filesharing", "crypto_p2p"),
    "other": lambda r: r["app"] in ("quic", "mdns"),
    "unknown": lambda r: r["activity"] == "unknown",
}


def _expected_rows():
    with open(DATA / "expected_flows.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("pcap", sorted({r["file"] for r in _expected_rows()}))
def test_real_capture_flows_get_the_expected_category(pcap):
    seen = {f.key: f for f in flows(pcap)}
    rows = [r for r in _expected_rows() if r["file"] == pcap]
    wrong = []
    for row in rows:
        key = (
            row["src_ip"],
            int(row["src_port"]),
            row["dst_ip"],
            int(row["dst_port"]),
            int(row["protocol"]),
        )
        flow = seen[key]
        if not flow.src and not flow.dst:
            continue  # no payload captured: the port rules decide, not detectors
        got = inspect(key[4], key[1], key[3], flow.src, flow.dst)
        if not CATEGORY_OK[row["category"]](got):
            wrong.append((key, row["category"], got["app"], got["activity"]))
    assert not wrong


MINER_AGENTS = ["cpuminer", "cgminer", "bfgminer", "sgminer", "ccminer", "xmrig", "xmr-stak",
                "rhminer", "ethminer", "nheqminer"]
agent_pieces = st.one_of(
    st.sampled_from([*MINER_AGENTS, "miner", "xmr", "Mozilla/5.0", "X11", "mminer", "xxmrig"]),
    st.text(st.sampled_from("mMxXinerINER/.-_ 0123456789"), max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(agent_pieces, max_size=8), upper=st.lists(st.booleans(), max_size=64))
def test_http_miner_agents_match_a_plain_substring_search(pieces, upper):
    agent = "".join(pieces)
    # Any letter may come in either case: the headers are read case-insensitively.
    agent = "".join(c.upper() if i < len(upper) and upper[i] else c for i, c in enumerate(agent))
    request = f"GET / HTTP/1.1\r\nHost: a.example\r\nUser-Agent: {agent}\r\n\r\n".encode()
    expected = "mining" if any(m in agent.strip().lower() for m in MINER_AGENTS) else "unknown"
    assert inspect(TCP, 50000, 80, request)["activity"] == expected
