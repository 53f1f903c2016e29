"""What every command module shares: consoles, JSON, tables, progress lines, exit codes,
option types and the settings helper. The command modules print only through this module.

Exit codes: 0 ok, 1 a check failed (:class:`~driftloop.errors.CheckFailed`), 2 bad input or
usage (:class:`~driftloop.errors.UsageError`, :class:`~driftloop.errors.NotFoundError`).

Examples
--------
>>> version_number("v3")
3
>>> from driftloop.errors import CheckFailed, UsageError
>>> report_error(CheckFailed("gate failed")), report_error(UsageError("bad flag"))
(1, 2)
>>> exit_status(SystemExit(None)), exit_status(SystemExit(2)), exit_status(SystemExit("bye"))
(0, 2, 1)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from driftloop.config import Settings
from driftloop.errors import DriftloopError, UsageError

if TYPE_CHECKING:
    from driftloop.registry import Registry

#: Width of tables and lines when the output is not a terminal (a pipe, a file, a CI log):
#: wide enough that rich never breaks a word ("featur e") or cuts a cell ("vers…").
PIPED_WIDTH = 4096


def _is_tty(file: IO[str]) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class _Console(Console):
    """A rich Console that is :data:`PIPED_WIDTH` wide while its file is not a terminal.

    Rich falls back to 80 columns (or the width of whichever of stdin/stderr is a terminal)
    when stdout is piped; ``COLUMNS`` still wins when it is set.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if not os.environ.get("COLUMNS", "").isdigit() and not _is_tty(self.file):
            return ConsoleDimensions(PIPED_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


out = _Console()
err = _Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines.")]


class TextFormat(str, Enum):
    """Formats of a document command (model card, governance report)."""

    md = "md"
    html = "html"
    json = "json"


def settings(**overrides: Any) -> Settings:
    """The settings of driftloop.yaml and DRIFTLOOP_*, with the flags that were given on top."""
    return Settings.load(overrides={k: v for k, v in overrides.items() if v is not None})


@contextlib.contextmanager
def open_registry(current: Settings | None = None) -> Iterator[Registry]:
    """The registry ``current`` (default: :func:`settings`) names, closed when the command ends."""
    from driftloop.registry import Registry  # the store pulls in SQLAlchemy: not for --help

    with Registry.open(current or settings()) as opened:
        yield opened


def version_number(text: str) -> int:
    """The number of a VERSION argument written 3 or v3."""
    try:
        return int(text.lstrip("v"))
    except ValueError:
        raise UsageError(f"VERSION '{text}' is not a whole number (e.g. 3 or v3).") from None


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=1, default=str, allow_nan=False) + "\n")


def plain(text: str, **kwargs: Any) -> None:
    """Print text as it is: no markup, no highlighting."""
    out.print(text, markup=False, highlight=False, **kwargs)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}")


def say_step(step: str, message: str) -> None:
    """Progress of the loop: one line per step."""
    out.print(f"[bold]{step:>9}[/bold]  {escape(message)}")


def table(*columns: str, title: str | None = None, right: tuple[str, ...] = (),
          fold: bool = False) -> Table:
    """A table with a header; ``right`` columns are right-aligned, ``fold`` folds long cells
    onto more lines (in a narrow terminal) instead of wrapping them at spaces."""
    result = Table(title=title, show_header=True)
    for column in columns:
        result.add_column(column, justify="right" if column in right else "left",
                          overflow="fold" if fold else "ellipsis")
    return result


def write_document(text: str, output: Path | None) -> bool:
    """Write text to stdout, or atomically to ``output``; True when a file was written."""
    if output is None:
        sys.stdout.write(text)
        return False
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    return True


def report_error(exc: DriftloopError) -> int:
    """Print a driftloop error as one message on stderr; return its exit code (1 a check
    failed, 2 bad input or usage)."""
    text = escape(str(exc))  # a message quotes user input, which is never markup
    err.print(f"[red]error:[/] {text}" if exc.exit_code != 1 else f"[yellow]{text}[/]")
    return exc.exit_code


def exit_status(exc: SystemExit) -> int:
    """The exit code of typer/click's SystemExit (typer exits 2 on a bad command line)."""
    return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def _untyped_flags(params: list[Any]) -> None:
    # Typer's rich help prints every option's type, flags included ("--json <bool>", even
    # "--help <bool>"); its plain help leaves flags out. An empty metavar prints nothing.
    for param in params:
        if (getattr(param, "is_flag", False) or getattr(param, "count", False)) and (
                param.metavar is None):
            param.metavar = ""


class Command(TyperCommand):
    """A command whose --help shows no ``<bool>`` after its flags."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _untyped_flags(self.get_params(ctx))
        super().format_help(ctx, formatter)


class Group(TyperGroup):
    """A group whose --help shows no ``<bool>`` after its flags."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _untyped_flags(self.get_params(ctx))
        super().format_help(ctx, formatter)


class Typer(typer.Typer):
    """``typer.Typer`` whose groups and commands are :class:`Group` and :class:`Command`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(self, name: str | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(name, **kwargs)
