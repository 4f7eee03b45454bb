"""Reference for the native TLS ClientHello server-name extraction
(detectors.hpp ``tls_client_hello_sni``), written with ``struct``."""

from __future__ import annotations

import struct

MAX_NAME = 253


def client_hello_sni(data: bytes) -> str | None:
    """The first host_name of the first server_name extension, lowercased."""
    if len(data) < 9 or data[0] != 0x16 or data[1] != 3 or data[2] > 4:
        return None
    (record_len,) = struct.unpack_from("!H", data, 3)
    hs_len = int.from_bytes(data[6:9], "big")
    if data[5] != 1 or record_len < 4 or record_len > 16384 + 2048 or hs_len < 38:
        return None
    end = min(5 + record_len, 9 + hs_len, len(data))
    body = data[:end]
    pos = 9 + 2 + 32
    try:
        (sid_len,) = struct.unpack_from("!B", body, pos)
        pos += 1 + sid_len
        (cs_len,) = struct.unpack_from("!H", body, pos)
        pos += 2 + cs_len
        (comp_len,) = struct.unpack_from("!B", body, pos)
        pos += 1 + comp_len
        (ext_total,) = struct.unpack_from("!H", body, pos)
    except struct.error:
        return None
    pos += 2
    ext_end = min(pos + ext_total, end)
    while pos + 4 <= ext_end:
        ext_type, ext_len = struct.unpack_from("!HH", body, pos)
        pos += 4
        if ext_type != 0:
            pos += ext_len
            continue
        limit = min(pos + ext_len, ext_end)
        if pos + 2 > limit:
            return None
        (list_len,) = struct.unpack_from("!H", body, pos)
        list_end = min(pos + 2 + list_len, limit)
        pos += 2
        while pos + 3 <= list_end:
            name_type, name_len = struct.unpack_from("!BH", body, pos)
            pos += 3
            if pos + name_len > list_end:
                return None
            if name_type == 0:
                name = body[pos : pos + name_len]
                if not 0 < len(name) <= MAX_NAME or any(b < 0x21 or b > 0x7E for b in name):
                    return None
                return name.decode("ascii").lower()
            pos += name_len
        return None
    return None


def build_client_hello(
    names: list[tuple[int, bytes]],
    *,
    before: list[tuple[int, bytes]] = (),
    after: list[tuple[int, bytes]] = (),
    session_id: bytes = b"",
    ciphers: bytes = b"\x13\x01\x13\x02",
    record_version: int = 0x0301,
) -> bytes:
    """A ClientHello record whose server_name extension lists `names`
    ((type, bytes) pairs), with other extensions before and after it."""
    entries = b"".join(struct.pack("!BH", t, len(n)) + n for t, n in names)
    sni = struct.pack("!H", len(entries)) + entries
    exts = [*before, (0, sni), *after]
    ext_bytes = b"".join(struct.pack("!HH", t, len(d)) + d for t, d in exts)
    body = (
        b"\x03\x03"
        + bytes(range(32))
        + bytes([len(session_id)])
        + session_id
        + struct.pack("!H", len(ciphers))
        + ciphers
        + b"\x01\x00"
        + struct.pack("!H", len(ext_bytes))
        + ext_bytes
    )
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 0x16, record_version, len(hs)) + hs
