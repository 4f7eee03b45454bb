"""Classifier and its result."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa

from nkclass.addresses import format_addresses
from nkclass.asn.attribution import exporter_numbers
from nkclass.asn.database import AsDatabase, default_database
from nkclass.classify.stages.pair_cache import PairCache
from nkclass.errors import SchemaValueError
from nkclass.flows.batch import MEASUREMENT_COLUMNS, FlowBatch
from nkclass.labels import ACTIVITIES, APPS, CONFIDENCES, EVIDENCE, SIDES, evidence_names
from nkclass.names.cache import NameCache
from nkclass.rules import Ruleset, load_rules
from nkclass.rules.compile import CompiledRules, compile_rules

LABEL_COLUMNS = ("path", "side", "service", "app", "activity", "confidence", "evidence")
#: Columns the AS stage adds (when on): each endpoint's AS number (the
#: exporter's where given, else the table's; 0 = unknown) and the peer's AS
#: number and organisation (the unwatched side, or the responder).
AS_COLUMNS = ("src_as", "dst_as", "peer_as", "peer_org")
#: Labels whose presence marks a batch as classified already (nkclass's own output).
CLASSIFIED_MARKERS = frozenset({"path", "side", "activity", "app", "service"})
#: Columns ``classify(..., server_names=True)`` adds: the TLS server name and
#: HTTP Host the flow's own payload carried, and the name learned on the
#: wire for its peer (null where none).
NAME_COLUMNS = ("sni", "host", "learned_name")
# All evidence combinations, so an evidence code is its own dictionary index.
EVIDENCE_DICTIONARY = pa.array(
    [evidence_names(bits) for bits in range(1 << len(EVIDENCE))], pa.string())


class Classifier:
    """Labels flow batches with the watched path, side, peer service, app,
    activity, evidence and confidence, in one native pass per batch.

    The classifier is immutable, safe to share between threads (the pass
    releases the GIL) and pickles as its ruleset (for process pools and
    clusters). :meth:`save` writes it as a compiled ruleset file, which
    :meth:`load` and the C interface read. As with any pickle, unpickling
    can run arbitrary code: only unpickle classifiers from a source you
    trust.

    >>> import numpy as np
    >>> clf = Classifier()
    >>> result = clf.classify({
    ...     "src_ip": ["10.0.0.1", "175.45.176.9"], "dst_ip": ["175.45.176.71", "8.8.8.8"],
    ...     "src_port": np.array([50000, 40000]), "dst_port": np.array([80, 443]),
    ...     "protocol": np.array([6, 6])})
    >>> result.names("path"), result.names("side")
    (['kp_range', 'kp_range'], ['dst', 'src'])

    ``asn`` sets the AS stage: None (the default) turns it on, over the
    IP-to-AS table of the ``nkclass[asn]`` extra when that is installed
    (else over the flows' own ``src_as``/``dst_as`` fields only); False
    turns it off; True requires the extra's table; a path opens that
    database (:meth:`nkclass.asn.AsDatabase.open`); an
    :class:`~nkclass.asn.AsDatabase` is used as it is.
    """

    def __init__(self, rules: Ruleset | None = None, *,
                 asn: bool | str | Path | AsDatabase | None = None) -> None:
        self.rules = load_rules() if rules is None else rules
        self._asn = asn
        as_stage, database = _as_source(asn)
        self._compiled: CompiledRules = compile_rules(
            self.rules, as_stage=as_stage, database=database
        )

    @classmethod
    def load(cls, source: str | Path | bytes) -> Classifier:
        """A classifier from a compiled ruleset (a file ``nkclass rules
        compile`` or :meth:`save` wrote, or its bytes). It labels exactly as
        the classifier it was compiled from, with the AS stage and table it
        was compiled with; it carries the tables, not the ruleset's text, so
        :attr:`rules` is None. Raises
        :class:`~nkclass.errors.CompiledRulesError` naming the byte offset
        when the file is truncated, damaged, of another format version or
        not a compiled ruleset at all.

        >>> import nkclass
        >>> data = nkclass.Classifier(asn=False).compiled_bytes()
        >>> nkclass.Classifier.load(data).paths
        ('none', 'kp_range', 'unicom', 'satgate')
        """
        from nkclass.rules import compiled as compiled_file

        self = cls.__new__(cls)
        self.rules = None
        self._asn = None
        if isinstance(source, bytes | bytearray | memoryview):
            self._compiled = compiled_file.decode(bytes(source))
        else:
            self._compiled = compiled_file.read(source)
        return self

    def compiled_bytes(self) -> bytes:
        """The compiled ruleset file of this classifier (its rules' tables,
        the AS stage and table when on): what :meth:`save` writes."""
        from nkclass.rules import compiled as compiled_file

        return compiled_file.encode(self._compiled)

    def save(self, path: str | Path) -> None:
        """Write :meth:`compiled_bytes` to ``path`` (through a temporary file
        and a rename, so the file is whole or absent), for :meth:`load` and
        the C interface."""
        from nkclass.asn.cache import write_atomic

        write_atomic(Path(path), self.compiled_bytes())

    def __reduce__(self):
        if self.rules is None:  # loaded from a compiled file
            return (Classifier.load, (self.compiled_bytes(),))
        return (_rebuild, (self.rules, self._asn))

    @property
    def asn_database(self) -> AsDatabase | None:
        """The IP-to-AS table the AS stage uses (None: none, or stage off)."""
        attribution = self._compiled.attribution
        return attribution.database if attribution is not None else None

    @property
    def as_attribution(self) -> bool:
        """True when the AS stage is on."""
        return self._compiled.attribution is not None

    @property
    def paths(self) -> tuple[str, ...]:
        return self._compiled.paths

    @property
    def services(self) -> tuple[str, ...]:
        return self._compiled.services

    def classify(self, batch: object, cache: PairCache | None = None,
                 names: NameCache | None = None, server_names: bool = False) -> Classified:
        """Classify one batch: a mapping of arrays, a pandas DataFrame or a
        pyarrow Table/RecordBatch with columns ``src_ip``, ``dst_ip``,
        ``src_port``, ``dst_port``, ``protocol``. Optional columns feed more
        stages: ``src_payload``/``dst_payload`` the payload detectors;
        ``ts_start``, ``ts_end``, ``packets``, ``bytes`` and ``tcp_flags``
        (all five) the flow-shape score, which is skipped when any is
        missing. Other columns are carried along.

        ``cache`` (a :class:`nkclass.PairCache`, needs ``ts_end``) carries
        payload-confirmed mining pairs across batches: flows are taken in
        batch order, so a flow inherits from earlier confirmed flows of the
        same batch and of earlier batches.

        ``names`` (a :class:`nkclass.NameCache`) carries names learned on
        the wire: flows are taken in batch order; each flow without an SNI /
        Host of its own is named by the name live for its peer at its
        ``ts_start`` (evidence ``dns_learned``, through the domain rules),
        then teaches later flows its own SNI / Host and the answers of a DNS
        response it carries. Without ``ts_start`` every flow counts as time
        0 (names then hold by order alone).

        ``server_names=True`` adds the :data:`NAME_COLUMNS` (``sni``,
        ``host``, ``learned_name``) to the result.
        """
        flows = FlowBatch.from_any(batch)
        if names is not None and not isinstance(names, NameCache):
            raise TypeError(
                f"The 'names' parameter of Classifier.classify must be an nkclass.NameCache "
                f"or None. Got {type(names).__name__} instead."
            )
        if cache is not None:
            if not isinstance(cache, PairCache):
                raise TypeError(
                    f"The 'cache' parameter of Classifier.classify must be an nkclass.PairCache "
                    f"or None. Got {type(cache).__name__} instead."
                )
            if flows.ts_end is None:
                raise SchemaValueError(
                    "missing column 'ts_end': a pair cache needs each flow's end time "
                    "(its expiry runs on flow time)"
                )
        return Classified(self, flows, *self._run(flows, cache, names, bool(server_names)))

    def _run(self, flows: FlowBatch, cache: PairCache | None = None,
             names: NameCache | None = None, server_names: bool = False) -> tuple:
        v4 = lambda a: a if a.dtype == np.uint32 else None  # noqa: E731
        v6 = lambda a: None if a.dtype == np.uint32 else a  # noqa: E731
        kwargs = flows.payload_arguments()
        for name in MEASUREMENT_COLUMNS:
            kwargs[name] = getattr(flows, name)
        if cache is not None:
            kwargs["cache"] = cache._native
        if names is not None:
            kwargs["names"] = names._native
        kwargs["name_columns"] = server_names
        attribution = self._compiled.attribution
        if attribution is not None:
            for name in ("src_as", "dst_as"):
                numbers = exporter_numbers(flows.source, name, flows.n)
                if numbers is not None:
                    kwargs[name] = attribution.ids_for_numbers(numbers)
        return self._compiled.native.classify(
            flows.n,
            v4(flows.src_ip),
            v6(flows.src_ip),
            v4(flows.dst_ip),
            v6(flows.dst_ip),
            flows.src_port,
            flows.dst_port,
            flows.protocol,
            **kwargs,
        )


def label_batch(classifier: Classifier, batch: pa.RecordBatch,
                names: NameCache | None = None) -> Classified | pa.Table:
    """``batch`` classified (learning and using ``names``), or as it is when
    it carries labels already (nkclass's own classified output, read back):
    what aggregation takes."""
    if CLASSIFIED_MARKERS <= set(batch.schema.names):
        return pa.Table.from_batches([batch])
    return classifier.classify(batch, names=names)


def _as_source(asn: object) -> tuple[bool, AsDatabase | None]:
    """(AS stage on, its table) for the ``asn`` argument of Classifier."""
    if asn is None:
        return True, default_database()
    if asn is False:
        return False, None
    if asn is True:
        database = default_database()
        if database is None:
            raise ValueError(
                "asn=True needs the IP-to-AS table of the nkclass[asn] extra "
                "(pip install 'nkclass[asn]'), or give a database path"
            )
        return True, database
    if isinstance(asn, AsDatabase):
        return True, asn
    if isinstance(asn, str | Path):
        return True, AsDatabase.open(asn)
    raise TypeError(
        "The 'asn' parameter of Classifier must be None, a bool, a database path or an "
        f"nkclass.asn.AsDatabase. Got {type(asn).__name__} instead."
    )


def _rebuild(rules: Ruleset, asn: object) -> Classifier:
    return Classifier(rules, asn=asn)


@dataclass(frozen=True, eq=False)
class Classified:
    """The labels of one batch as code arrays, with their decoders.

    ``path`` (uint16, index into ``classifier.paths``), ``side`` (uint8, into
    :data:`nkclass.SIDES`), ``service`` (uint32, into ``classifier.services``),
    ``app`` / ``activity`` (uint8, into :data:`nkclass.APPS` /
    :data:`nkclass.ACTIVITIES`), ``evidence`` (uint16 bits, see
    :data:`nkclass.EVIDENCE`), ``confidence`` (uint8, into
    :data:`nkclass.CONFIDENCES`).
    """

    classifier: Classifier
    flows: FlowBatch
    path: np.ndarray
    side: np.ndarray
    service: np.ndarray
    app: np.ndarray
    activity: np.ndarray
    evidence: np.ndarray
    confidence: np.ndarray
    peer_as_id: np.ndarray  # uint32 AS entry id of the peer (empty when the AS stage is off)
    server_name_codes: tuple | None = None  # (sni, host, learned) uint32 codes, names; or None

    def __len__(self) -> int:
        return self.flows.n

    @property
    def _attribution(self):
        return self.classifier._compiled.attribution

    def _as_ids(self, side: str) -> np.ndarray:
        """AS entry ids of one endpoint: the native pass resolved the peer;
        the other side is looked up here, on demand."""
        peer_here = self._peer_is_src if side == "src" else ~self._peer_is_src
        ids = np.where(peer_here, self.peer_as_id, 0).astype(np.uint32)
        database = self._attribution.database
        other = ~peer_here
        if database is not None and other.any():
            ids[other] = database.lookup_ids(getattr(self.flows, f"{side}_ip")[other])
        given = exporter_numbers(self.flows.source, f"{side}_as", self.flows.n)
        if given is not None:
            given_ids = self._attribution.ids_for_numbers(given)
            ids = np.where(given_ids != 0, given_ids, ids)
        return ids

    def _as_numbers(self, side: str) -> np.ndarray:
        numbers = self._attribution.asns[self._as_ids(side)]
        given = exporter_numbers(self.flows.source, f"{side}_as", self.flows.n)
        return numbers if given is None else np.where(given != 0, given, numbers)

    @cached_property
    def src_as(self) -> np.ndarray:
        """Source AS numbers (uint32; the exporter's where given, else the
        table's; 0 = unknown). Needs the AS stage."""
        self._need_as()
        return self._as_numbers("src")

    @cached_property
    def dst_as(self) -> np.ndarray:
        """Destination AS numbers, as :attr:`src_as`."""
        self._need_as()
        return self._as_numbers("dst")

    @cached_property
    def _peer_is_src(self) -> np.ndarray:
        return self.side == SIDES.index("dst")

    @cached_property
    def peer_as(self) -> np.ndarray:
        """The peer's AS number: the endpoint outside the watched network,
        or the responder (destination) when both or neither are watched."""
        return np.where(self._peer_is_src, self.src_as, self.dst_as)

    @cached_property
    def peer_org_codes(self) -> np.ndarray:
        """Codes into :attr:`peer_org_names` of the peer's organisation."""
        self._need_as()
        return self._attribution.org_codes[self.peer_as_id]

    @property
    def peer_org_names(self) -> tuple[str, ...]:
        return self._attribution.orgs

    def _need_as(self) -> None:
        if self._attribution is None:
            raise ValueError("AS columns need the AS stage (this classifier has asn=False)")

    def _vocabulary(self, column: str) -> tuple[str, ...]:
        return {
            "path": self.classifier.paths,
            "side": SIDES,
            "service": self.classifier.services,
            "app": APPS,
            "activity": ACTIVITIES,
            "confidence": CONFIDENCES,
        }[column]

    def names(self, column: str) -> list[str]:
        """Readable labels of one column as a Python list (small batches)."""
        if column == "peer_org":
            orgs = self.peer_org_names
            return [orgs[int(c)] for c in self.peer_org_codes]
        if column == "evidence":
            return [evidence_names(int(b)) for b in self.evidence]
        vocab = self._vocabulary(column)
        return [vocab[int(c)] for c in getattr(self, column)]

    def label_arrays(self) -> dict[str, pa.DictionaryArray]:
        """The seven label columns as dictionary-encoded string arrays."""
        out = {}
        for column in LABEL_COLUMNS:
            codes = getattr(self, column)
            if column == "evidence":
                # Only the combinations present, so categoricals stay small.
                present = np.flatnonzero(np.bincount(codes, minlength=len(EVIDENCE_DICTIONARY)))
                remap = np.zeros(len(EVIDENCE_DICTIONARY), np.int32)
                remap[present] = np.arange(len(present), dtype=np.int32)
                codes = remap[codes]
                dictionary = EVIDENCE_DICTIONARY.take(pa.array(present))
            else:
                dictionary = pa.array(self._vocabulary(column), pa.string())
            out[column] = pa.DictionaryArray.from_arrays(
                pa.array(codes.astype(np.int32, copy=False)), dictionary
            )
        return out

    @cached_property
    def _input_table(self) -> pa.Table:
        return _as_table(self.flows)

    def as_arrays(self) -> dict[str, pa.Array]:
        """The AS columns (:data:`AS_COLUMNS`; empty when the stage is off)."""
        if self._attribution is None:
            return {}
        return {
            "src_as": pa.array(self.src_as, pa.uint32()),
            "dst_as": pa.array(self.dst_as, pa.uint32()),
            "peer_as": pa.array(self.peer_as, pa.uint32()),
            "peer_org": pa.DictionaryArray.from_arrays(
                pa.array(self.peer_org_codes.astype(np.int32, copy=False)),
                pa.array(self.peer_org_names, pa.string()),
            ),
        }

    def name_arrays(self) -> dict[str, pa.DictionaryArray]:
        """The :data:`NAME_COLUMNS` as dictionary strings, null where a flow
        has none (empty unless classified with ``server_names=True``)."""
        if self.server_name_codes is None:
            return {}
        *codes, names = self.server_name_codes
        dictionary = pa.array(["", *names], pa.string())
        return {
            column: pa.DictionaryArray.from_arrays(
                pa.array(c.astype(np.int32, copy=False), mask=c == 0), dictionary)
            for column, c in zip(NAME_COLUMNS, codes, strict=True)
        }

    def to_arrow(self) -> pa.Table:
        """Input columns plus the labels as readable (dictionary) strings,
        the AS columns when the AS stage is on and the name columns when
        asked for."""
        table = self._input_table
        columns = {**self.label_arrays(), **self.as_arrays(), **self.name_arrays()}
        for name, arr in columns.items():
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, arr)
        return table

    def to_pandas(self):
        """:meth:`to_arrow` as a pandas DataFrame (labels as categoricals)."""
        return self.to_arrow().to_pandas()


def _as_table(flows: FlowBatch) -> pa.Table:
    source = flows.source
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    if hasattr(source, "columns") and not isinstance(source, dict):  # pandas
        return pa.Table.from_pandas(source, preserve_index=False)
    columns = {}
    for name, value in source.items():
        if name in ("src_ip", "dst_ip"):
            columns[name] = format_addresses(getattr(flows, name))
        elif isinstance(value, pa.Array | pa.ChunkedArray):
            columns[name] = value
        else:
            arr = np.asarray(value)
            columns[name] = pa.array(list(arr) if arr.dtype.kind in "SV" else arr)
    return pa.table(columns)
