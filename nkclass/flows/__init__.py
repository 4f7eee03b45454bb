"""Flow batches: the canonical schema, the one validating gate into native
code (:mod:`~nkclass.flows.batch`), and the readers and writers of every
supported format (:func:`nkclass.read`, :func:`nkclass.write`)."""
