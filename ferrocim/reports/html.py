"""A report is an ordered list of content records rendered into one HTML file.

Each record has a title, a section and a body (escaped text, a table, or an embedded
PNG figure). Rendering goes through an autoescaped Jinja template; figures are
embedded as base64 so the page is self-contained, and can also be written as PNG files
beside it. Plotting code lives elsewhere and hands in finished matplotlib figures.
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


@dataclass(frozen=True)
class ContentRecord:
    """One block of a report. ``html`` is already safe (escaped or built by us)."""

    title: str
    section: str
    html: markupsafe.Markup
    slug: str
    png: bytes | None = None
    png_name: str | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


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

    def add_table(
        self,
        title: str,
        table: Any,
        *,
        section: str = "Summary",
        caption: str = "",
        float_format: str = "{:.4g}",
    ) -> None:
        """Add a pandas DataFrame (or a list of dicts) as an escaped HTML table."""
        import pandas as pd

        df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)

        def fmt(v: Any) -> str:
            if isinstance(v, float):
                return float_format.format(v)
            return str(v)

        head = markupsafe.Markup("").join(
            markupsafe.Markup("<th>{}</th>").format(c) for c in df.columns
        )
        rows = markupsafe.Markup("").join(
            markupsafe.Markup("<tr>{}</tr>").format(
                markupsafe.Markup("").join(
                    markupsafe.Markup("<td>{}</td>").format(fmt(v)) for v in row
                )
            )
            for row in df.itertuples(index=False)
        )
        body = markupsafe.Markup(
            '<table class="data"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>'
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
        """Add a matplotlib figure (closed after rendering) or ready PNG bytes."""
        png = fig if isinstance(fig, bytes) else figure_to_png(fig)
        b64 = base64.b64encode(png).decode("ascii")
        body = markupsafe.Markup('<img alt="{}" src="data:image/png;base64,{}">').format(title, b64)
        if caption:
            body += markupsafe.Markup('<p class="caption">{}</p>').format(caption)
        slug = self._unique_slug(title, section)
        self.records.append(
            ContentRecord(title, section, body, slug, png=png, png_name=png_name or f"{slug}.png")
        )

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
            version=__version__,
            generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )

    def save(
        self, path: str | os.PathLike[str], *, png_dir: str | os.PathLike[str] | None = None
    ) -> Path:
        """Write the page atomically; with ``png_dir``, also every figure as a PNG file."""
        if png_dir is not None:
            for r in self.records:
                if r.png is not None and r.png_name is not None:
                    write_bytes(Path(png_dir) / r.png_name, r.png)
        return write_text(path, self.render())
