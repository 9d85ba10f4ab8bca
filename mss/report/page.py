"""The report's HTML page: sections of headings, text, notes, tables and images, written as one offline file."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from mss.evaluation.tables import format_cell

STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1300px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.7em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table.data { border-collapse: collapse; font-size: .9em; margin: .6em 0; }
table.data th, table.data td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
table.data th { background: #f3f3f3; } table.data td:first-child, table.data td:nth-child(2) { text-align: left; }
tr.oracle td { color: #666; font-style: italic; } tr.average td { font-weight: 600; background: #fafafa; }
p.note { color: #8a5a00; background: #fff8e6; border-left: 3px solid #e0a800; padding: .3em .7em; }
img { max-width: 100%; border: 1px solid #eee; } .summary { font-size: 1.05em; background: #f4f8ff; padding: .6em 1em; }
"""


class Report:
    """Collects HTML sections; figures are written to ``out_dir`` and linked relatively."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.parts: list[str] = []

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, css: str = "") -> None:
        self.parts.append(
            f'<p class="{css}">{html.escape(text)}</p>' if css else f"<p>{html.escape(text)}</p>"
        )

    def note(self, text: str) -> None:
        self.text(text, "note")

    def image(self, path: Path, alt: str) -> None:
        self.parts.append(f'<p><img src="{html.escape(path.name)}" alt="{html.escape(alt)}"></p>')

    def table(self, frame: pd.DataFrame, row_classes: Sequence[str] | None = None, digits: int = 2) -> None:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
        rows = []
        for index, row in enumerate(frame.itertuples(index=False)):
            css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
            cells = "".join(f"<td>{html.escape(format_cell(v, digits))}</td>" for v in row)
            rows.append(f"<tr{css}>{cells}</tr>")
        self.parts.append(
            f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        )

    def write(self, title: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        page = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>Generated {stamp} by <code>python -m mss.report</code>.</p>{''.join(self.parts)}</body></html>"
        )
        path = self.out_dir / "index.html"
        path.write_text(page)
        return path
