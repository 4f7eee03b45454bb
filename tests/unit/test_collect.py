"""The live collector on loopback (127.0.0.1 only, bounded in count and
time): real export datagrams in, classified hive-partitioned Parquet out,
counters for what was received, decoded, missed and dropped; the
``nkclass collect`` command stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dpkt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nkclass
from nkclass.collect import Collector, parse_listen
from nkclass.demo.exports import ipfix_datagrams, send_paced, template_datagram

EXPORT = Path(__file__).resolve().parents[1] / "data" / "export"
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="live collection needs Linux")


def real_datagrams(name: str) -> list[bytes]:
    with open(EXPORT / name, "rb") as fh:
        return [bytes(dpkt.ethernet.Ethernet(buf).data.data.data)
                for _, buf in dpkt.pcap.Reader(fh)]


def send(port: int, datagrams: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, ("127.0.0.1", port))


def poll_until(collector: Collector, datagrams: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while collector.counters["datagrams"] < datagrams and time.monotonic() < deadline:
        collector.poll(0.05)


def test_listen_addresses_are_udp_urls_and_bad_ones_are_named():
    assert parse_listen("udp://0.0.0.0:2055") == ("0.0.0.0", 2055)
    assert parse_listen("udp://[::1]:4739") == ("::1", 4739)
    for bad in ("tcp://0.0.0.0:2055", "udp://0.0.0.0", "0.0.0.0:2055", "udp://h:99999"):
        with pytest.raises(ValueError, match="udp://HOST:PORT"):
            parse_listen(bad)
    with pytest.raises(OSError, match="not-an-address"):
        Collector("udp://not-an-address:0", classifier=None)


def test_real_exports_on_two_ports_are_classified_into_hour_partitions_renamed_when_done(
        tmp_path):
    clf = nkclass.Classifier(asn=False)
    with Collector(["udp://127.0.0.1:0", "udp://127.0.0.1:0"], tmp_path, classifier=clf) as c:
        v5, ipfix = real_datagrams("netflow-v5.pcap"), real_datagrams("ipfix.pcap")
        send(c.ports[0], v5)
        send(c.ports[1], ipfix)
        poll_until(c, len(v5) + len(ipfix))
        # before the flush only hidden temporary files exist
        assert not list(tmp_path.rglob("*.parquet"))
    counters = c.counters
    assert counters["datagrams"] == 14 and counters["kernel_drops"] == 0
    assert counters["records"] == counters["records_written"] == 47 + 49
    assert counters["recvmmsg_batches"] >= 1
    files = sorted(tmp_path.rglob("*.parquet"))
    assert files and not list(tmp_path.rglob(".*.tmp"))
    for f in files:
        assert f.parent.name.startswith("hour=") and f.parent.parent.name.startswith("date=")
    table = pq.read_table(tmp_path)  # hive partitions as columns
    assert table.num_rows == 96 and {"date", "hour", "activity", "exporter"} <= set(
        table.column_names)
    acts = table.filter(pa.compute.equal(table["dst_port"], 3333))["activity"].to_pylist()
    assert acts and set(acts) == {"mining_suspect"}
    hours = {(f.parent.parent.name, f.parent.name) for f in files}
    starts = table["ts_start"].to_pylist()
    assert hours == {(f"date={t:%Y-%m-%d}", f"hour={t:%H}") for t in starts}


def test_data_before_templates_and_garbage_are_counted_not_fatal():
    with Collector("udp://127.0.0.1:0", classifier=None) as c:
        data = ipfix_datagrams(64, seed=3)
        send(c.ports[0], [data[0], b"\x00\x0a\x00", b"junk" * 10, template_datagram(), *data])
        poll_until(c, 5)
        table = c.take()
    counters = c.counters
    assert counters["template_misses"] == 1 and counters["decode_errors"] == 1
    assert counters["unknown_version"] == 1 and table.num_rows == 64


def test_loopback_load_of_250k_records_per_second_loses_nothing():
    """About 1.3 s of IPFIX at 250,000 records/s (7,813 datagrams/s) into a
    collector polling on its own thread."""
    records, per = 320_000, 32
    datagrams = [template_datagram(), *ipfix_datagrams(records, per_datagram=per, seed=5)]
    clf = nkclass.Classifier(asn=False)
    with Collector("udp://127.0.0.1:0", classifier=clf, rcvbuf=8 << 20) as c:
        stop = threading.Event()
        runner = threading.Thread(target=c.run, args=(stop,))
        runner.start()
        seconds = send_paced(c.ports[0], datagrams, rate=250_000 / per)
        deadline = time.monotonic() + 10
        while c.counters["records"] < records and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        runner.join()
        counters = c.counters
        table = c.take()
    assert records / seconds >= 200_000
    assert counters["kernel_drops"] == 0, counters
    assert counters["records"] == table.num_rows == records
    assert counters["recvmmsg_batches"] < counters["datagrams"]  # batching happened


def test_a_burst_past_the_socket_buffer_is_counted_as_kernel_drops():
    datagrams = [template_datagram(), *ipfix_datagrams(32 * 4000, seed=6)]
    with Collector("udp://127.0.0.1:0", classifier=None, rcvbuf=4096) as c:
        send(c.ports[0], datagrams)  # nobody reads meanwhile: the buffer overflows
        while c.poll(0.2) > 0:
            pass
        # The kernel stamps its drop count on the datagrams queued after the
        # drops: the next ones report it.
        later = ipfix_datagrams(32 * 4, seed=7)
        send(c.ports[0], later)
        while c.poll(0.2) > 0:
            pass
        counters = c.counters
    sent = len(datagrams) + len(later)
    assert counters["kernel_drops"] > sent // 2
    # Each datagram carries the drop count as of its own queueing, so the
    # last one received may miss a drop or two that came after it.
    assert 0 <= sent - (counters["datagrams"] + counters["kernel_drops"]) <= 2


def test_collect_command_writes_partitions_and_stops_cleanly_on_sigterm(tmp_path):
    out = tmp_path / "flows"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nkclass", "collect", "--listen", f"udp://127.0.0.1:{port}",
         "-o", str(out), "--rotate", "5m", "--no-asn", "--progress", "0.2s"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stderr.readline()
        assert "listening on udp" in line, line
        send(port, real_datagrams("netflow-v9.pcap"))
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "kernel drops" in err and "stopped;" in err
    table = pq.read_table(out)
    reference = sum(b.num_rows for b in nkclass.read(EXPORT / "netflow-v9.pcap",
                                                     format="netflow"))
    assert table.num_rows == reference > 0
    assert "activity" in table.column_names
