"""Reading a report page back: its headline box, warnings, tables and figures.

For tests and the screenshot check (``benchmarks/report_screenshots.py``): what a reader
sees on a page, parsed from the HTML that :class:`ferrocim.reports.html.Report` renders
(standard library only, no browser), so the page's numbers can be compared with the run
records they came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path


@dataclass
class PageTable:
    """One table of a page: its article's title, headers and cell texts."""

    title: str
    headers: list[str]
    rows: list[list[str]]

    def records(self) -> list[dict[str, str]]:
        """The rows as ``{header: cell}``."""
        return [dict(zip(self.headers, r, strict=False)) for r in self.rows]

    def column(self, header: str) -> list[str]:
        """The cells of the column ``header``."""
        j = self.headers.index(header)
        return [r[j] for r in self.rows]


@dataclass
class Page:
    """What a report page shows (texts as displayed, whitespace collapsed)."""

    title: str = ""
    headline: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tables: list[PageTable] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # alt texts of the images
    articles: list[str] = field(default_factory=list)  # titles of the blocks, in order
    texts: list[str] = field(default_factory=list)  # paragraphs and code blocks

    def table(self, title: str) -> PageTable:
        """The first table under the article titled ``title`` (KeyError if none)."""
        for t in self.tables:
            if t.title == title:
                return t
        raise KeyError(f"no table {title!r}; tables: {[t.title for t in self.tables]}")

    def headline_value(self, label: str) -> str:
        """The value shown under ``label`` in the page's top headline box."""
        for lab, value in self.headline:
            if lab == label:
                return value
        raise KeyError(f"no headline {label!r}; labels: {[lab for lab, _ in self.headline]}")


def _classes(attrs: list[tuple[str, str | None]]) -> set[str]:
    return set((dict(attrs).get("class") or "").split())


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._text: list[str] | None = None  # text being collected
        self._what = ""
        self._article = ""
        self._in_main = False
        self._headline_depth = 0  # >0 inside the top headline box
        self._label: str | None = None
        self._table: PageTable | None = None
        self._row: list[str] | None = None
        self._in_head = False

    def _start(self, what: str) -> None:
        self._text, self._what = [], what

    def _flush(self) -> str:
        text = " ".join("".join(self._text or []).split())
        self._text = None
        return text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = _classes(attrs)
        if tag == "main":
            self._in_main = True
        elif tag == "title" or tag == "h3":
            self._start(tag)
        elif tag == "div" and "headline" in cls and not self._article and self._in_main:
            self._headline_depth = 1
        elif tag == "div" and self._headline_depth:
            self._headline_depth += 1
        elif tag == "div" and "warning" in cls:
            self._start("warning")
        elif tag == "span" and self._headline_depth and ("label" in cls or "value" in cls):
            self._start("label" if "label" in cls else "value")
        elif tag == "table":
            self._table = PageTable(self._article, [], [])
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self._table is not None and not self._in_head:
            self._row = []
        elif tag in ("th", "td") and self._table is not None:
            self._start(tag)
        elif tag == "img":
            self.page.figures.append(dict(attrs).get("alt") or "")
        elif (tag == "p" or tag == "code") and self._text is None:
            self._start("text")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._what == "title":
            self.page.title = self._flush()
        elif tag == "h3" and self._what == "h3":
            self._article = self._flush()
            self.page.articles.append(self._article)
        elif tag == "article":
            self._article = ""
        elif tag == "div" and self._what == "warning" and self._text is not None:
            self.page.warnings.append(self._flush())
        elif tag == "div" and self._headline_depth:
            self._headline_depth -= 1
        elif tag == "span" and self._what in ("label", "value") and self._text is not None:
            text = self._flush()
            if self._what == "label":
                self._label = text
            elif self._label is not None:
                self.page.headline.append((self._label, text))
                self._label = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "th" and self._table is not None and self._what == "th":
            self._table.headers.append(self._flush())
        elif tag == "td" and self._row is not None and self._what == "td":
            self._row.append(self._flush())
        elif tag == "tr" and self._row is not None and self._table is not None:
            self._table.rows.append(self._row)
            self._row = None
        elif tag == "table" and self._table is not None:
            self.page.tables.append(self._table)
            self._table = None
        elif tag in ("p", "code") and self._what == "text" and self._text is not None:
            self.page.texts.append(self._flush())

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def read_page(html: str | os.PathLike[str]) -> Page:
    """Parse a report page (its HTML text, or the path of its file)."""
    if isinstance(html, os.PathLike) or (
        isinstance(html, str) and not html.lstrip().startswith("<")
    ):
        html = Path(html).read_text(encoding="utf-8")
    parser = _Parser()
    parser.feed(str(html))
    parser.close()
    return parser.page


__all__ = ["Page", "PageTable", "read_page"]
