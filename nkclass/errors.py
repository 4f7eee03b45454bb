"""The nkclass exception family.

Every error says what was expected, what was got, and where. Schema problems
in flow batches are ``TypeError`` (wrong dtype) or ``ValueError`` (wrong
value) so callers can catch them as usual; both also derive from
:class:`NkclassError`.
"""

from __future__ import annotations

import json


class NkclassError(Exception):
    """Base class of every error nkclass raises on purpose."""


class RuleError(NkclassError, ValueError):
    """A ruleset file is invalid. Carries ``path`` and ``line`` (1-based, or
    None when the position is unknown)."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        self.reason = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class SchemaTypeError(NkclassError, TypeError):
    """A flow batch column has the wrong type."""


class SchemaValueError(NkclassError, ValueError):
    """A flow batch column is missing or holds an invalid value."""


def describe(value: object, limit: int = 60) -> str:
    """A short repr for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InputError(NkclassError, ValueError):
    """An input file is malformed. Carries ``path`` and ``line`` (1-based
    line for text formats, or None) and, for binary formats, ``offset``."""

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        offset: int | None = None,
    ):
        self.path = path
        self.line = line
        self.offset = offset
        self.reason = message
        where = ""
        if path is not None:
            if line is not None:
                where = f"{path}:{line}: "
            elif offset is not None:
                where = f"{path}: at byte {offset}: "
            else:
                where = f"{path}: "
        super().__init__(where + message)


def load_json(text: str, error: type[RuleError] | type[InputError], path: str) -> object:
    """``json.loads(text)`` for a file the user gave: invalid JSON raises
    ``error`` naming ``path`` and the line, and so does JSON nested deeper
    than the parser recurses.

    >>> load_json('{"a": [1,', RuleError, "x.json")
    Traceback (most recent call last):
    ...
    nkclass.errors.RuleError: x.json:1: invalid JSON: Expecting value
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON: {exc.msg}", path, exc.lineno) from None
    except RecursionError:
        raise error("invalid JSON: nested too deeply", path) from None


class OutputError(NkclassError, OSError):
    """An output cannot be written (missing folder, no space left, no
    permission). Carries ``path``; the file that was there before is left as
    it was."""

    def __init__(self, message: str, path: str | None = None):
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path is not None else message)


class CompiledRulesError(InputError):
    """A compiled ruleset file cannot be used. ``kind`` says why:
    ``truncated`` (shorter than it says), ``foreign`` (not a compiled
    ruleset), ``version`` (another format version or label vocabulary:
    compile it again) or ``corrupt`` (damaged or inconsistent). Carries
    ``path`` and the byte ``offset`` where the problem was found."""

    def __init__(self, message: str, path: str | None = None, offset: int | None = None,
                 kind: str = "corrupt"):
        self.kind = kind
        super().__init__(message, path, offset=offset)
