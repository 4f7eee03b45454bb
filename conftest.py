"""The package's docstring examples run with the tests (--doctest-modules over
nkclass/): a module built on an optional extra that is not installed is not
collected, as its tests skip."""

import importlib.util

collect_ignore = [
    f"nkclass/scale/{module}.py"
    for module, requirement in (("dask", "dask"), ("spark", "pyspark"))
    if importlib.util.find_spec(requirement) is None
]
