"""Reports merged in column form (one native pass: sums added, roaring sets
united with CRoaring) against the group-object path they replace, and the
merged reports' pickles."""

from __future__ import annotations

import functools
import itertools
import pickle

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroaring import BitMap, BitMap64

import nkclass
from nkclass import _core
from nkclass.report import Report, aggregate
from nkclass.report.model import GroupColumns
from tests.unit.test_report import DAY, T2019, flows


@functools.cache
def classifier() -> nkclass.Classifier:
    return nkclass.Classifier()


def as_objects(report: Report) -> Report:
    """A copy of ``report`` whose groups are Group objects."""
    copy = pickle.loads(pickle.dumps(report))
    copy.groups  # noqa: B018 - turns the columns into objects
    assert copy._columns is None
    return copy


def reference_sum(reports: list[Report]) -> Report:
    """The sum the group-object path gives (Group.merge, pyroaring unions)."""
    total = Report(reports[0].bucket, reports[0].by)
    for report in reports:
        total.merge_in(as_objects(report))
    assert total._columns is None or len(total) == 0  # empty reports stay columns
    return total


def assert_same(got: Report, want: Report) -> None:
    """Equal tables, profiles, upstreams and period, and equal groups (with
    their address sets) in the same order."""
    assert got.table().equals(want.table())
    assert {k: v.tolist() for k, v in got.profiles["hour"].items()} == {
        k: v.tolist() for k, v in want.profiles["hour"].items()}
    assert got.upstreams == want.upstreams
    assert (got.first_ms, got.last_ms) == (want.first_ms, want.last_ms)
    assert list(got.groups.items()) == list(want.groups.items())


# ------------------------------------------------------------ strategies
PATHS = ("kp_range", "unicom", "none")
ACTIVITIES = ("mining", "tor", "unknown")
EXTRAS = ("tls", "dns", "stratum")


def v4_sets() -> st.SearchStrategy:
    values = st.lists(st.integers(0, 2**32 - 1), max_size=30).map(BitMap)
    # a dense run (bitset and run containers) and values around a 2^16 edge
    dense = st.tuples(st.integers(0, 2**32 - 10_000), st.integers(0, 9_000)).map(
        lambda r: BitMap(range(r[0], r[0] + r[1])))
    edge = st.lists(st.integers(65_530, 65_541), max_size=12).map(BitMap)
    runs = dense.map(lambda b: (b.run_optimize(), b)[1])
    return st.one_of(values, dense, edge, runs)


def v6_sets() -> st.SearchStrategy:
    prefixes = st.one_of(st.integers(0, 2**64 - 1), st.integers(0x2001_0db8 << 32,
                                                                (0x2001_0db8 << 32) + 50))
    return st.lists(prefixes, max_size=30).map(BitMap64)


@st.composite
def column_reports(draw, by: str | None) -> Report:
    """A report in column form as the native pass hands it over, with
    random keys (unique within the report), sums and sets: IPv4 and /64
    sets, empty serialized sets and groups without sets."""
    key = st.tuples(st.sampled_from([T2019, T2019 + DAY, T2019 + 2 * DAY]),
                    st.sampled_from(PATHS), st.sampled_from(ACTIVITIES),
                    st.sampled_from(EXTRAS) if by else st.none())
    keys = draw(st.lists(key, max_size=8, unique=True))
    sums, sizes, offsets, buffer = [], [], [], bytearray()
    for _ in keys:
        sums.append(draw(st.lists(st.integers(0, 2**40), min_size=3, max_size=3)))
        row_sizes, row_offsets = [], [len(buffer)]
        for k in range(4):
            present = draw(st.booleans())
            if present:
                values = draw(v4_sets() if k < 2 else v6_sets())
                buffer += values.serialize()
                row_sizes.append(len(values))
            else:
                row_sizes.append(0)
            row_offsets.append(len(buffer))
        sizes.append(row_sizes)
        offsets.append(row_offsets)
    report = Report("day", by)
    report.set_columns(GroupColumns(
        np.array([k[0] for k in keys], np.int64), names([k[1] for k in keys]),
        names([k[2] for k in keys]), names([k[3] for k in keys]),
        np.array(sums, np.uint64).reshape(-1, 3), np.array(sizes, np.uint64).reshape(-1, 4),
        bytes(buffer), np.array(offsets, np.int64).reshape(-1, 5)))
    return report


def names(values: list) -> np.ndarray:
    out = np.empty(len(values), object)
    out[:] = values
    return out


