"""A report is an ordered list of content records rendered into one HTML file.

Each record has a title, a section and a body (escaped text, a table, or an embedded
PNG figure). Rendering goes through an autoescaped Jinja template; figures are
embedded as base64 so the page is self-contained, and can also be written as PNG and SVG
files beside it. Plotting code lives elsewhere and hands in finished matplotlib figures.
A report also carries a headline box (the numbers that matter, shown first) and
warnings shown above everything else. Table cells go through
:mod:`ferrocim.reports.formatting`, the one place that decides how numbers look.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from ferrocim import __version__
from ferrocim.atomic import write_bytes, write_text
from ferrocim.reports.formatting import Kind, format_table


@dataclass(frozen=True)
class ContentRecord:
    """One block of a report. ``html`` is already safe (escaped or built by us)."""

    title: str
    section: str
    html: markupsafe.Markup
    slug: str
    png: bytes | None = None
    png_name: str | None = None
    svg: bytes | None = None
    #: further images of a figure group: (PNG file name, PNG, SVG)
    more: tuple[tuple[str, bytes, bytes | None], ...] = ()

    def images(self) -> list[tuple[str, bytes, bytes | None]]:
        """Every image of the record as (PNG file name, PNG, SVG)."""
        first = (
            []
            if self.png is None or self.png_name is None
            else [(self.png_name, self.png, self.svg)]
        )
        return first + list(self.more)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


@dataclass(frozen=True)
class FigureImages:
    """One figure rendered as PNG (for the page) and SVG (for papers)."""

    png: bytes
    svg: bytes | None = None


def render_figure(fig: Any, *, dpi: int = 110) -> FigureImages:
    """Render a matplotlib figure to PNG and SVG bytes and close it."""
    import matplotlib.pyplot as plt

    out = {}
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
        out[fmt] = buf.getvalue()
    plt.close(fig)
    return FigureImages(out["png"], out["svg"])


def figure_to_png(fig: Any, *, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


@dataclass
class Report:
    """An HTML report under construction (see module docstring)."""

    title: str
    subtitle: str = ""
    records: list[ContentRecord] = field(default_factory=list)
    headline: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[markupsafe.Markup] = field(default_factory=list)

    def add_headline(self, label: str, value: str) -> None:
        """One number of the box at the top of the page (already formatted)."""
        self.headline.append((label, value))

    def add_warning(self, text: str, *, command: str | None = None) -> None:
        """A warning shown at the top of the page, above the headline box; ``command``
        (e.g. how to resume a run) is shown under it as a block to copy."""
        html = markupsafe.escape(text)
        if command:
            html += markupsafe.Markup('<code class="command">{}</code>').format(command)
        self.warnings.append(html)

    def _unique_slug(self, title: str, section: str) -> str:
        base = _slug(f"{section}-{title}")
        taken = {r.slug for r in self.records}
        slug, i = base, 2
        while slug in taken:
            slug, i = f"{base}-{i}", i + 1
        return slug

    def add_text(self, title: str, text: str, *, section: str = "Summary") -> None:
        """Add paragraphs of plain text (escaped; blank lines separate paragraphs)."""
        paras = [p.strip() for p in text.strip().split("\n\n") if p.strip()]
        body = markupsafe.Markup("").join(markupsafe.Markup("<p>{}</p>").format(p) for p in paras)
        self.records.append(ContentRecord(title, section, body, self._unique_slug(title, section)))

    def add_facts(self, title: str, items: list[tuple[str, str]], *, section: str) -> None:
        """A headline-style box of labelled values inside a section."""
        body = markupsafe.Markup('<div class="headline">{}</div>').format(
            markupsafe.Markup("").join(
                markupsafe.Markup(
                    '<div><span class="label">{}</span><span class="value">{}</span></div>'
                ).format(label, value)
                for label, value in items
            )
        )
        self.records.append(ContentRecord(title, section, body, self._unique_slug(title, section)))

    def add_table(
        self,
        title: str,
        table: Any,
        *,
        section: str = "Summary",
        caption: str = "",
        formats: dict[str, Kind] | None = None,
    ) -> None:
        """Add a pandas DataFrame (or a list of dicts) as an escaped HTML table.

        Each column is formatted by :func:`ferrocim.reports.formatting.column_kind` of its
        name unless ``formats`` names its kind; wide tables scroll inside their own box.
        """
        import pandas as pd

        df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
        heads, cells = format_table(
            [str(c) for c in df.columns], df.astype(object).to_numpy().tolist(), formats
        )
        # long snake_case names may break after an underscore: wide tables stay in view
        wbr = markupsafe.Markup("_<wbr>")
        head = markupsafe.Markup("").join(
            markupsafe.Markup("<th>{}</th>").format(wbr.join(c.split("_"))) for c in heads
        )
        text = [all(isinstance(v, str) or v is None for v in df[c].tolist()) for c in df.columns]
        td = (markupsafe.Markup("<td>{}</td>"), markupsafe.Markup('<td class="text">{}</td>'))
        rows = markupsafe.Markup("").join(
            markupsafe.Markup("<tr>{}</tr>").format(
                markupsafe.Markup("").join(td[t].format(v) for v, t in zip(row, text, strict=True))
            )
            for row in cells
        )
        body = markupsafe.Markup(
            '<div class="table-wrap"><table class="data"><thead><tr>{}</tr></thead>'
            "<tbody>{}</tbody></table></div>"
        ).format(head, rows)
        if caption:
            body += markupsafe.Markup('<p class="caption">{}</p>').format(caption)
        self.records.append(ContentRecord(title, section, body, self._unique_slug(title, section)))

    def add_figure(
        self,
        title: str,
        fig: Any,
        *,
        section: str = "Figures",
        caption: str = "",
        png_name: str | None = None,
    ) -> None:
        """Add a matplotlib figure (closed after rendering), rendered images or PNG bytes."""
        if isinstance(fig, bytes):
            fig = FigureImages(fig)
        elif not isinstance(fig, FigureImages):
            fig = render_figure(fig)
        png = fig.png
        b64 = base64.b64encode(png).decode("ascii")
        body = markupsafe.Markup('<img alt="{}" src="data:image/png;base64,{}">').format(title, b64)
        if caption:
            body += markupsafe.Markup('<p class="caption">{}</p>').format(caption)
        slug = self._unique_slug(title, section)
        self.records.append(
            ContentRecord(
                title,
                section,
                body,
                slug,
                png=png,
                png_name=png_name or f"{slug}.png",
                svg=fig.svg,
            )
        )

    def add_figure_group(
        self,
        title: str,
        figures: list[tuple[str, Any]],
        *,
        section: str = "Figures",
        caption: str = "",
    ) -> None:
        """One block of several similar figures (e.g. one per layer), each folded in its own
        ``<details>`` under its label, so the page stays short; every figure is still
        written as PNG and SVG by :meth:`save`."""
        slug = self._unique_slug(title, section)
        body = markupsafe.Markup("")
        if caption:
            body += markupsafe.Markup('<p class="caption">{}</p>').format(caption)
        images = []
        for label, fig in figures:
            img = fig if isinstance(fig, FigureImages) else render_figure(fig)
            b64 = base64.b64encode(img.png).decode("ascii")
            body += markupsafe.Markup(
                '<details class="figure"><summary>{}</summary>'
                '<img alt="{}" src="data:image/png;base64,{}"></details>'
            ).format(label, f"{title}: {label}", b64)
            images.append((f"{slug}-{_slug(label)}.png", img.png, img.svg))
        self.records.append(ContentRecord(title, section, body, slug, more=tuple(images)))

    def sections(self) -> list[tuple[str, list[ContentRecord]]]:
        """Records grouped by section, sections in first-seen order."""
        order: dict[str, list[ContentRecord]] = {}
        for r in self.records:
            order.setdefault(r.section, []).append(r)
        return list(order.items())

    def render(self) -> str:
        """The HTML page as a string."""
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("ferrocim.reports", "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
        )
        return env.get_template("report.html").render(
            title=self.title,
            subtitle=self.subtitle,
            sections=self.sections(),
            headline=self.headline,
            warnings=self.warnings,
            version=__version__,
            generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )

    def save(
        self, path: str | os.PathLike[str], *, png_dir: str | os.PathLike[str] | None = None
    ) -> Path:
        """Write the page atomically; with ``png_dir``, also every figure as PNG and SVG."""
        if png_dir is not None:
            from ferrocim.names import inside

            for r in self.records:
                for name, png, svg in r.images():
                    write_bytes(inside(png_dir, name), png)
                    if svg is not None:
                        write_bytes(inside(png_dir, str(Path(name).with_suffix(".svg"))), svg)
        return write_text(path, self.render())
