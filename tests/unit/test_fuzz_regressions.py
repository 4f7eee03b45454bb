"""Every input in fuzz/regressions/ (past crashes and hostile inputs, see
fuzz/README.md) replayed through the Python API, with the property its
harness checks: .ci/fuzz replays them through the native harnesses under
the sanitizers as well."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import nkclass
from nkclass import InputError, RuleError, _core
from nkclass.labels import ACTIVITIES, APPS
from nkclass.rules import load_rules

REGRESSIONS = Path(__file__).resolve().parents[2] / "fuzz" / "regressions"


def inputs(harness: str) -> list[Path]:
    folder = REGRESSIONS / harness
    return sorted(folder.iterdir()) if folder.is_dir() else []


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_every_harness_folder_is_known():
    known = {"meter", "detect", "tls_sni", "stratum", "ip_text", "rules", "text_readers"}
    assert {p.name for p in REGRESSIONS.iterdir() if p.is_dir()} <= known
    assert inputs("meter") and inputs("detect") and inputs("rules")


# ------------------------------------------------------------------ meter

# The header layout of fuzz/harnesses/meter.cpp.
PAYLOAD = (0, 1, 7, 64, 512, 1500, 65535, 512)
FLOWS = (1, 3, 64, 1_000_000)
MEMORY_FLOWS = (0, 1, 2, 3, 8, 64, 1024, 0)
CHUNK = (1, 2, 3, 7, 64, 1000, 4096, 1 << 20)
TIMEOUT = (1, 1000, 120_000, 1 << 62)


def meter_config(a: int, b: int) -> dict:
    payload = PAYLOAD[a & 7]
    config = {"payload_bytes": payload, "max_flows": FLOWS[(a >> 3) & 3],
              "idle_timeout_ms": TIMEOUT[(b >> 3) & 3],
              "active_timeout_ms": TIMEOUT[(b >> 5) & 3]}
    if MEMORY_FLOWS[a >> 5]:
        config["max_memory_bytes"] = (MEMORY_FLOWS[a >> 5] * _core.meter_peak_flow_bytes(payload)
                                      + (320 if a & 0x20 else 0))
    return config


def run_meter(config: dict, data: bytes, chunk: int) -> tuple[list, dict, dict]:
    meter = _core.FlowMeter(**config)
    drained = []
    for at in range(0, len(data), chunk):
        meter.feed(data[at : at + chunk])
        drained.append(meter.drain(5))
        while len(drained[-1]["packets"]):
            drained.append(meter.drain(5))
    status = meter.finish()
    drained.append(meter.drain(1 << 30))
    rows = []
    for cols in drained:
        (sp, so), (dp, do) = cols["src_payload"], cols["dst_payload"]
        for i in range(len(cols["packets"])):
            rows.append((int(cols["ts_start"][i]), bytes(cols["src_ip"][i]),
                         bytes(cols["dst_ip"][i]), int(cols["packets"][i]),
                         int(cols["bytes"][i]), bytes(sp[so[i] : so[i + 1]]),
                         bytes(dp[do[i] : do[i + 1]])))
    return rows, status, meter.counters()


@pytest.mark.parametrize("path", inputs("meter"), ids=ids(inputs("meter")))
def test_meter_regressions(path):
    data = path.read_bytes()
    a, b, capture = (data + b"\0\0")[0], (data + b"\0\0")[1], data[2:]
    config = meter_config(a, b)
    rows, status, counters = run_meter(config, capture, max(1, len(capture)))
    pieces, status_pieces, counters_pieces = run_meter(config, capture, CHUNK[b & 7])
    assert (rows, status) == (pieces, status_pieces)
    assert counters == counters_pieces
    assert sum(r[3] for r in rows) == (counters["packets"] - counters["non_ip"]
                                       - counters["malformed"])
    assert all(r[4] <= r[3] * 262144 for r in rows)
    assert counters["peak_memory_bytes"] <= config.get("max_memory_bytes", 2**31)


# ------------------------------------------------------------------ payload detectors


@pytest.fixture(scope="module")
def inspector():
    return _core.PayloadInspector(["example.com", "pool.example", "torproject.org"],
                                  np.array([1, 2, 3], np.uint32), np.array([1, 2, 3], np.uint8))


def check_detection(found: dict) -> None:
    assert found["app"] in APPS and found["activity"] in ACTIVITIES
    name = found["server_name"]
    assert name is None or (0 < len(name) <= 253 and name == name.lower()
                            and all(0x21 <= ord(c) <= 0x7E for c in name))


@pytest.mark.parametrize("path", inputs("detect"), ids=ids(inputs("detect")))
def test_detect_regressions(path, inspector):
    data = path.read_bytes() + bytes(7)
    selector, sport, dport, src_len = struct.unpack(">BHHH", data[:7])
    protocol = 6 if selector % 2 == 0 else 17 if selector < 0x80 else selector
    body = path.read_bytes()[7:]
    src, dst = body[:src_len], body[src_len:]
    check_detection(inspector.inspect(protocol, sport, dport, src, dst))


@pytest.mark.parametrize("path", inputs("tls_sni") + inputs("stratum"),
                         ids=ids(inputs("tls_sni") + inputs("stratum")))
def test_single_detector_regressions(path, inspector):
    data = path.read_bytes()
    check_detection(inspector.inspect(6, 50000, 443, data, b""))


# ------------------------------------------------------------------ text


@pytest.mark.parametrize("path", inputs("ip_text"), ids=ids(inputs("ip_text")))
def test_address_text_regressions(path):
    text = path.read_bytes().decode("latin-1")
    try:
        parsed = nkclass.PrefixTable([text], [1])
    except ValueError:
        return
    # Accepted text is an address or prefix in canonical syntax, nothing else.
    assert set(text) <= set("0123456789abcdefABCDEF:./"), text
    assert parsed.memory_bytes > 0


@pytest.mark.parametrize("path", inputs("rules"), ids=ids(inputs("rules")))
def test_rules_regressions(path, tmp_path):
    ruleset = tmp_path / "rules" / path.name
    ruleset.parent.mkdir()
    ruleset.write_bytes(path.read_bytes())
    try:
        nkclass.Classifier(load_rules(ruleset, defaults=False))
    except RuleError as exc:
        assert exc.path is not None


TEXT_FORMATS = ("nfdump-csv", "zeek-tsv", "zeek-json", "pmacct-json", "goflow2-json", None)


@pytest.mark.parametrize("path", inputs("text_readers"), ids=ids(inputs("text_readers")))
def test_text_reader_regressions(path, tmp_path):
    data = path.read_bytes() or b"\0"
    fmt = TEXT_FORMATS[(data[0] & 7) % len(TEXT_FORMATS)]
    errors = "skip" if data[0] & 8 else "raise"
    flows = tmp_path / "flows.txt"
    flows.write_bytes(data[1:])
    try:
        for _ in nkclass.read(flows, format=fmt, errors=errors):
            pass
    except InputError as exc:
        assert exc.path == str(flows)
