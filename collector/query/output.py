"""Render a query result for the terminal: an aligned table, JSON, or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

from collector.jsonvalues import jsonable
from collector.query.result import QueryResult

OutputFormat = Literal["table", "json", "csv"]
MAX_CELL_WIDTH = 80


def render(result: QueryResult, output_format: OutputFormat) -> str:
    if output_format == "json":
        rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        return json.dumps(rows, default=jsonable, ensure_ascii=False, indent=2) + "\n"
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_cell(v) for v in row] for row in result.rows])
        return buffer.getvalue()
    return _table(result)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=jsonable, ensure_ascii=False)
    text = jsonable(value)
    return text if isinstance(text, str) else str(value)


def _table(result: QueryResult) -> str:
    cells = [[_clip(_cell(v)) for v in row] for row in result.rows]
    widths = [len(c) for c in result.columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [
        " | ".join(name.ljust(w) for name, w in zip(result.columns, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
    ]
    lines.extend(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
    count = len(result.rows)
    lines.append(f"({count} row{'s' if count != 1 else ''})")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _clip(text: str) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= MAX_CELL_WIDTH else text[: MAX_CELL_WIDTH - 1] + "…"