@st.composite
def aggregated_reports(draw, by: str | None, bucket: str) -> Report:
    """A report aggregated from random classified flows (IPv4 and IPv6
    peers, flows of no watched path, AS numbers for the upstream table)."""
    n = draw(st.integers(0, 400))
    batch = flows(n, seed=draw(st.integers(0, 2**16)), span_days=draw(st.integers(1, 20)),
                  v6_share=draw(st.sampled_from([0.0, 0.4])))
    batch["src_as"] = np.full(n, draw(st.sampled_from([4837, 20485])), np.uint32)
    batch["dst_as"] = np.zeros(n, np.uint32)
    return aggregate(classifier().classify(batch), bucket=bucket, by=by)


# ------------------------------------------------------------ properties
@given(st.sampled_from([None, "service"]).flatmap(
    lambda by: st.lists(column_reports(by), min_size=1, max_size=5)))
@settings(max_examples=150, deadline=None)
def test_native_merge_of_column_reports_equals_group_merges(reports):
    assert_same(Report.combined(reports), reference_sum(reports))


@given(st.tuples(st.sampled_from([None, "app", "service"]),
                 st.sampled_from(["day", "week"])).flatmap(
    lambda spec: st.lists(aggregated_reports(*spec), min_size=2, max_size=4)))
@settings(max_examples=25, deadline=None)
def test_native_merge_of_aggregated_reports_equals_group_merges(reports):
    want = reference_sum(reports)
    assert_same(Report.combined(reports), want)
    chained = reports[0] + reports[1]
    for report in reports[2:]:
        chained.merge_in(report)
    assert chained._columns is not None  # stayed in column form, merged natively
    assert_same(chained, want)


def test_merged_report_equals_the_report_of_all_flows():
    batch = flows(6000, seed=21, v6_share=0.3)
    whole = aggregate(classifier().classify(batch), bucket="day", by="service")
    cuts = [0, 1000, 2500, 2600, 6000]
    parts = [aggregate(classifier().classify({k: v[a:b] for k, v in batch.items()}),
                       bucket="day", by="service") for a, b in itertools.pairwise(cuts)]
    merged = Report.combined(parts)
    assert merged._columns is not None
    assert merged == whole
    assert_same(merged, whole)


def test_reports_given_to_a_merge_are_left_as_they_were():
    parts = [aggregate(classifier().classify(flows(800, seed=s)), bucket="day")
             for s in (1, 2)]
    tables = [p.table() for p in parts]
    total = parts[0] + parts[1]
    total.merge_in(parts[1])  # the total's columns change, not the parts'
    assert [p.table() for p in parts] == tables
    assert all(p._columns is not None for p in parts)


def test_a_report_of_group_objects_merges_by_the_group_path():
    parts = [aggregate(classifier().classify(flows(800, seed=s, v6_share=0.3)), bucket="day")
             for s in (3, 4, 5)]
    mixed = [parts[0], as_objects(parts[1]), parts[2]]
    assert_same(Report.combined(mixed), reference_sum(parts))


def test_empty_reports_merge_into_column_form():
    empty = Report("day")
    part = aggregate(classifier().classify(flows(500, seed=6)), bucket="day")
    assert Report.combined([empty, part, Report("day")]) == part
    assert (empty + empty)._columns is not None
    assert len(empty + empty) == 0


def test_reports_of_another_bucket_or_key_are_refused():
    day = aggregate(classifier().classify(flows(100, seed=7)), bucket="day")
    week = aggregate(classifier().classify(flows(100, seed=7)), bucket="week")
    by_app = aggregate(classifier().classify(flows(100, seed=7)), bucket="day", by="app")
    with pytest.raises(ValueError, match="cannot merge a by-None week report into a by-None day"):
        day + week
    with pytest.raises(ValueError, match="cannot merge a by-app day report"):
        Report.combined([day, day, by_app])
    with pytest.raises(ValueError, match="needs at least one report"):
        Report.combined([])


# ------------------------------------------------------------ bad input
def one_group(sets: list[bytes], sums=(1, 2, 3)) -> GroupColumns:
    buffer = b"".join(sets)
    bounds = np.cumsum([0, *map(len, sets)])
    return GroupColumns(np.array([T2019], np.int64), names(["kp_range"]), names(["mining"]),
                        names([None]), np.array([sums], np.uint64),
                        np.array([[0, 0, 0, 0]], np.uint64), buffer,
                        bounds.reshape(1, 5).astype(np.int64))


def column_report(columns: GroupColumns) -> Report:
    report = Report("day")
    report.set_columns(columns)
    return report


