"""Shared by the atheris harnesses: running one input with an allowed
exception type, and the catalogue mode.

With NKCLASS_FUZZ_CATALOGUE=DIR set, an unexpected exception does not stop
the fuzzer: its first input is saved as DIR/<type>-<place> (one per
exception type and innermost nkclass line) and fuzzing goes on, so one run
lists every distinct failure instead of the first.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path

CATALOGUE = os.environ.get("NKCLASS_FUZZ_CATALOGUE")


def signature(exc: BaseException) -> str:
    """Exception type and the innermost nkclass frame that raised it."""
    place = "outside-nkclass"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if "/nkclass/" in frame.filename:
            place = f"{Path(frame.filename).stem}.py-{frame.lineno}"
            break
    return f"{type(exc).__name__}-{place}"


def run(test: Callable[[bytes], None], data: bytes, allowed: type[BaseException]) -> None:
    """test(data), where `allowed` exceptions are expected outcomes."""
    try:
        test(data)
    except allowed:
        pass
    except Exception as exc:
        if CATALOGUE is None:
            raise
        path = Path(CATALOGUE) / signature(exc)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
