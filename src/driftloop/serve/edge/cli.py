"""``python -m <package> predict rows.csv [--out preds.csv] [--log-dir DIR]``.

CSV cells are text; each is read the way a JSON client would send it, by the feature's kind:
blank -> null; numeric -> an int or float when it parses, else the text (which validation
then refuses with the server's message); boolean -> 0/1 for ``0``/``1``, else the text;
categorical -> the text. Rows are numbered from 0 as instances are on the server, so a bad
row's message is the one the server gives for the same instances; a file of more rows than
the server takes in one request (``serve.max_instances``) is sent in several. The answer is CSV:
``request_id``, ``prediction`` and, for classification, ``p_<class>`` per class. Exit codes:
0 ok, 2 bad input (the message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .runtime import EdgeModel, PackageInvalid, RequestInvalid, verify


def read_cell(text: str, kind: str) -> Any:
    """A CSV cell as the JSON value a client would send for a feature of ``kind``.

    >>> read_cell("3", "numeric"), read_cell("2.5", "numeric"), read_cell("old", "numeric")
    (3, 2.5, 'old')
    >>> read_cell("", "categorical"), read_cell("1", "boolean"), read_cell("yes", "boolean")
    (None, 1, 'yes')
    """
    if not text.strip():
        return None
    if kind == "numeric":
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                pass
        return text
    if kind == "boolean" and text.strip() in ("0", "1"):
        return int(text)
    return text


def read_rows(path: Path, kinds: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of a CSV file with a header row, cells read by :func:`read_cell`."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: read_cell(v or "", kinds.get(k, "categorical")) for k, v in row.items()}
                for row in csv.DictReader(f)]


def write_answers(answers: list[dict[str, Any]], classes: Sequence[str], f: TextIO) -> None:
    """Answers as CSV (``request_id``, ``prediction``, ``p_<class>`` …)."""
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["request_id", "prediction", *(f"p_{c}" for c in classes)])
    for a in answers:
        probs = a.get("probabilities", {})
        writer.writerow([a["request_id"], a["prediction"], *(repr(probs[c]) for c in classes)])


def predict_chunks(model: EdgeModel, rows: list[dict[str, Any]],
                   ids: list[Any] | None) -> list[dict[str, Any]]:
    """Predict ``rows`` in requests of at most the server's ``max_instances`` rows; a refusal
    past the first request names its rows (within it, rows count from 0 as on the server)."""
    size = model.validator.max_instances
    answers: list[dict[str, Any]] = []
    for start in range(0, max(len(rows), 1), size):
        chunk = rows[start:start + size]
        try:
            answers += model.predict(chunk, None if ids is None else ids[start:start + size])
        except RequestInvalid as exc:
            if start == 0:
                raise
            raise RequestInvalid(f"rows {start}..{start + len(chunk) - 1} (one request): "
                                 f"{exc}") from None
    return answers


def main(argv: Sequence[str] | None = None, *, root: Path | None = None) -> int:
    """Run the command line; ``root``: the package folder (this module's by default)."""
    base = root or Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(prog=f"python -m {base.name}",
                                     description="Predict with the exported model.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="Predict every row of a CSV file.")
    p.add_argument("rows", type=Path, help="CSV file with a header row of feature names.")
    p.add_argument("--out", type=Path, help="Write the answers here (default: stdout).")
    p.add_argument("--log-dir", type=Path, default=os.environ.get("DRIFTLOOP_EDGE_LOG_DIR"),
                   help="Append every prediction to this log folder (driftloop ingest reads "
                        "it); default $DRIFTLOOP_EDGE_LOG_DIR, else no log.")
    p.add_argument("--id-column", help="CSV column holding each row's subject id (logged "
                                       "hashed, never a feature).")
    args = parser.parse_args(argv)
    try:
        verify(base)
        model = EdgeModel(base / "model", log_dir=args.log_dir)
        rows = read_rows(args.rows, model.validator.kinds)
        ids = None
        if args.id_column is not None:
            if rows and args.id_column not in rows[0]:
                raise RequestInvalid(f"{args.rows} has no column '{args.id_column}' (from "
                                     "--id-column).")
            ids = [r.pop(args.id_column) for r in rows]
        answers = predict_chunks(model, rows, ids)
    except (RequestInvalid, PackageInvalid) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    classes = [str(c) for c in model.manifest.get("classes") or []]
    if args.out is None:
        write_answers(answers, classes, sys.stdout)
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            write_answers(answers, classes, f)
    return 0


__all__ = ["main", "predict_chunks", "read_cell", "read_rows", "write_answers"]