def test_a_damaged_set_is_refused_naming_its_report_and_group():
    good = BitMap([1, 2, 3]).serialize()
    bad = bytearray(good)
    bad[-2:] = b"\x00\x00"  # values out of order: 1, 2, 0
    reports = [column_report(one_group([good, b"", b"", b""])),
               column_report(one_group([bytes(bad), b"", b"", b""]))]
    with pytest.raises(ValueError, match="cannot merge reports: group 0 of the 2nd report "
                                         "with groups: a set is not a valid serialized"):
        Report.combined(reports)
    six = BitMap64([1, 2**40]).serialize()
    reports = [column_report(one_group([b"", b"", six, b""])),
               column_report(one_group([b"", b"", six[:-1], b""]))]
    with pytest.raises(ValueError, match="2nd report with groups: a set is not a valid"):
        Report.combined(reports)


def test_a_sum_past_two_to_the_64_is_refused():
    reports = [column_report(one_group([b""] * 4, sums=(1, 2**64 - 1, 0))),
               column_report(one_group([b""] * 4, sums=(1, 1, 0)))]
    with pytest.raises(ValueError, match="sum passes 2\\^64 - 1"):
        Report.combined(reports)


def native_args(columns: GroupColumns) -> list:
    return [columns.starts, np.zeros(len(columns), np.uint16), np.zeros(len(columns), np.uint8),
            np.zeros(len(columns), np.uint32), columns.sums, columns.sizes, columns.offsets,
            columns.buffer]


def test_native_merge_refuses_bounds_outside_the_buffer_or_backwards():
    columns = one_group([BitMap([5]).serialize(), b"", b"", b""])
    args = native_args(columns)
    args[6] = columns.offsets + np.array([[0, 0, 0, 0, 1]])
    with pytest.raises(_core.BuildError, match="outside the buffer"):
        _core.merge_groups(*args)
    args[6] = np.array([[0, 5, 4, 5, 5]], np.int64)
    with pytest.raises(_core.BuildError, match="out of order"):
        _core.merge_groups(*args)
    args[6] = np.array([[-1, 0, 0, 0, 0]], np.int64)
    with pytest.raises(_core.BuildError, match="outside the buffer"):
        _core.merge_groups(*args)


def test_native_merge_refuses_arrays_of_the_wrong_shape_or_type():
    args = native_args(one_group([b""] * 4))
    wrong = [(4, np.zeros((1, 2), np.uint64), "sums: expected a \\(1, 3\\) array"),
             (6, np.zeros((1, 5), np.int32), "incompatible function arguments"),
             (1, np.zeros(2, np.uint16), "path: length 2 differs"),
             (2, np.zeros(1, np.int64), "incompatible function arguments")]
    for index, value, message in wrong:
        bad = list(args)
        bad[index] = value
        with pytest.raises((ValueError, TypeError), match=message):
            _core.merge_groups(*bad)


@given(st.lists(st.binary(max_size=64), min_size=2, max_size=4), st.integers(0, 3))
@settings(max_examples=300, deadline=None)
def test_native_merge_of_garbage_sets_fails_cleanly(blobs, k):
    """Random bytes as the sets of rows with one key: refused or united,
    never a crash or a read outside the buffer."""
    buffer = b"".join(blobs)
    ends = np.cumsum([0, *map(len, blobs)])
    offsets = np.zeros((len(blobs), 5), np.int64)
    offsets[:, : k + 1] = ends[:-1, None]
    offsets[:, k + 1:] = ends[1:, None]
    n = len(blobs)
    try:
        _, _, sizes, _, _ = _core.merge_groups(
            np.zeros(n, np.int64), np.zeros(n, np.uint16), np.zeros(n, np.uint8),
            np.zeros(n, np.uint32), np.zeros((n, 3), np.uint64), np.zeros((n, 4), np.uint64),
            offsets, buffer)
    except _core.BuildError as exc:
        assert "not a valid serialized roaring bitmap" in str(exc)
    else:
        assert sizes.shape == (1, 4)


# ------------------------------------------------------------ pickling
def test_merged_reports_pickle_in_column_form_and_come_back_equal():
    parts = [aggregate(classifier().classify(flows(1500, seed=s, v6_share=0.3)), bucket="day",
                       by="app") for s in (8, 9, 10)]
    merged = Report.combined(parts)
    state = merged.__getstate__()
    assert "columns" in state and "groups" not in state
    back = pickle.loads(pickle.dumps(merged, protocol=pickle.HIGHEST_PROTOCOL))
    assert back._columns is not None
    assert_same(back, reference_sum(parts))
    again = Report.combined([back, pickle.loads(pickle.dumps(parts[0]))])
    assert_same(again, reference_sum([*parts, parts[0]]))


def test_reports_pickled_with_group_objects_still_load_and_merge():
    part = aggregate(classifier().classify(flows(1000, seed=11, v6_share=0.3)), bucket="day")
    objects = as_objects(part)
    state = objects.__getstate__()
    assert "groups" in state and "columns" not in state
    back = pickle.loads(pickle.dumps(objects))
    assert_same(back + part, reference_sum([part, part]))


