"""Writes the seed corpus of every harness from the real captures and data
files (run from the repository root; the result is committed under
fuzz/corpus/, where the fuzzers also keep what they find).

    python fuzz/seeds.py [--fixtures /path/to/shared/fixtures]

Seeds are small on purpose: the first records of each capture (cut at a
record boundary), one flow's payloads per detector seed, one line per
text seed. Captures are read from tests/data/pcap and, when --fixtures is
given, from the permissively licensed captures of its protocols/ folder
(their licence notices are copied to fuzz/corpus/licenses/).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import re
import shutil
import struct
import sys
from pathlib import Path

from nkclass.flows.pcap import read_pcap

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fuzz" / "corpus"
PERMISSIVE = {"BSD-3-Clause", "MIT", "Apache-2.0", "Unlicense", "NCSA"}
MAX_CAPTURE_SEED = 12 << 10
# Meter header bytes (see fuzz/harnesses/meter.cpp): default-like, tiny
# table with 7-byte payloads fed in 3-byte chunks, 1-flow memory bound.
METER_HEADERS = [bytes([0x1C, 0x57]), bytes([0x02, 0x02]), bytes([0x24, 0x44])]


def write(harness: str, data: bytes) -> None:
    folder = CORPUS / harness
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def capture_prefix(data: bytes, limit: int) -> bytes:
    """The header and the first whole records of a pcap or pcapng file that
    fit in `limit` bytes."""
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        at = 0
        while at + 12 <= len(data):
            size = struct.unpack(order + "I", data[at + 4 : at + 8])[0]
            if size < 12 or at + size > limit:
                break
            at += size
        return data[:at]
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    at = 24
    while at + 16 <= len(data):
        caplen = struct.unpack(order + "I", data[at + 8 : at + 12])[0]
        if at + 16 + caplen > limit:
            break
        at += 16 + caplen
    return data[:at]


def captures(fixtures: Path | None) -> list[Path]:
    """The captures to seed from; copies the licence notices of their
    source repositories to corpus/licenses/."""
    licenses = CORPUS / "licenses"
    licenses.mkdir(parents=True, exist_ok=True)
    ours = ROOT / "tests" / "data" / "pcap"
    found = sorted(ours.glob("*.pcap"))
    for notice in (ours / "licenses").iterdir():
        shutil.copyfile(notice, licenses / notice.name)
    if fixtures is None:
        return found
    repos = set()
    with open(fixtures / "protocols" / "SOURCES.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["license"] in PERMISSIVE:
                found.append(fixtures / "protocols" / row["file"])
                repos.add(row["repo"].split("/")[1])
    for notice in (fixtures / "licenses").iterdir():
        if notice.name.split(".")[0] in repos:  # zeek.COPYING, arkime.NOTICE, ...
            shutil.copyfile(notice, licenses / notice.name)
    return found


def flow_seeds(path: Path) -> None:
    """Detector seeds: each flow's payloads in the detect harness's layout,
    and the raw sides for the single-detector harnesses."""
    for batch in read_pcap(path, payload_bytes=512, errors="skip"):
        protocol = batch.column("protocol").to_numpy()
        sport = batch.column("src_port").to_numpy()
        dport = batch.column("dst_port").to_numpy()
        src = batch.column("src_payload").to_pylist()
        dst = batch.column("dst_payload").to_pylist()
        for i in range(batch.num_rows):
            if not src[i] and not dst[i]:
                continue
            selector = {6: 0, 17: 1}.get(int(protocol[i]), int(protocol[i]) | 0x81)
            head = struct.pack(">BHHH", selector, int(sport[i]), int(dport[i]), len(src[i]))
            write("detect", head + src[i] + dst[i])
            for side in (src[i], dst[i]):
                if side[:1] == b"\x16":
                    write("tls_sni", side)
                if side[:1] in (b"{", b" ", b"\n"):
                    write("stratum", side)


def address_seeds() -> None:
    texts = ["0.0.0.0", "175.45.176.9", "255.255.255.255", "::", "::1", "2001:db8::1",
             "::ffff:175.45.176.9", "1:2:3:4:5:6:7:8", "fe80::1:2", "::ffff:0:0/96",
             "175.45.176.0/22", "2001:db8::/32", "::ffff:1.2.3.0/120", "1.2.3.4/0", "64:ff9b::/96"]
    from nkclass.rules import load_rules

    rules = load_rules()
    texts += [p for w in rules.watched for p in w.prefixes]
    texts += [p for n in rules.networks for p in n.prefixes][:40]
    for text in texts:
        write("ip_text", text.encode())


def rules_seeds() -> None:
    """Each table of the default ruleset on its own (small inputs keep the
    fuzzer fast), and the shapes of past problems."""
    text = (ROOT / "nkclass" / "rules" / "builtin" / "default.toml").read_text()
    blocks = re.split(r"\n(?=\[)", text)
    for block in blocks:
        if block.lstrip().startswith("["):
            write("rules", block.strip().encode() + b"\n")
    write("rules", b'[[network]]\nservice = "s"\ncategory = "tor"\nprefix_file = "list.txt"\n')
    write("rules", b'[[watched]]\nname = "x"\nprefixes = ["1.2.3.0/24", "::ffff:1.2.3.0/120"]\n')
    write("rules", b"a = " + b"[" * 40 + b"]" * 40 + b"\n")


def compiled_ruleset_seeds() -> None:
    """The small test ruleset compiled, without the AS stage and with it
    (the RouteViews sample as its IP-to-AS table), each without and with the
    test dated lists (pool and VPN endpoints), as it is and with the
    harness fixing its length and checksum (first byte; see
    fuzz/harnesses/capi_ruleset.cpp)."""
    from nkclass.classify import Classifier
    from nkclass.lists import read_dated_list
    from nkclass.rules import load_rules

    rules = load_rules(ROOT / "tests" / "data" / "rules" / "small.toml", defaults=False)
    lists = ROOT / "tests" / "data" / "lists"
    dated = rules.with_dated_lists(
        read_dated_list(lists / "mining-pools.csv", "csv", service="pool-endpoints",
                        category="mining"),
        read_dated_list(lists / "vpn-endpoints.tsv", "csv", service="vpn-endpoints",
                        category="vpn"))
    table = ROOT / "tests" / "data" / "asn" / "routeviews-sample.pfx2as"
    for ruleset in (rules, dated):
        for asn in (False, table):
            data = Classifier(ruleset, asn=asn).compiled_bytes()
            for fix in (0, 1):
                write("capi_ruleset", bytes([fix]) + data)


def text_seeds() -> None:
    for path in sorted((ROOT / "tests" / "data" / "flows").iterdir()):
        if path.suffix in (".csv", ".log", ".json", ".jsonl"):
            # One byte picks the reader (see fuzz/python/text_readers.py).
            kind = {".csv": 0, ".log": 1, ".json": 2, ".jsonl": 3}[path.suffix]
            write("text_readers", bytes([kind]) + path.read_bytes()[:8192])


def export_seeds() -> None:
    """The first datagrams of each export capture of tests/data/export, in
    the export harness's layout (config byte 0x3E: 65536 templates, 30 min,
    512 payload bytes; then length, time step, exporter, datagram)."""
    for path in sorted((ROOT / "tests" / "data" / "export").glob("*.pcap")):
        data = path.read_bytes()
        grams, at = [], 24  # little-endian microsecond pcap, Ethernet/IPv4/UDP frames
        while at + 16 <= len(data) and len(grams) < 3:
            caplen = struct.unpack_from("<I", data, at + 8)[0]
            grams.append(data[at + 16 + 42:at + 16 + caplen])
            at += 16 + caplen
        write("export", bytes([0x3E]) + b"".join(
            struct.pack("!HBB", len(g), 1, 1) + g for g in grams))
    # sFlow v5: a flow sample of a real frame (raw header record) and a
    # counter sample.
    data = (ROOT / "tests" / "data" / "pcap" / "mining-monero-stratum.pcap").read_bytes()
    caplen = struct.unpack_from("<I", data, 24 + 8)[0]
    frame = data[24 + 16:24 + 16 + caplen][:128]
    raw = struct.pack("!IIII", 1, caplen + 4, 4, len(frame)) + frame + b"\0" * (-len(frame) % 4)
    flow = struct.pack("!IIIIIIII", 1, 3, 512, 5120, 0, 1, 2, 1) + struct.pack(
        "!II", 1, len(raw)) + raw
    counters = struct.pack("!III", 1, 3, 0)
    sflow = struct.pack("!II4sIIII", 5, 1, bytes([192, 0, 2, 1]), 0, 1, 1000, 2) + \
        struct.pack("!II", 1, len(flow)) + flow + struct.pack("!II", 2, len(counters)) + counters
    write("export", bytes([0x3E]) + struct.pack("!HBB", len(sflow), 1, 1) + sflow)


def share_seeds() -> None:
    """Stratum sessions with share submissions, which no stored capture
    has: the start of the demo's planted-miner capture for the meter, and
    its kinds of lines (and stratum v1 ones) for the share counter."""
    from nkclass.demo.mining import mining_capture

    data = capture_prefix(mining_capture(), MAX_CAPTURE_SEED)
    for header in METER_HEADERS:
        write("meter", header + data)
    write("stratum", b'{"id":1,"method":"mining.subscribe","params":[]}\n'
          b'{"params": [2048], "id": null, "method": "mining.set_difficulty"}\n'
          b'{"params": ["w", "1", "00", "5", "6"], "id": 4, "method": "mining.submit"}\n')
    write("stratum", b'{"jsonrpc":"2.0","method":"job","params":{"blob":"0707","job_id":"1",'
          b'"target":"711b0d00"}}\n{"id":2,"jsonrpc":"2.0","method":"submit",'
          b'"params":{"nonce":"a","result":"ff"}}\r\n')
    write("stratum", b'{"id":1,"result":{"job":{"target":"0000000000b8ffff"}},"error":null}\n')


def tunnel_seeds() -> None:
    """Meter seeds of the tunnels no fixture carries IP in: L2TPv2 data
    messages with every optional field, over IPv4 and IPv6, with IPv4 and
    IPv6 inside, and control and LCP messages that stay outer flows; L2TPv3
    Ethernet pseudowires over IP and UDP with cookies of 0, 4 and 8 bytes,
    and a control message (built with the decapsulation tests' frame
    helpers)."""
    sys.path.insert(0, str(ROOT))
    from tests.unit.test_decapsulation import (
        INNER,
        V6A,
        V6B,
        A,
        B,
        eth,
        ipv4,
        ipv6,
        l2tp,
        l2tpv3,
        udp,
    )
    from tests.unit.test_pcap_meter import write_pcap

    frames = [
        eth(ipv4(A, B, 17, l2tp(b"\xff\x03\x00\x21" + INNER, length=True, seq=(1, 2), offset=2))),
        eth(ipv4(A, B, 17, l2tp(b"\x21" + INNER))),
        eth(ipv4(A, B, 17, l2tp(b"\xff\x03\x00\x57" + ipv6(V6A, V6B, 17, udp(5000, 53, b"q"))))),
        eth(ipv4(A, B, 17, l2tp(b"\x00" * 20, length=True, seq=(0, 0), control=True))),
        eth(ipv6(V6A, V6B, 17, l2tp(b"\xff\x03\xc0\x21\x01\x01\x00\x04", sport=1701))),
    ]
    data = write_pcap([(1.0 + i, f) for i, f in enumerate(frames)])
    for header in METER_HEADERS:
        write("meter", header + data)
    inner6 = eth(ipv6(V6A, V6B, 17, udp(5000, 53, b"q")), 0x86DD)
    frames = [
        eth(ipv4(A, B, 115, l2tpv3(eth(INNER)))),
        eth(ipv4(A, B, 115, l2tpv3(eth(INNER, vlans=[(0x8100, 3)]), cookie=b"\x01" * 4))),
        eth(ipv6(V6A, V6B, 115, l2tpv3(inner6, cookie=b"\x02" * 8))),
        eth(ipv4(A, B, 17, l2tpv3(eth(INNER), cookie=b"\x03" * 4, udp_ports=(50000, 1701)))),
        eth(ipv4(A, B, 17, l2tpv3(b"\x00" * 20, udp_ports=(1701, 1701), control=True))),
    ]
    data = write_pcap([(1.0 + i, f) for i, f in enumerate(frames)])
    for header in METER_HEADERS:
        write("meter", header + data)


def dns_tunnel_seeds() -> None:
    """Detect seeds of an iodine-style query over UDP (with its response) and
    a dnscat2-style one over TCP, for the DNS tunnelling stage (built with
    its tests' helpers)."""
    sys.path.insert(0, str(ROOT))
    from tests.unit.test_dns_tunnel import NULL, TXT, dnscat2_name, iodine_name, query, response

    rng = random.Random(5)
    udp = query(iodine_name(rng, "t1.tunnel.example").encode(), NULL)
    write("detect", bytes([1]) + struct.pack("!HHH", 40000, 53, len(udp)) + udp + response(udp))
    tcp = query(dnscat2_name(rng, "c2.example.net").encode(), TXT, tcp=True)
    write("detect", bytes([0]) + struct.pack("!HHH", 40001, 53, len(tcp)) + tcp)


def group_merge_seeds() -> None:
    """Group-merge seeds (layout in fuzz/harnesses/group_merge.cpp): rows
    sharing keys with valid sets of both widths, some damaged, some raw,
    and sums that overflow together."""
    rng = random.Random(9)
    for _ in range(12):
        rows = rng.randint(1, 8)
        data = bytearray([rows - 1])
        for _ in range(rows):
            data += bytes([rng.choice([0, 1, 4, 8]), rng.choice([1, 7, 255])])
            for _ in range(4):
                mode = rng.choice([0, 1, 2, 2, 2, 3])
                values = [rng.randrange(1 << 16) for _ in range(rng.randint(0, 20))]
                data.append(mode)
                if mode == 1:
                    data += bytes([8]) + rng.randbytes(8)
                elif mode >= 2:
                    data.append(len(values))
                    data += b"".join(v.to_bytes(2, "big") for v in values)
                    if mode == 3:
                        data += bytes([rng.randrange(256), rng.randint(1, 255)])
        write("group_merge", bytes(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, help="the shared fixtures folder")
    args = parser.parse_args()
    for path in captures(args.fixtures):
        data = path.read_bytes()
        for header in METER_HEADERS:
            write("meter", header + capture_prefix(data, MAX_CAPTURE_SEED))
        flow_seeds(path)
    address_seeds()
    rules_seeds()
    compiled_ruleset_seeds()
    text_seeds()
    export_seeds()
    share_seeds()
    tunnel_seeds()
    dns_tunnel_seeds()
    group_merge_seeds()
    for folder in sorted(CORPUS.iterdir()):
        if folder.is_dir() and folder.name != "licenses":
            files = list(folder.iterdir())
            size = sum(f.stat().st_size for f in files)
            print(f"{folder.name}: {len(files)} seeds, {size} bytes")


if __name__ == "__main__":
    main()
