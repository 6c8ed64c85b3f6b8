"""A small HTML document model for reports: sections of blocks rendered to one
self-contained page (inline CSS with print rules, images as ``data:`` URIs, no scripts).

A report is a list of :class:`Section` objects, so a new kind of report (e.g. a utility
study) is a new function returning sections; the page shell, notices and styling are shared.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from medgan import __version__

_CSS = """
:root { --ink: #1d2329; --muted: #5b6670; --line: #d6dbe0; --accent: #1f5f8b; --warn: #8a4b00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1040px; padding: 24px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line);
     color: var(--accent); }
h3 { font-size: 15px; margin: 16px 0 6px; }
.subtitle { color: var(--muted); margin: 0 0 12px; }
.notice { border: 1px solid var(--line); border-left: 4px solid var(--accent); background: #f4f8fb;
          padding: 8px 12px; margin: 8px 0; }
.notice.warn { border-left-color: var(--warn); background: #fff7ec; }
.note { color: var(--muted); font-style: italic; margin: 6px 0; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f1f3f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 240px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12px; }
.columns { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.columns table.kv th { width: auto; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 6px 0; break-inside: avoid; page-break-inside: avoid; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figure img.pixels { image-rendering: pixelated; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 3px; max-width: 480px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
         padding-top: 8px; }
@page { size: A4; margin: 14mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  h2 { break-after: avoid; page-break-after: avoid; }
  section { break-inside: auto; }
  table, figure, .notice { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass
class Figure:
    """One embedded PNG with a caption. ``pixels``: render sharp when scaled (sample grids)."""

    png: bytes
    caption: str
    alt: str = ""
    width: int | None = None  # CSS pixels; None = natural size (capped at the page width)
    pixels: bool = False

    def render(self) -> str:
        style = f' style="width:{int(self.width)}px"' if self.width else ""
        cls = ' class="pixels"' if self.pixels else ""
        return (
            f'<figure><img src="{png_data_uri(self.png)}" alt="{esc(self.alt or self.caption)}"'
            f"{cls}{style}><figcaption>{esc(self.caption)}</figcaption></figure>"
        )


@dataclass
class Section:
    """A titled part of a report: an ``id`` (for tests and links) and rendered blocks."""

    id: str
    title: str
    blocks: list[str] = field(default_factory=list)

    def add(self, block: str) -> Section:
        self.blocks.append(block)
        return self

    def text(self, text: str) -> Section:
        return self.add(f"<p>{esc(text)}</p>")

    def note(self, text: str) -> Section:
        return self.add(f'<p class="note">{esc(text)}</p>')

    def kv(self, pairs: Iterable[tuple[str, Any]]) -> Section:
        return self.add(kv_table(pairs))

    def kv_columns(self, pairs: Sequence[tuple[str, Any]], columns: int = 2) -> Section:
        """A long key/value list as side-by-side tables (settings)."""
        per = -(-len(pairs) // max(1, columns))
        parts = [kv_table(pairs[i : i + per]) for i in range(0, len(pairs), per or 1)]
        return self.add('<div class="columns">' + "".join(parts) + "</div>")

    def table(self, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Section:
        return self.add(table(header, rows))

    def figures(self, figures: Sequence[Figure]) -> Section:
        if figures:
            self.add('<div class="figures">' + "".join(f.render() for f in figures) + "</div>")
        return self

    def render(self) -> str:
        return (
            f'<section id="{esc(self.id)}"><h2>{esc(self.title)}</h2>' + "".join(self.blocks)
        ) + "</section>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = "—" if value is None or value == "" else str(value)
    num = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{esc(text)}</td>' if num else f"<td>{esc(text)}</td>"


def kv_table(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th>{_cell(v)}</tr>" for k, v in pairs)
    return f'<table class="kv">{rows}</table>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def notice(text: str, *, warn: bool = False) -> str:
    return f'<div class="notice{" warn" if warn else ""}">{esc(text)}</div>'


def render_page(
    title: str,
    subtitle: str,
    sections: Sequence[Section],
    *,
    notices: Sequence[str] = (),
    kind: str = "report",
) -> str:
    """The whole page: shell, notices (already rendered) at the top, sections, footer."""
    body = "".join(s.render() for s in sections)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="MedGAN Studio {esc(__version__)}">'
        f'<meta name="medgan-report" content="{esc(kind)}">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
        f"<body><header><h1>{esc(title)}</h1>"
        f'<p class="subtitle">{esc(subtitle)}</p>{"".join(notices)}</header>'
        f"{body}<footer>Written by MedGAN Studio {esc(__version__)}. Synthetic images are for "
        "research and dataset augmentation only, never for diagnosis. This report holds no "
        "patient names, IDs, dates or UIDs.</footer></body></html>\n"
    )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