# ------------------------------------------------------------ roll-ups
ROLL_UPS = (["path"], ["activity"], ["path", "activity"], ["activity", "path"], ["extra"], [])


def reference_roll_up(report: Report, fields: list[str], watched_only: bool) -> dict:
    """Group objects merged one by one (Group.merge, pyroaring unions)."""
    position = {"path": 1, "activity": 2, "extra": 3}
    out: dict = {}
    for key, group in as_objects(report).groups.items():
        if watched_only and key[1] == "none":
            continue
        kept = tuple(key[position[f]] for f in fields)
        if kept in out:
            out[kept].merge(group)
        else:
            out[kept] = group.copy()
    return out


@given(st.sampled_from([None, "service"]).flatmap(column_reports),
       st.sampled_from(ROLL_UPS), st.booleans())
@settings(max_examples=150, deadline=None)
def test_native_roll_up_equals_merging_the_group_objects(report, fields, watched_only):
    want = reference_roll_up(report, fields, watched_only)
    got = report.rolled_up(fields, watched_only)
    assert report._columns is not None  # rolled up natively, left in column form
    assert got == want
    assert as_objects(report).rolled_up(fields, watched_only) == want


@given(aggregated_reports("service", "day"), st.sampled_from(ROLL_UPS))
@settings(max_examples=20, deadline=None)
def test_roll_up_of_an_aggregated_report_counts_distinct_addresses_exactly(report, fields):
    got = report.rolled_up(fields)
    assert got == reference_roll_up(report, fields, False)
    if fields == ["path"]:
        table = report.table()
        for (path,), group in got.items():
            rows = table.filter(pc.equal(table.column("path"), path))
            assert group.flows == sum(rows.column("flows").to_pylist())


def test_a_damaged_set_is_refused_by_a_roll_up_naming_its_group():
    good = BitMap([1, 2, 3]).serialize()
    bad = bytearray(good)
    bad[-2:] = b"\x00\x00"
    columns = GroupColumns.merged([one_group([good, b"", b"", b""])])
    both = GroupColumns(
        np.array([T2019, T2019 + DAY], np.int64), names(["kp_range"] * 2),
        names(["mining"] * 2), names([None] * 2), np.ones((2, 3), np.uint64),
        np.zeros((2, 4), np.uint64), columns.buffer + bytes(bad),
        np.array([[0, len(good)] + [len(good)] * 3,
                  [len(good), 2 * len(good)] + [2 * len(good)] * 3], np.int64))
    with pytest.raises(ValueError, match="cannot roll up the report: group 1: a set is not a "
                                         "valid serialized"):
        column_report(both).rolled_up(["path"])


def test_roll_up_refuses_an_unknown_field():
    with pytest.raises(ValueError, match="cannot roll up by bucket"):
        column_report(one_group([b""] * 4)).rolled_up(["bucket"])


def many_groups(sets: list[BitMap]) -> Report:
    """One path's groups on consecutive days, each with its peer set."""
    blobs = [s.serialize() for s in sets]
    bounds = np.cumsum([0, *map(len, blobs)])
    n = len(sets)
    offsets = np.stack([bounds[:-1], bounds[:-1], bounds[1:], bounds[1:], bounds[1:]], axis=1)
    return column_report(GroupColumns(
        T2019 + DAY * np.arange(n, dtype=np.int64), names(["kp_range"] * n),
        names(["mining"] * n), names([None] * n), np.ones((n, 3), np.uint64),
        np.array([[0, len(s), 0, 0] for s in sets], np.uint64).reshape(-1, 4),
        b"".join(blobs), offsets.astype(np.int64)))


@pytest.mark.parametrize("kind", ["many small sets", "many dense sets"])
def test_rolling_up_many_groups_unites_their_sets_exactly(kind):
    # Past 16 sets the native union gathers the values (few in all) or
    # unites pairwise (millions of values): both must equal the plain union.
    rng = np.random.default_rng(11)
    if kind == "many small sets":
        sets = [BitMap(rng.integers(0, 2**32, rng.integers(0, 60)).tolist()) for _ in range(300)]
    else:
        sets = [BitMap(range(start, start + 300_000))
                for start in rng.integers(0, 2**32 - 300_000, 18).tolist()]
        sets[3].run_optimize()
    report = many_groups(sets)
    (group,) = report.rolled_up(["path"]).values()
    assert group.peers == BitMap.union(*sets)
    assert group.distinct("peers") == len(BitMap.union(*sets))
    assert report.rolled_up(["path"]) == reference_roll_up(report, ["path"], False)
