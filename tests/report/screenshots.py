"""The README's dashboard screenshots (docs/report-*.png), from the demo's data: ``make
screenshots``.

Two demos in a scratch folder: the default month (25 users, 30 days of calls) and six months
(``--days 183``). Of the first: its last full month, one day, and an empty period (a month
before the data); of the second: its last six months. Each page is the real ``voipstudio
report`` output, shot in headless Chromium (``report_browser.py``), its top part only and scaled
down so that the PNGs stay small. Prints each file and its size.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_browser import chromium, find_browser, png_size

from pipelines.demo import DEMO_DB, run_demo
from pipelines.emulator.config import EmulatorConfig
from pipelines.models import ModelSettings
from pipelines.report import Period, write_report

DOCS = Path(__file__).resolve().parents[2] / "docs"
WIDTH, SCALE = 1280, 0.6
# The top of the page: header, filters, tiles, daily volume, queues, interval view, trends.
HEIGHT = 2500


def _demo(folder: Path, days: int) -> Path:
    folder.mkdir(parents=True)
    os.chdir(folder)
    for key in list(os.environ):
        if key.startswith(("SOURCES__", "DESTINATION__", "MODELS__", "PIPELINES__")):
            del os.environ[key]
    if run_demo(days=days) != 0:
        raise SystemExit(f"the demo of {days} days failed")
    return folder / DEMO_DB


def main() -> int:
    """Make the four screenshots; returns the exit code."""
    found = find_browser()
    if found is None:
        print("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="report-screenshots-"))
    month_db = _demo(scratch / "month", 30)
    six_db = _demo(scratch / "six", 183)
    # The demo builds its models in its company's zone, with Spanish national numbers.
    settings = ModelSettings(
        reporting_timezone=EmulatorConfig().timezone, default_country_code="34"
    )
    today: date = datetime.now(ZoneInfo(settings.reporting_timezone)).date()
    yesterday = today - timedelta(days=1)
    pages = {
        "report-month.png": (month_db, Period(yesterday - timedelta(days=29), yesterday)),
        "report-day.png": (month_db, Period(yesterday - timedelta(days=1), yesterday)),
        "report-empty.png": (
            month_db,
            Period(today - timedelta(days=120), today - timedelta(days=91)),
        ),
        "report-six-months.png": (six_db, Period(yesterday - timedelta(days=181), yesterday)),
    }
    failed = False
    with chromium(*found, width=WIDTH) as browser:
        for name, (database, period) in pages.items():
            if name == "report-day.png":
                period = Period(period.end, period.end)
            page = write_report(
                database,
                scratch / name.replace(".png", ".html"),
                dataset="voipstudio",
                settings=settings,
                period=period,
            )
            browser.open(page.path)
            errors = [e for e in browser.console() if e.get("level") == "SEVERE"]
            failed = failed or bool(errors)
            shot = browser.screenshot(DOCS / name, width=WIDTH, scale=SCALE, height=HEIGHT)
            width, height = png_size(shot)
            print(
                f"{shot}: {width}x{height}, {shot.stat().st_size:,} bytes "
                f"(page {page.size:,} bytes, {period.start} to {period.end})"
            )
            for entry in errors:
                print(f"console error: {entry.get('message')}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
