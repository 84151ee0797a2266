"""The dashboard in a real headless Chromium: it loads from disk with no network and no console
error, every chart draws its data, the tiles show the marts' numbers, empty data and a single day
render as such, and data cannot inject markup. Screenshots go to test-output/ (git-ignored).
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW, OUTPUT, PERIOD, SETTINGS, Company, expected_tiles, raw_only_database
from report_browser import Browser, png_size

from pipelines.emulator.config import DEFAULT_API_KEY
from pipelines.report import Period, fmt, write_report
from pipelines.report.data import load_report, open_marts
from pipelines.report.render import render_html

CHARTS = {"chart-daily", "chart-heatmap", "chart-destinations", "chart-traffic"}


def write(company: Company, target: Path, period: Period = PERIOD) -> Path:
    return write_report(
        company.db_path, target, dataset="voipstudio", settings=SETTINGS, period=period, now=NOW
    ).path


def severe(browser: Browser) -> list[str]:
    return [str(entry["message"]) for entry in browser.console() if entry["level"] == "SEVERE"]


def open_rendered(browser: Browser, page: Path) -> dict[str, dict[str, Any]]:
    """Open the page: it renders with no console error. What each chart drew, by id."""
    browser.open(page)
    assert severe(browser) == []
    assert browser.js("return document.body.getAttribute('data-rendered')") == "true"
    return {chart["id"]: chart for chart in browser.charts()}


def check_screenshot(browser: Browser, name: str) -> Path:
    """A full-page PNG in test-output/, and that it is a real, non-trivial picture."""
    shot = browser.screenshot(OUTPUT / name)
    width, height = png_size(shot)
    assert width == 1440 and height > 600
    assert shot.stat().st_size > 20_000  # a blank page of that size compresses to a few KB
    return shot


def test_every_chart_renders_its_data_with_no_console_error(
    company: Company, browser: Browser, tmp_path: Path
) -> None:
    charts = open_rendered(browser, write(company, tmp_path / "report.html"))
    assert set(charts) == CHARTS
    for chart in charts.values():
        assert chart["svg"] >= 1, chart  # plotly drew its SVG layers
        assert chart["traces"] >= 1 and chart["points"] > 0, chart
        assert chart["visible"] > 0, chart  # bars, lines, markers or the heatmap image show
    assert charts["chart-daily"]["narrowest_bar"] >= 10  # 14 days across the card
    assert charts["chart-heatmap"]["points"] == 7 * 24
    assert charts["chart-traffic"]["traces"] == 2  # the hours and the busy-hour markers
    assert browser.js("return document.querySelectorAll('[data-empty]').length") == 0
    rows = browser.js("return document.querySelectorAll('table[data-table=users] tbody tr').length")
    assert rows == company.scalar(
        "select count(distinct user_id) from voipstudio.agg_user_daily "
        "where call_date between $start and $end",
        {"start": PERIOD.start, "end": PERIOD.end},
    )
    # Works offline: nothing was fetched, everything is inline.
    fetched = browser.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [url for url in fetched if not url.startswith(("data:", "file:"))] == []
    check_screenshot(browser, "report.png")


def test_the_tiles_show_the_marts_numbers(
    company: Company, browser: Browser, tmp_path: Path
) -> None:
    browser.open(write(company, tmp_path / "report.html"))
    tiles = browser.js(
        "return Array.from(document.querySelectorAll('.tile')).map(t => ({"
        "key: t.dataset.kpi, value: t.dataset.value, previous: t.dataset.previous,"
        "text: t.querySelector('.tile-value').textContent,"
        "change: t.querySelector('.tile-change').textContent}))"
    )
    by_key = {tile["key"]: tile for tile in tiles}
    now, before = expected_tiles(company, PERIOD), expected_tiles(company, PERIOD.previous())
    assert set(by_key) == set(now)
    for key, value in now.items():
        assert value is not None
        assert float(by_key[key]["value"]) == pytest.approx(value, rel=1e-12), key
        assert float(by_key[key]["previous"]) == pytest.approx(before[key], rel=1e-12), key
    assert by_key["calls"]["text"] == f"{round(now['calls']):,}"
    assert by_key["cost"]["text"] == f"{now['cost']:,.2f}"
    for key in ("asr", "service_level", "abandon_rate", "callback_rate"):
        assert by_key[key]["text"] == f"{100 * now[key]:.1f}%"
        points = 100 * (now[key] - before[key])
        assert by_key[key]["change"].endswith(f"{points:+.1f} pp".replace("-0.0", "0.0")), key
    calls_change = 100 * (now["calls"] - before["calls"]) / before["calls"]
    assert by_key["calls"]["change"].endswith(f"{calls_change:+.1f}%")
    header = browser.js("return document.querySelector('header').textContent")
    assert "Europe/Madrid" in header and "16 Feb 2026" in header and "1 Mar 2026" in header
    assert "(14 days)" in header and "2 Feb 2026" in header  # the comparison period
    assert browser.js("return document.querySelector('[data-generated-at]').textContent") == (
        "2026-03-02 09:30 CET"
    )


def test_a_single_day_renders_sensibly(company: Company, browser: Browser, tmp_path: Path) -> None:
    day = Period(date(2026, 2, 18), date(2026, 2, 18))  # a Wednesday
    charts = open_rendered(browser, write(company, tmp_path / "day.html", day))
    assert set(charts) == CHARTS
    assert all(chart["points"] > 0 and chart["visible"] > 0 for chart in charts.values())
    # One day: one real bar per outcome (not a hairline), on one labelled day.
    assert charts["chart-daily"]["narrowest_bar"] >= 100
    days = browser.js(
        "var el = document.getElementById('chart-daily');"
        "return Array.from(new Set([].concat(...el._fullData.map(t => Array.from(t.x)))));"
    )
    assert days == ["2026-02-18"]
    weekdays = browser.js(
        "var t = document.getElementById('chart-heatmap')._fullData[0];"
        "return t.z.map(row => row.some(v => v !== null));"
    )
    assert weekdays == [False, False, True, False, False, False, False]
    header = browser.js("return document.querySelector('header').textContent")
    assert "Wed 18 Feb 2026" in header and "(1 day)" in header
    check_screenshot(browser, "report-single-day.png")


def test_no_calls_shows_a_clear_empty_state(
    company: Company, browser: Browser, tmp_path: Path
) -> None:
    empty_period = Period(date(2025, 6, 1), date(2025, 6, 30))
    assert open_rendered(browser, write(company, tmp_path / "empty.html", empty_period)) == {}
    empty = browser.js(
        "return Array.from(document.querySelectorAll('[data-empty]'))"
        ".map(e => [e.dataset.empty, e.textContent])"
    )
    assert {key for key, _ in empty} == {
        "daily",
        "heatmap",
        "destinations",
        "traffic",
        "users",
        "open_missed",
    }
    assert dict(empty)["daily"] == "No calls in this period."
    assert "No calls in this period" in browser.js(
        "return document.querySelector('.notes').textContent"
    )
    values = browser.js(
        "return Array.from(document.querySelectorAll('.tile-value')).map(e => e.textContent)"
    )
    assert values == ["0", *[fmt.NOT_AVAILABLE] * 6, "0.00"]
    check_screenshot(browser, "report-empty.png")


def test_a_database_without_models_says_what_to_run(browser: Browser, tmp_path: Path) -> None:
    database = raw_only_database(tmp_path / "calls.duckdb")
    page = write_report(
        database, tmp_path / "report.html", dataset="voipstudio", settings=SETTINGS, now=NOW
    ).path
    browser.open(page)
    assert severe(browser) == []
    assert browser.charts() == []
    texts = browser.js(
        "return Array.from(document.querySelectorAll('[data-empty]')).map(e => e.textContent)"
    )
    assert len(texts) == 6 and all("run `voipstudio models`" in text for text in texts)
    header = browser.js("return document.querySelector('header').textContent")
    # the default period: the last 30 days up to the report's day
    assert "(30 days)" in header and fmt.day_range(date(2026, 2, 1), date(2026, 3, 2)) in header


def test_names_from_the_data_cannot_inject_markup_or_script(
    company: Company, browser: Browser, tmp_path: Path
) -> None:
    with open_marts(company.db_path, "voipstudio", SETTINGS) as marts:
        data = load_report(marts, PERIOD, SETTINGS.reporting_timezone, "calls.duckdb")
    hostile = "</script><script>window.injected = 1</script><img src=x onerror='window.img = 1'>"
    data.users[0] = dataclasses.replace(data.users[0], name=hostile)
    data.destinations[0] = dataclasses.replace(data.destinations[0], name=hostile)
    page = tmp_path / "hostile.html"
    page.write_text(render_html(data, NOW), encoding="utf-8")
    browser.open(page)
    assert browser.js("return [window.injected, window.img]") == [None, None]
    assert severe(browser) == []
    cell = browser.js("return document.querySelector('table[data-table=users] td').textContent")
    assert cell == hostile  # shown as text
    names = browser.js(
        "return Array.from(document.getElementById('chart-destinations')._fullData[0].y)"
    )
    assert hostile in names
    assert len(browser.charts()) == 4


def test_the_page_holds_no_secret_and_no_local_path(company: Company, tmp_path: Path) -> None:
    page = write(company, tmp_path / "report.html").read_text(encoding="utf-8")
    for secret in (DEFAULT_API_KEY, company.env["SOURCES__VOIPSTUDIO__BASE_URL"]):
        assert secret not in page
    assert str(company.db_path.parent) not in page  # only the file's name is shown
    assert "calls.duckdb" in page
    assert "<script src" not in page and 'rel="stylesheet"' not in page


def test_two_accounts_render_with_their_names(
    two_accounts: Company, browser: Browser, tmp_path: Path
) -> None:
    assert set(open_rendered(browser, write(two_accounts, tmp_path / "accounts.html"))) == CHARTS
    header = browser.js("return document.querySelector('header').textContent")
    assert "All accounts (acme, beta)" in header
    accounts = browser.js(
        "return Array.from(document.querySelectorAll('table[data-table=users] tbody tr'))"
        ".map(row => row.cells[0].textContent)"
    )
    assert set(accounts) == {"acme", "beta"}
    assert len(accounts) == two_accounts.scalar(
        "select count(distinct (account, user_id)) from voipstudio.agg_user_daily "
        "where call_date between $start and $end",
        {"start": PERIOD.start, "end": PERIOD.end},
    )
    check_screenshot(browser, "report-two-accounts.png")
    # one of them: its name in the header, no account column
    one = write_report(
        two_accounts.db_path,
        tmp_path / "beta.html",
        dataset="voipstudio",
        settings=SETTINGS,
        period=PERIOD,
        accounts=["beta"],
        now=NOW,
    ).path
    browser.open(one)
    assert severe(browser) == []
    assert "Account beta" in browser.js("return document.querySelector('header').textContent")
    first = browser.js(
        "return document.querySelector('table[data-table=users] thead th').textContent"
    )
    assert first == "User"
