"""Real protocol payloads for the synthetic dataset, built once per name.

Each builder returns a :class:`Template`: the bytes plus the spans that are
randomised per flow (TLS random and session id, DNS transaction id). The
generator copies a template into every flow that uses it and overwrites the
spans from a per-flow nonce, so payloads stay valid and vary without any
per-flow Python.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

#: Bytes of per-flow randomness a template may draw from (nonce offsets < this).
NONCE_BYTES = 64


@dataclass(frozen=True)
class Template:
    data: bytes
    #: (offset in data, offset in the flow's nonce, length) spans to randomise.
    patches: tuple[tuple[int, int, int], ...] = ()


# A 2017-2019 browser's offer: TLS 1.3 + 1.2 AEAD suites, then CBC fallbacks.
_CIPHER_SUITES = (
    0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9,
    0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035, 0x000A,
)  # fmt: skip


def _fill(data: bytes, spans: tuple[tuple[int, int], ...]) -> bytes:
    """Fill (offset, length) spans with bytes derived from the data itself
    (deterministic, different per host name)."""
    out = bytearray(data)
    digest = hashlib.sha256(data).digest()
    for offset, length in spans:
        out[offset : offset + length] = (digest * 2)[:length]
    return bytes(out)


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def tls_client_hello(sni: str) -> Template:
    """A TLS 1.2-record ClientHello offering TLS 1.3/1.2 with ``sni`` in a
    server_name extension (RFC 8446 4.1.2, RFC 6066 3)."""
    host = sni.encode("ascii")
    server_name = struct.pack("!HBH", len(host) + 3, 0, len(host)) + host
    groups = struct.pack("!H3H", 6, 0x001D, 0x0017, 0x0018)
    sig_algs = struct.pack("!H8H", 16, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501,
                           0x0806, 0x0601)  # fmt: skip
    alpn_names = b"\x02h2\x08http/1.1"
    extensions = b"".join(
        (
            _ext(0x0000, server_name),
            _ext(0x0017, b""),  # extended_master_secret
            _ext(0xFF01, b"\x00"),  # renegotiation_info
            _ext(0x000A, groups),  # supported_groups
            _ext(0x000B, b"\x01\x00"),  # ec_point_formats: uncompressed
            _ext(0x0023, b""),  # session_ticket
            _ext(0x0010, struct.pack("!H", len(alpn_names)) + alpn_names),
            _ext(0x000D, sig_algs),  # signature_algorithms
            _ext(0x002B, b"\x04\x03\x04\x03\x03"),  # supported_versions 1.3, 1.2
        )
    )
    suites = struct.pack(f"!H{len(_CIPHER_SUITES)}H", 2 * len(_CIPHER_SUITES), *_CIPHER_SUITES)
    body = (
        b"\x03\x03"  # legacy_version TLS 1.2
        + bytes(32)  # random (patched)
        + b"\x20"
        + bytes(32)  # legacy_session_id (patched)
        + suites
        + b"\x01\x00"  # compression: null
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    record = b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake
    # record(5) + handshake header(4) + version(2) = 11: random; +32 +1: session id.
    # The last 8 bytes of each vary per flow; the rest are fixed per template.
    return Template(_fill(record, ((11, 24), (44, 24))), ((35, 0, 8), (68, 8, 8)))


def tls_server_hello() -> Template:
    """A TLS 1.2 ServerHello choosing ECDHE-RSA-AES128-GCM-SHA256."""
    extensions = _ext(0xFF01, b"\x00") + _ext(0x0017, b"")
    body = (
        b"\x03\x03"
        + bytes(32)
        + b"\x20"
        + bytes(32)
        + b"\xc0\x2f\x00"
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x02" + len(body).to_bytes(3, "big") + body
    record = b"\x16\x03\x03" + struct.pack("!H", len(handshake)) + handshake
    return Template(_fill(record, ((11, 24), (44, 24))), ((35, 16, 8), (68, 24, 8)))


_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/63.0.3239.132 Safari/537.36"
)


def http_request(host: str, path: str = "/") -> Template:
    text = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {_USER_AGENT}\r\n"
        "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n"
        "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"
    )
    return Template(text.encode("ascii"))


def http_response() -> Template:
    text = (
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Length: 5120\r\nConnection: keep-alive\r\n\r\n"
    )
    return Template(text.encode("ascii"))


def _qname(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.split(".")) + b"\x00"


def dns_query(name: str) -> Template:
    """A recursive A query (RFC 1035 4.1); the transaction id is patched."""
    header = struct.pack("!HHHHHH", 0, 0x0100, 1, 0, 0, 0)
    return Template(header + _qname(name) + struct.pack("!HH", 1, 1), ((0, 0, 2),))


def dns_response(name: str, *addresses: int) -> Template:
    """The answer to :func:`dns_query`: one A record per address (TTL 300
    s), same transaction id."""
    header = struct.pack("!HHHHHH", 0, 0x8180, 1, len(addresses), 0, 0)
    question = _qname(name) + struct.pack("!HH", 1, 1)
    answers = b"".join(struct.pack("!HHHIHI", 0xC00C, 1, 1, 300, 4, a) for a in addresses)
    return Template(header + question + answers, ((0, 0, 2),))


XMRIG_AGENT = "XMRig/5.11.1 (Linux x86_64) libuv/1.34.0 gcc/9.2.0"


def stratum_login(wallet: str) -> Template:
    """An XMRig stratum (JSON-RPC over TCP) login, one line."""
    line = (
        '{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"' + wallet + '","pass":"x",'
        '"agent":"' + XMRIG_AGENT + '","algo":["rx/0","cn/r"]}}\n'
    )
    return Template(line.encode("ascii"))


def stratum_job(job_seed: int) -> Template:
    """A pool's login result carrying the first job (blob, job_id, target)."""
    blob = (f"{job_seed:016x}" * 10)[:152]
    rid = f"{job_seed & 0xFFFFFFFF:08x}"
    job_id = f"{job_seed * 7919 & 0xFFFFFFFFFFFF:012x}"
    line = (
        '{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"'
        + rid
        + '","job":{"blob":"'
        + blob
        + '","job_id":"'
        + job_id
        + '","target":"b88d0600","algo":"rx/0",'
        '"height":1890000},"extensions":["algo","keepalive"],"status":"OK"}}\n'
    )
    return Template(line.encode("ascii"))


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def monero_wallet(index: int) -> str:
    """A 95-character Monero-style address (starts with 4), deterministic."""
    x = (index + 1) * 0x9E3779B97F4A7C15
    chars = ["4", "8"]
    for _ in range(93):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        chars.append(_B58[(x >> 33) % 58])
    return "".join(chars)
