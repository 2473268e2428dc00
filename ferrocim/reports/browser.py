"""Report pages in a headless browser: a screenshot and the page as the browser built it.

For the screenshot check (``benchmarks/report_screenshots.py`` and a slow test), not for
making reports. Uses Playwright when it is installed with a browser, else a Chromium
binary on the PATH (``chromium-headless-shell``, ``chromium``, ``google-chrome``; or the
one ``$FERROCIM_BROWSER`` names) through its ``--screenshot`` and ``--dump-dom`` flags.
:func:`find_browser` returns None where there is neither, so callers can skip cleanly.
Pages are opened from ``file://`` URLs with no network: a report must work offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Chromium binaries tried in this order (after ``$FERROCIM_BROWSER``).
CHROMIUM_NAMES = (
    "chromium-headless-shell",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "headless_shell",
)
#: Screenshot width (px, a laptop window) and the tallest page captured (px).
WIDTH, MAX_HEIGHT = 1400, 16000


@dataclass(frozen=True)
class Browser:
    """How pages are opened: ``kind`` is ``"playwright"`` or ``"chromium"`` (then ``path``
    is the binary)."""

    kind: str
    path: str | None = None

    def describe(self) -> str:
        return "Playwright (Chromium)" if self.kind == "playwright" else f"Chromium at {self.path}"


def _playwright_works() -> bool:
    try:
        from playwright.sync_api import sync_playwright  # type: ignore[import-not-found]
    except ImportError:
        return False
    try:
        with sync_playwright() as p:
            p.chromium.launch().close()
    except Exception:  # no browser downloaded for it: try a Chromium binary
        return False
    return True


def find_browser() -> Browser | None:
    """The browser to use, or None where no headless browser is installed."""
    env = os.environ.get("FERROCIM_BROWSER")
    if env:
        path = shutil.which(env) or (env if Path(env).is_file() else None)
        return Browser("chromium", path) if path else None
    if _playwright_works():
        return Browser("playwright")
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return Browser("chromium", path)
    return None


def _chromium(browser: Browser, *args: str, timeout: float) -> subprocess.CompletedProcess:
    assert browser.path is not None
    with tempfile.TemporaryDirectory(prefix="ferrocim-browser-") as profile:
        cmd = [
            browser.path,
            "--headless",
            "--no-sandbox",  # root in containers
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)


def _trim_bottom(png: Path) -> tuple[int, int]:
    """Cut the empty background below a page's end off a tall screenshot; its size."""
    from PIL import Image

    with Image.open(png) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    last = rgb.crop((0, h - 1, w, h)).tobytes()
    bottom = h
    step = 50
    while bottom > step and rgb.crop((0, bottom - step, w, bottom)).tobytes() == last * step:
        bottom -= step
    while bottom > 1 and rgb.crop((0, bottom - 1, w, bottom)).tobytes() == last:
        bottom -= 1
    bottom = min(h, bottom + 20)
    rgb.crop((0, 0, w, bottom)).save(png)
    return w, bottom


def capture(
    browser: Browser,
    html: str | os.PathLike[str],
    png: str | os.PathLike[str],
    *,
    width: int = WIDTH,
    timeout: float = 120.0,
) -> str:
    """Open ``html`` in ``browser``, save a full-page screenshot to ``png`` (cut at the
    page's end, at most :data:`MAX_HEIGHT` px tall) and return the page's DOM as the
    browser built it (HTML text)."""
    url = Path(html).resolve().as_uri()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    if browser.kind == "playwright":
        from playwright.sync_api import sync_playwright  # type: ignore[import-not-found]

        with sync_playwright() as p:
            b = p.chromium.launch()
            try:
                page = b.new_page(viewport={"width": width, "height": 900}, offline=True)
                page.goto(url, timeout=timeout * 1000)
                page.screenshot(path=str(png), full_page=True)
                return page.content()
            finally:
                b.close()
    shot = _chromium(
        browser,
        f"--window-size={width},{MAX_HEIGHT}",
        f"--screenshot={png}",
        url,
        timeout=timeout,
    )
    if not png.is_file():
        raise RuntimeError(
            f"{browser.describe()} made no screenshot of {html}: "
            f"{shot.stderr.decode(errors='replace')[-500:]}"
        )
    _trim_bottom(png)
    dom = _chromium(browser, "--dump-dom", url, timeout=timeout)
    if dom.returncode != 0 or not dom.stdout:
        raise RuntimeError(f"{browser.describe()} could not read {html}")
    return dom.stdout.decode("utf-8", errors="replace")


__all__ = ["Browser", "capture", "find_browser"]
