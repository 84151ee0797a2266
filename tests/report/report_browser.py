"""A real headless Chromium driven by chromedriver (Debian's ``chromium`` and
``chromium-driver``; ``.ci/run`` installs them), for the dashboard's browser tests.

Also a script: ``python tests/report/report_browser.py REPORT.html OUT.png [WIDTH [SCALE
[HEIGHT]]]`` takes a screenshot of a report, the whole page or its first HEIGHT pixels. README's
screenshots (docs/report-*.png) are made by ``make screenshots`` (``screenshots.py``).
"""

from __future__ import annotations

import base64
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
# The machine running the tests may have no network: everything that phones home is off, so
# Chromium starts fast and logs nothing about failed fetches.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# What every Chart.js chart on the page drew: its datasets and data points (Chart.js's own
# record), and the marks (bars, points) actually laid out on the canvas: at least a pixel wide
# and high. Bar widths tell a one-day chart of hairlines from one with real bars (the bar's
# thickness across its category axis).
CHARTS_JS = """
return Object.values(Chart.instances).map(function (chart) {
  var datasets = chart.data.datasets;
  var points = datasets.reduce(function (n, d) {
    return n + d.data.filter(function (v) { return v !== null && v !== undefined; }).length;
  }, 0);
  var visible = 0, bars = [];
  var horizontal = chart.options.indexAxis === 'y';
  datasets.forEach(function (d, i) {
    var meta = chart.getDatasetMeta(i);
    meta.data.forEach(function (el, j) {
      var v = d.data[j];
      if (v === null || v === undefined) { return; }
      if (meta.type === 'bar') {
        var p = el.getProps(['x', 'y', 'base', 'width', 'height'], true);
        var thick = horizontal ? p.height : p.width;
        var long = horizontal ? Math.abs(p.x - p.base) : Math.abs(p.y - p.base);
        if (v > 0) { bars.push(thick); }
        if (thick >= 1 && long >= 1) { visible += 1; }
      } else if (!el.skip) {
        visible += 1;
      }
    });
  });
  return {
    id: chart.canvas.id,
    traces: datasets.length,
    points: points,
    labels: chart.data.labels.length,
    visible: visible,
    widest_bar: bars.length ? Math.max.apply(null, bars) : null,
    narrowest_bar: bars.length ? Math.min.apply(null, bars) : null
  };
});
"""


def find_browser() -> tuple[str, str] | None:
    """Paths of Chromium and chromedriver, or None when either is missing."""
    browser = next((p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@dataclass
class Browser:
    """A running headless Chromium."""

    driver: Any

    def tiles(self) -> dict[str, dict[str, str]]:
        """The tiles on the page by key: their value (``data-value``), previous value, text and
        change as shown."""
        found = self.js(
            "return Array.from(document.querySelectorAll('.tile')).map(t => ({"
            "key: t.dataset.kpi, value: t.dataset.value, previous: t.dataset.previous,"
            "text: t.querySelector('.tile-value').textContent,"
            "change: t.querySelector('.tile-change').textContent}))"
        )
        return {tile["key"]: tile for tile in found}

    def choose(self, **filters: object) -> None:
        """Set the page's filters (``from``, ``to``: ISO days; ``account``, ``queue``,
        ``agent``, ``direction``: option values) as a user would pick them, and re-render."""
        self.js("window.report.set(arguments[0])", {k: str(v) for k, v in filters.items()})

    def options(self, name: str) -> list[tuple[str, str]]:
        """The (value, label) options of a filter's list."""
        return [
            (str(value), str(label))
            for value, label in self.js(
                "return Array.from(document.getElementById('f-' + arguments[0]).options)"
                ".map(o => [o.value, o.textContent])",
                name,
            )
        ]

    def open(self, page: Path) -> None:
        """Load a file and wait until its charts have rendered (or failed to)."""
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver.get_log("browser")  # drop what earlier pages logged
        self.driver.get(page.resolve().as_uri())
        WebDriverWait(self.driver, 60).until(
            lambda d: (
                d.execute_script("return document.body.getAttribute('data-rendered')")
                in ("true", "failed")
            )
        )

    def console(self) -> list[dict[str, Any]]:
        """Console entries logged since the page was opened."""
        return list(self.driver.get_log("browser"))

    def charts(self) -> list[dict[str, Any]]:
        """What each chart drew (see ``CHARTS_JS``)."""
        return list(self.driver.execute_script(CHARTS_JS))

    def js(self, script: str, *args: Any) -> Any:
        """Run a script in the page."""
        return self.driver.execute_script(script, *args)

    def screenshot(
        self, target: Path, width: int = 1440, scale: float = 1.0, height: int | None = None
    ) -> Path:
        """A PNG of the whole page (not only the window) at ``width`` CSS pixels, or of its first
        ``height`` pixels, scaled by ``scale``."""
        self.driver.set_window_size(width, 900)
        page = int(self.js("return document.documentElement.scrollHeight"))
        # Resize to the page's height so responsive charts lay out at their final size.
        self.driver.set_window_size(width, page)
        self.js("window.dispatchEvent(new Event('resize'))")
        page = int(self.js("return document.documentElement.scrollHeight"))
        clip = {"x": 0, "y": 0, "width": width, "height": min(page, height or page), "scale": scale}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(shot["data"]))
        return target


@contextmanager
def chromium(browser: str, driver: str, width: int = 1440, height: int = 900) -> Iterator[Browser]:
    """Start headless Chromium with a fresh profile; quit it afterwards."""
    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager: no telemetry
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="report-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield Browser(session)
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file (from its header).

    Raises:
        ValueError: the file is not a PNG.
    """
    head = path.read_bytes()[:24]
    if head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def main(argv: list[str]) -> int:
    """``report_browser.py REPORT.html OUT.png [WIDTH [SCALE [HEIGHT]]]``."""
    if len(argv) not in (2, 3, 4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    found = find_browser()
    if found is None:
        print("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
        return 1
    width = int(argv[2]) if len(argv) > 2 else 1440
    scale = float(argv[3]) if len(argv) > 3 else 1.0
    height = int(argv[4]) if len(argv) > 4 else None
    with chromium(*found, width=width) as page:
        page.open(Path(argv[0]))
        severe = [entry for entry in page.console() if entry.get("level") == "SEVERE"]
        target = page.screenshot(Path(argv[1]), width=width, scale=scale, height=height)
    print(f"{target}: {png_size(target)[0]}x{png_size(target)[1]}, {target.stat().st_size:,} bytes")
    for entry in severe:
        print(f"console error: {entry.get('message')}", file=sys.stderr)
    return 1 if severe else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
