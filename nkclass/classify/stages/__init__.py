"""The stages of the classifier's native pass that have a Python face of
their own: longest-prefix-match tables (the watched paths, labelled
networks and AS tables; :mod:`~nkclass.classify.stages.prefix`), the miner
flow-shape score (:mod:`~nkclass.classify.stages.flow_shape`), the DNS
tunnelling score (:mod:`~nkclass.classify.stages.dns_tunnel`) and the
mining pair cache carried across batches
(:mod:`~nkclass.classify.stages.pair_cache`)."""

from nkclass.classify.stages.pair_cache import PairCache
from nkclass.classify.stages.prefix import PrefixTable

__all__ = ["PairCache", "PrefixTable"]
