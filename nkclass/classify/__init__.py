"""Classification: the :class:`Classifier` and its result, and the stages
its native pass runs (:mod:`nkclass.classify.stages`: prefix tables, the
flow-shape score, the pair cache)."""

from nkclass.classify.classifier import (
    AS_COLUMNS,
    CLASSIFIED_MARKERS,
    LABEL_COLUMNS,
    Classified,
    Classifier,
    label_batch,
)
from nkclass.classify.stages import PairCache, PrefixTable

__all__ = [
    "AS_COLUMNS",
    "CLASSIFIED_MARKERS",
    "LABEL_COLUMNS",
    "Classified",
    "Classifier",
    "PairCache",
    "PrefixTable",
    "label_batch",
]
