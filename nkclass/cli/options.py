"""Argument types and checks the commands share. Every mistake they catch
is a usage error (exit code 2, argparse's message format), found before any
input is read."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from nkclass.labels import ACTIVITIES
from nkclass.report.model import parse_time
from nkclass.report.select import FlowFilter, unknown_names
from nkclass.rules.model import Ruleset

DATE_HELP = "a date or datetime, UTC unless it gives an offset (2019-05-01, 2019-05-01T12:30)"


def date(text: str) -> str:
    """A date or datetime argument (returned as given, once it parses)."""
    try:
        parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date such as 2019-05-01 or a datetime such as 2019-05-01T12:30, "
            f"got {text!r}"
        ) from None
    return text


def positive(text: str) -> int:
    return _integer(text, 1)


def non_negative(text: str) -> int:
    return _integer(text, 0)


def _integer(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


class Names(argparse.Action):
    """A repeatable option taking names, each value a comma list
    (``--activity mining,tor --activity vpn``); with ``choices`` the names are
    checked against that vocabulary, with a "did you mean"."""

    def __init__(
        self,
        option_strings,
        dest,
        vocabulary: Sequence[str] | None = None,
        kind: str = "name",
        **kwargs,
    ) -> None:
        self.vocabulary = tuple(vocabulary) if vocabulary is not None else None
        self.kind = kind
        kwargs.setdefault("metavar", "NAME[,NAME...]")
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        names = [v.strip() for v in str(values).split(",")]
        if any(not v for v in names):
            raise argparse.ArgumentError(self, f"empty {self.kind} in {values!r}")
        if self.vocabulary is not None:
            problem = unknown_names(self.kind, names, self.vocabulary)
            if problem:
                raise argparse.ArgumentError(self, problem)
        chosen = list(getattr(namespace, self.dest, None) or [])
        chosen += [n for n in names if n not in chosen]
        setattr(namespace, self.dest, chosen)


def add_activity_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--activity",
        action=Names,
        vocabulary=ACTIVITIES,
        kind="activity",
        help=help,
    )


def add_path_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--path", action=Names, kind="path", help=help)


def add_filter_options(parser: argparse.ArgumentParser, what: str = "count") -> None:
    """--start/--end/--path/--activity of the commands that aggregate."""
    parser.add_argument(
        "--start",
        type=date,
        metavar="WHEN",
        help=f"{what} flows starting at or after WHEN: " + DATE_HELP,
    )
    parser.add_argument(
        "--end", type=date, metavar="WHEN", help=f"{what} flows starting before WHEN"
    )
    add_path_option(
        parser,
        f"{what} only these watched paths ('none': flows on no watched "
        "path); repeatable or a comma list",
    )
    add_activity_option(parser, f"{what} only these activities; repeatable or a comma list")


def usage_error(args: argparse.Namespace, message: str) -> None:
    """Exit with code 2 and the command's usage line, as argparse does."""
    args.command_parser.error(message)


def check_input_options(args: argparse.Namespace) -> None:
    """The shared input options argparse cannot check by type."""
    if args.batch_size < 1:
        usage_error(args, f"argument --batch-size: must be at least 1, got {args.batch_size}")


def check_paths(args: argparse.Namespace, ruleset: Ruleset, option: str = "--path") -> None:
    """Path names against the ruleset's watched paths (and 'none')."""
    if getattr(args, "path", None):
        problem = unknown_names("path", args.path, ruleset.paths)
        if problem:
            usage_error(args, f"argument {option}: {problem}")


def flow_filter(args: argparse.Namespace, ruleset: Ruleset) -> FlowFilter | None:
    """The filter the options describe, checked (unknown paths, an end not
    after the start: usage errors)."""
    check_paths(args, ruleset)
    try:
        return FlowFilter.of(args.start, args.end, args.path, args.activity)
    except ValueError as exc:
        usage_error(args, f"argument --end: {exc}")
    return None  # not reached: usage_error exits


def check_output_folder(args: argparse.Namespace, option: str, folder: str | None) -> None:
    """A folder the command will write to: absent (it is created) or a folder."""
    if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
        usage_error(args, f"argument {option}: {folder!r} exists and is not a folder")
