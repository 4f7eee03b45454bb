"""Flow export decoding against the pure-Python ``netflow`` package, in the
same run: IPFIX records (the 10-IE template of nkclass.demo.exports, 32
records a datagram) decoded into columns, and NetFlow v5 records. Target:
10M IPFIX records/s; the guard asks for 100x ``netflow`` (which decodes
about 33k IPFIX records/s)."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

from benchmarks.conftest import measure, size
from nkclass import _core
from nkclass.demo.exports import ipfix_datagrams, template_datagram

RECORDS = size(2_000_000, 500_000)
BASELINE_RECORDS = size(64_000, 16_000)
FAMILY = "IPFIX decode (records/s)"
EXPORTER = ipaddress.IPv6Address("::ffff:127.0.0.1").packed


@pytest.fixture(scope="module")
def datagrams():
    return [template_datagram(), *ipfix_datagrams(RECORDS, seed=11)]


CHUNK = 2048  # datagrams a call (65,536 records, the collector's batch)


def _packed(datagrams):
    """Chunks of datagrams as decode_many takes them."""
    return [_pack(datagrams[at:at + CHUNK]) for at in range(0, len(datagrams), CHUNK)]


def _pack(datagrams):
    data = b"".join(datagrams)
    offsets = np.zeros(len(datagrams) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(d) for d in datagrams])
    exporters = np.frombuffer(EXPORTER * len(datagrams), dtype=np.uint8).reshape(-1, 16).copy()
    received = np.full(len(datagrams), 1_700_000_000_000, dtype=np.int64)
    return data, offsets, exporters, received


def test_ipfix_decode_nkclass(benchmark, datagrams):
    packed = _packed(datagrams)

    def run():
        dec = _core.ExportDecoder()
        records = 0
        for chunk in packed:
            dec.decode_many(*chunk)
            records += len(dec.drain(CHUNK * 32)["packets"])
        return records

    assert measure(benchmark, FAMILY, "nkclass", RECORDS, run) == RECORDS


def test_ipfix_decode_netflow_package(benchmark, datagrams):
    netflow = pytest.importorskip("netflow")
    subset = datagrams[: 1 + BASELINE_RECORDS // 32]

    def run():
        templates = {"netflow": {}, "ipfix": {}}
        return sum(len(netflow.parse_packet(d, templates).flows) for d in subset)

    assert measure(benchmark, FAMILY, "netflow", BASELINE_RECORDS, run, rounds=3) == \
        BASELINE_RECORDS


@pytest.mark.guard
def test_guard_export(registry):
    registry.guard(FAMILY, "nkclass", "netflow", 100.0, "target 10M records/s")
