"""One self-contained HTML report of a study: tables and figures in the thesis's order, each
with the run it came from, the settings that produced it and the verdicts that qualify it.

Pure: it takes what :mod:`isic_tracking.tracking.report_data` read from MLflow and returns a
string. Images are inlined as ``data:`` URIs and there is no JavaScript, so the file reads the
same from disk, from a mail attachment and from MLflow's artifact viewer. A large PNG (a grid of
noisy visualizations compresses badly: 1-2 MB each) is inlined as a JPEG when that is smaller
(:func:`inline_image`): the demo grid's report fell from 28 MB to a few; the logged figure
itself, behind the item's run link, keeps every pixel.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
from PIL import Image


@dataclass(frozen=True)
class Figure:
    """One PNG and what it shows."""

    caption: str
    png: bytes


@dataclass(frozen=True)
class Table:
    """One table and what it shows (its data set, folds and grouping go in ``note``)."""

    caption: str
    frame: pd.DataFrame
    note: str = ""


@dataclass(frozen=True)
class Item:
    """The content of one (section, architecture, task) cell: e.g. the confusion matrices of
    AlexNet on the binary task, taken from one run."""

    id: str
    title: str
    run_id: str | None = None
    run_link: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)
    verdicts: Sequence[str] = ()
    tables: Sequence[Table] = ()
    figures: Sequence[Figure] = ()
    missing: str = ""  # why nothing is shown, when nothing is


@dataclass(frozen=True)
class Section:
    """One of the thesis's tables or figure groups (e.g. "Tables 6-9: results")."""

    id: str
    title: str
    intro: str
    items: Sequence[Item]


@dataclass(frozen=True)
class Report:
    title: str
    summary: Sequence[str]
    sections: Sequence[Section]
    links: Mapping[str, str] = field(default_factory=dict)  # name -> URL, shown at the top


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#1d2430;line-height:1.45}
h1{font-size:1.7rem}h2{font-size:1.35rem;border-bottom:2px solid #d0d7de;padding-bottom:.3rem;
margin-top:2.5rem}h3{font-size:1.08rem;margin:1.6rem 0 .4rem}
nav ol{columns:2}table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:right}
th{background:#f3f5f7}td:first-child,th:first-child{text-align:left}
figure{margin:.8rem 0;display:inline-block;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid #e3e6ea}figcaption{font-size:.85rem;color:#555}
.meta{font-size:.82rem;color:#555}.verdict{padding:.2rem .5rem;border-radius:4px;
background:#fff4d6;display:inline-block;margin:.15rem 0;font-size:.88rem}
.missing{color:#a33}.scroll{overflow-x:auto;max-width:100%}.note{font-size:.82rem;color:#555}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


#: every float of a table, to four significant digits (0.9722, 1, 0.0001234): the logged
#: CSV behind the item's run link keeps full precision
FLOAT_FORMAT = "{:.4g}"


def _table_html(t: Table) -> str:
    body = t.frame.to_html(
        index=False, border=0, na_rep="", escape=True, float_format=FLOAT_FORMAT.format
    )
    note = f'<p class="note">{_e(t.note)}</p>' if t.note else ""
    return f'<h4>{_e(t.caption)}</h4>{note}<div class="scroll">{body}</div>'


#: A PNG up to this size is inlined as it is; a larger one as a JPEG when that is smaller.
INLINE_PNG_LIMIT = 200_000
JPEG_QUALITY = 88


def inline_image(png: bytes, limit: int = INLINE_PNG_LIMIT) -> tuple[str, bytes]:
    """(MIME type, bytes) to inline for a figure: the PNG itself up to ``limit`` bytes, else
    the smaller of it and a JPEG (quality :data:`JPEG_QUALITY`, transparency on white)."""
    if len(png) <= limit:
        return "image/png", png
    with Image.open(io.BytesIO(png)) as im:
        rgba = im.convert("RGBA")
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    buf = io.BytesIO()
    flat.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    jpeg = buf.getvalue()
    return ("image/jpeg", jpeg) if len(jpeg) < len(png) else ("image/png", png)


def _figure_html(f: Figure) -> str:
    mime, raw = inline_image(f.png)
    data = base64.b64encode(raw).decode("ascii")
    return (
        f'<figure><img alt="{_e(f.caption)}" src="data:{mime};base64,{data}">'
        f"<figcaption>{_e(f.caption)}</figcaption></figure>"
    )


def _item_html(item: Item) -> str:
    parts = [f'<section id="{_e(item.id)}" class="item"><h3>{_e(item.title)}</h3>']
    if item.run_id:
        target = item.run_link or item.run_id
        parts.append(
            f'<p class="meta">from run <a class="run" data-run-id="{_e(item.run_id)}" '
            f'href="{_e(target)}">{_e(item.run_id)}</a></p>'
        )
    if item.settings:
        cells = ", ".join(f"{_e(k)}={_e(v)}" for k, v in item.settings.items())
        parts.append(f'<p class="meta">settings: {cells}</p>')
    parts += [f'<div class="verdict">{_e(v)}</div>' for v in item.verdicts]
    parts += [_table_html(t) for t in item.tables]
    parts += [_figure_html(f) for f in item.figures]
    if item.missing:
        parts.append(f'<p class="missing">{_e(item.missing)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """The report as one HTML document (no external resources, no scripts)."""
    toc = "".join(f'<li><a href="#{_e(s.id)}">{_e(s.title)}</a></li>' for s in report.sections)
    links = " · ".join(f'<a href="{_e(u)}">{_e(n)}</a>' for n, u in report.links.items())
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(report.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
        *(f"<p>{_e(s)}</p>" for s in report.summary),
        f'<p class="meta">{links}</p>' if links else "",
        f"<nav><ol>{toc}</ol></nav>",
    ]
    for s in report.sections:
        out.append(f'<h2 id="{_e(s.id)}">{_e(s.title)}</h2><p>{_e(s.intro)}</p>')
        out += [_item_html(i) for i in s.items]
    out.append("</body></html>")
    return "\n".join(out)


def slug(text: str) -> str:
    """An HTML id fragment for an architecture or task name (``timm:resnet18`` -> ``timm-resnet18``)."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
