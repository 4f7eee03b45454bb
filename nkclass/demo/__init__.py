"""Seeded synthetic flows for ``nkclass demo`` and ``nkclass synth``.

``generate`` yields canonical flow batches of the watched paths' traffic,
2017-2019, with the public figures of DOMAIN.md section 1 planted
(:data:`PLANTED`); ``write_synth`` writes them as Parquet, CSV or pcap.
"""

from nkclass.demo.synth import PLANTED, SYNTH_SCHEMA, Planted, generate, write_synth

__all__ = ["PLANTED", "SYNTH_SCHEMA", "Planted", "generate", "write_synth"]
