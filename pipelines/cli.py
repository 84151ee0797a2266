"""``voipstudio``: sync VoIPstudio CDRs into DuckDB (or any dlt destination) and check on them.

Exit codes (for schedulers): 0 success; 1 unexpected error; 2 configuration error; 3 the API
refused the credentials; 4 the API was unreachable or kept failing; 5 pages did not add up after
every retry, or an assumption about the API broke; 6 a reporting model failed to build (the raw
data stays loaded); 7 a data test of the models failed (``models --test``); 8 ``status
--max-age``: the data is stale or was never loaded; 9 ``reconcile`` refused to mark CDRs deleted
(the mass-marking guard); 75 another sync of the same pipeline is running.

Results go to stdout (a closed pipe, as in ``voipstudio status | head -3``, ends nothing),
progress and log lines to stderr.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dlt

from pipelines.console import (
    Verbosity,
    describe,
    discard_closed_pipe,
    error_console,
    format_age,
    say,
    setup_logging,
    version_text,
)
from pipelines.display import SyncDisplay
from pipelines.extras import missing_demo_extra
from pipelines.models import (
    BuildResult,
    ModelError,
    build_models,
    check_data_tests,
    load_settings,
    run_data_tests,
)
from pipelines.pipeline_settings import PIPELINE_NAME
from pipelines.report import (
    DEFAULT_REPORT_NAME,
    duckdb_path,
    resolve_period,
    with_timezone,
    write_report,
)
from pipelines.report.publish import load_publish_settings, publish
from pipelines.sync import (
    DEFAULT_COMMIT_EVERY_ROWS,
    SyncOptions,
    SyncSummary,
    make_pipeline,
    models_duckdb_settings,
    run_sync,
    sync_lock,
)
from pipelines.voipstudio import catalog, configured_accounts, parse_duration, redaction
from pipelines.voipstudio.catalog import CDRS
from pipelines.voipstudio.check import FAIL, OK, WARN, CheckResult, check_account, exit_code
from pipelines.voipstudio.client import Credentials, VoipstudioClient
from pipelines.voipstudio.download import KINDS as DOWNLOAD_KINDS
from pipelines.voipstudio.download import download as run_download
from pipelines.voipstudio.errors import (
    AccountsFailedError,
    AuthError,
    ConfigError,
    LockedError,
    TwoFactorRequiredError,
)
from pipelines.voipstudio.settings import SourceSettings

EXIT_STALE = 8
# Tries at a two-factor code before `token create` gives up.
TWO_FACTOR_TRIES = 3

log = logging.getLogger("voipstudio")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="voipstudio",
        description="Sync VoIPstudio call detail records into DuckDB and check on them.",
        epilog="Exit codes: 0 ok, 1 unexpected error, 2 configuration, 3 credentials refused, "
        "4 API unreachable or failing, 5 data check failed or API assumption broken, "
        "6 a model failed, 7 a data test failed, 8 stale (status --max-age), 9 reconcile refused "
        "to mark CDRs deleted, 75 another sync is running.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    _add_loudness(parser, top=True)
    parser.add_argument(
        "--pipeline-name",
        default=PIPELINE_NAME,
        help=f"dlt pipeline name (default {PIPELINE_NAME})",
    )
    # -v and -q work before or after the command (`voipstudio sync -v`).
    loud = argparse.ArgumentParser(add_help=False)
    _add_loudness(loud, top=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sync = commands.add_parser(
        "sync", parents=[loud], help="load new and late CDRs, users and queues"
    )
    sync.add_argument(
        "--start", help="re-read CDRs from this instant, included (YYYY-MM-DD[ HH:MM:SS])"
    )
    sync.add_argument(
        "--end", help="read CDRs up to this instant, excluded, instead of up to now (included)"
    )
    sync.add_argument(
        "--full-refresh", action="store_true", help="drop the loaded tables and state, then sync"
    )
    sync.add_argument(
        "--resources",
        help=f"comma-separated, from {','.join(catalog.NAMES)}, or {catalog.ALL} (default: the "
        f"resources setting, {SourceSettings.resources})",
    )
    _add_account_option(sync, "sync only this configured account")
    sync.add_argument(
        "--commit-every-rows",
        type=int,
        default=DEFAULT_COMMIT_EVERY_ROWS,
        help=f"commit a long backfill every N CDRs (default {DEFAULT_COMMIT_EVERY_ROWS:,})",
    )
    sync.add_argument(
        "--no-models", action="store_true", help="do not rebuild the reporting models afterwards"
    )
    sync.add_argument(
        "--abort-pending",
        action="store_true",
        help="set aside the load packages an earlier sync left pending (their CDRs are read "
        "again) instead of loading them",
    )

    reconcile = commands.add_parser(
        "reconcile",
        parents=[loud],
        help="re-read the last days: add late CDRs, apply corrections, mark deleted ones",
    )
    reconcile.add_argument(
        "--days",
        type=int,
        help="re-read this many days before the sync's cursor, and its day (default "
        "[reconcile] days, 7)",
    )
    reconcile.add_argument(
        "--since", metavar="YYYY-MM-DD", help="re-read from this day instead (each account's zone)"
    )
    reconcile.add_argument(
        "--counts-only",
        action="store_true",
        help="count each day first and re-read only the days whose counts differ (cheap; "
        "blind to corrections)",
    )
    _add_account_option(reconcile, "reconcile only this configured account")
    reconcile.add_argument("--dry-run", action="store_true", help="find and report, apply nothing")
    reconcile.add_argument("--json", action="store_true", help="print the summary as JSON")

    models = commands.add_parser(
        "models", parents=[loud], help="build the SQL reporting models (sql/)"
    )
    models.add_argument(
        "--test", action="store_true", help="then run the data tests (sql/tests); exit 7 on failure"
    )
    models.add_argument(
        "--full",
        action="store_true",
        help="rebuild every model from every row (default: only what changed since the last build)",
    )

    status = commands.add_parser(
        "status", parents=[loud], help="last sync, cursor, row counts, freshness"
    )
    status.add_argument(
        "--max-age", help=f"exit {EXIT_STALE} if the last successful sync is older (e.g. 2h)"
    )
    status.add_argument("--json", action="store_true", help="print JSON")

    token = commands.add_parser("token", parents=[loud], help="API keys")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser(
        "create", parents=[loud], help="mint a long-lived API key from email and password"
    )
    create.add_argument("--name", required=True, help="a name for the key (unique per user)")
    create.add_argument(
        "--expiry", default="0", help="idle expiry, e.g. 7d or seconds; 0 = never (default)"
    )
    create.add_argument("--email", help="login email (default: sources.voipstudio.email)")
    create.epilog = (
        "An account with two-factor authentication: run it on a terminal, it asks for the code."
    )

    report = commands.add_parser(
        "report",
        parents=[loud],
        help="write the dashboard: one self-contained HTML file (opens offline)",
    )
    report.add_argument(
        "--from",
        dest="date_from",
        metavar="YYYY-MM-DD",
        help="first day of the period (default: 30 days up to --to)",
    )
    report.add_argument(
        "--to", dest="date_to", metavar="YYYY-MM-DD", help="last day, included (default today)"
    )
    report.add_argument(
        "--output",
        "-o",
        help=f"HTML file to write (default {DEFAULT_REPORT_NAME} next to the database)",
    )
    report.add_argument(
        "--timezone", help="reporting time zone (default [models] reporting_timezone)"
    )
    report.add_argument(
        "--database",
        help="DuckDB file to read (default the pipeline's, data/calls.duckdb; a published "
        "snapshot works too)",
    )
    report.add_argument(
        "--account",
        dest="accounts",
        action="append",
        metavar="NAME",
        help="report on this VoIPstudio account only; repeat for several (default: every "
        "account, summed)",
    )
    publish = commands.add_parser(
        "publish",
        parents=[loud],
        help="copy the data to a read-only snapshot and Parquet files for BI tools",
    )
    publish.add_argument(
        "--directory", help="where to publish (default [publish] directory, data/published)"
    )

    check = commands.add_parser(
        "check",
        parents=[loud],
        help="test the credentials, the key's scope and what the sync assumes about the API "
        "(a few small requests per account)",
    )
    _add_account_option(check, "check only this configured account")

    download = commands.add_parser(
        "download",
        parents=[loud],
        help="fetch call recordings, voicemail, faxes or invoices into a folder (resumable; "
        "files already complete are skipped)",
    )
    download.add_argument("kind", choices=list(DOWNLOAD_KINDS), help="which files")
    download.add_argument(
        "--since",
        required=True,
        help="records from this long ago (7d, 12h) or this date (YYYY-MM-DD[ HH:MM:SS]), "
        "in the account's timezone",
    )
    download.add_argument("--until", help="records before this date, excluded (default now)")
    download.add_argument("--to", required=True, metavar="DIR", help="the folder to write to")
    _add_account_option(download, "only this configured account")

    demo = commands.add_parser(
        "demo", parents=[loud], help="emulator + two syncs into data/demo.duckdb"
    )
    demo.add_argument("--days", type=int, default=30, help="days of synthetic calls (default 30)")
    demo.add_argument("--users", type=int, default=25, help="users of the company (default 25)")
    return parser


def where(pipeline: dlt.Pipeline) -> str:
    """Where the pipeline's data is: the DuckDB file (absolute) or the destination's name."""
    try:
        location = str(duckdb_path(pipeline))
    except ConfigError:  # not DuckDB: the destination's own name says where
        destination = pipeline.destination
        location = destination.destination_name if destination is not None else "nowhere"
    return f"{location}, dataset {pipeline.dataset_name}"


def _cursor_text(cursor: str | None, options: SyncOptions) -> str:
    if options.start is not None or options.end is not None:
        return f"cursor left at {cursor} (a backfill)" if cursor else "no cursor yet (a backfill)"
    return f"cursor {cursor}" if cursor else "no cursor yet"


def _add_account_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--account NAME``, repeatable, for a command that works account by account."""
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="NAME",
        help=f"{what} (repeatable; default every account)",
    )


def _add_loudness(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-v`` and ``-q``. On the commands (not ``top``) they default to nothing, so that
    ``voipstudio -v sync`` is not undone by the command's own default."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="debug logging: each request's method, path and filter (never a credential)",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="no progress, only warnings and errors on stderr (-qq: only errors); results "
        "still print",
    )


def _print_summary(pipeline: dlt.Pipeline, summary: SyncSummary, options: SyncOptions) -> None:
    rows = summary.rows_loaded
    several = len(summary.accounts) > 1
    parts = []
    if "cdrs" in summary.resources:
        unchanged = summary.cdrs_unchanged
        parts.append(
            f"{summary.cdrs_read:,} CDRs read ({summary.cdrs_new:,} new, "
            f"{summary.cdrs_updated:,} already loaded and merged"
            + (f", {unchanged:,} read again unchanged, not loaded again)" if unchanged else ")")
        )
    if summary.rejects:
        parts.append(f"{summary.rejects:,} rejected (see table {', '.join(summary.rejected)})")
    for collection in catalog.COLLECTIONS:
        if collection is not CDRS and collection.name in rows:
            parts.append(f"{rows[collection.name]:,} {collection.records}")
    if summary.unchanged:
        parts.append(f"unchanged, not loaded again: {', '.join(summary.unchanged)}")
    if "cdrs" in summary.resources:
        # With several accounts each account's line shows its own cursor.
        if not several:
            parts.append(_cursor_text(summary.cursor, options))
        parts.append(f"{summary.cdrs_after:,} CDRs in the table")
    if summary.skipped:
        # Each was warned about once, with the reason; the summary names them again.
        names = ", ".join(f"{name} (HTTP {status})" for name, status in summary.skipped.items())
        parts.append(f"skipped, not allowed by the account's plan or key: {names}")
    parts.append(f"{summary.loads} load(s) into {where(pipeline)}")
    say(f"sync done in {summary.seconds:.1f}s: {'; '.join(parts)}")
    if several:
        for name, result in summary.accounts.items():
            if result.error:
                outcome = "FAILED (the error is below)"
            elif "cdrs" in summary.resources:
                outcome = _cursor_text(result.cursor, options)
            else:
                outcome = "ok"
            say(
                f"  account {name}: {result.cdrs_after:,} CDRs "
                f"({result.cdrs_after - result.cdrs_before:+,}); {outcome}"
            )


def cmd_sync(args: argparse.Namespace, verbosity: Verbosity) -> int:
    """``voipstudio sync``."""
    publishing = load_publish_settings()  # a bad [publish] setting fails before the sync
    resources = tuple(r.strip() for r in (args.resources or "").split(",") if r.strip())
    if args.resources is not None and not resources:
        raise ConfigError(f"--resources names none: choose from {', '.join(catalog.NAMES)}")
    options = SyncOptions(
        start=args.start,
        end=args.end,
        full_refresh=args.full_refresh,
        resources=resources,
        accounts=tuple(args.account),
        commit_every_rows=args.commit_every_rows,
        abort_pending=args.abort_pending,
    )
    pipeline = make_pipeline(args.pipeline_name)
    display = SyncDisplay(error_console(), enabled=verbosity.progress)
    failed: AccountsFailedError | None = None
    with display.sync(pipeline):
        try:
            summary = run_sync(pipeline, options)
        except AccountsFailedError as error:
            # The other accounts were loaded: report them and build the models on what is
            # there, then end with the failed account's exit code.
            if not isinstance(error.summary, SyncSummary):
                raise
            failed, summary = error, error.summary
    _print_summary(pipeline, summary, options)
    if not args.no_models or publishing.after_sync:
        # Under the sync lock again: a sync starting meanwhile would fight over the database.
        try:
            with sync_lock(pipeline):
                if not args.no_models:
                    with models_duckdb_settings(pipeline), display.models():
                        built = build_models(pipeline)
                    _print_models(built)
                # [publish] after_sync: only after the models built (a failed build exits 6
                # and the BI tools keep the last good copy).
                if publishing.after_sync:
                    say(publish(duckdb_path(pipeline), pipeline.dataset_name, publishing).summary())
        except LockedError:
            say("models not rebuilt (nor published): another sync started and will do it")
        except Exception:
            # The models' error ends the command; the accounts' must not go unsaid.
            if failed is not None:
                say(f"voipstudio: error: {failed}", error=True)
            raise
    if failed is not None:
        raise failed
    return 0


def cmd_reconcile(args: argparse.Namespace, verbosity: Verbosity) -> int:
    """``voipstudio reconcile``: the summary on stdout (``--json`` for monitoring), failures on
    stderr, and the first failed account's exit code (9: the mass-marking guard refused)."""
    # Imported here: a scheduled `voipstudio sync` does not need it (20-30 ms of start-up).
    from pipelines.reconcile import ReconcileOptions, run_reconcile

    options = ReconcileOptions(
        days=args.days,
        since=args.since,
        counts_only=args.counts_only,
        accounts=tuple(args.account),
        dry_run=args.dry_run,
    )
    pipeline = make_pipeline(args.pipeline_name)
    display = SyncDisplay(error_console(), enabled=verbosity.progress)
    with display.sync(pipeline):
        summary = run_reconcile(pipeline, options)
    say(json.dumps(summary.as_dict()) if args.json else "\n".join(summary.lines()))
    for failure in summary.failures():
        say(f"voipstudio: error: {failure}", error=True)
    return summary.exit_code


def _print_models(result: BuildResult) -> None:
    say(result.summary())
    for model in result.built:
        rows = f"{model.rows:>10,} rows" if model.rows is not None else " " * 15
        changed = f"{model.changed_rows:,} rows changed" if model.changed_rows else ""
        log.debug(
            "  %-32s %-5s %-11s %s %.2fs %s",
            model.name,
            model.kind,
            model.mode,
            rows,
            model.seconds,
            changed,
        )


def cmd_models(args: argparse.Namespace, verbosity: Verbosity) -> int:
    """``voipstudio models [--test] [--full]``."""
    pipeline = make_pipeline(args.pipeline_name)
    display = SyncDisplay(error_console(), enabled=verbosity.progress)
    # Under the sync lock: a sync running at the same time would fight over the database.
    with sync_lock(pipeline), models_duckdb_settings(pipeline):
        with display.models():
            result = build_models(pipeline, full=args.full)
        if not result.built:
            raise ModelError(
                None,
                f"no model could be built ({result.skip_reasons()}): run `voipstudio sync` first",
            )
        _print_models(result)
        if not args.test:
            return 0
        results = run_data_tests(pipeline)
    for test in results:
        if not test.passed:
            say(test.describe(), error=bool(test.failures))
    passed = sum(1 for test in results if test.passed)
    failed = sum(1 for test in results if test.failures)
    skipped = len(results) - passed - failed
    say(f"data tests: {passed} passed, {failed} failed, {skipped} skipped")
    check_data_tests(results)
    return 0


def cmd_report(args: argparse.Namespace, verbosity: Verbosity) -> int:
    """``voipstudio report``: the dashboard as one HTML file."""
    settings = with_timezone(load_settings(), args.timezone)
    pipeline = make_pipeline(args.pipeline_name)
    database = Path(args.database) if args.database else duckdb_path(pipeline)
    today = datetime.now(ZoneInfo(settings.reporting_timezone)).date()
    period = resolve_period(args.date_from, args.date_to, today)
    output = Path(args.output) if args.output else database.parent / DEFAULT_REPORT_NAME
    result = write_report(
        database,
        output,
        dataset=pipeline.dataset_name,
        settings=settings,
        period=period,
        accounts=args.accounts,
    )
    data = result.data
    say(
        f"report written: {result.path} ({result.size / 1e6:.1f} MB; {data.period.start} to "
        f"{data.period.end}, {data.timezone}; {data.totals.calls:,} calls; "
        f"{data.accounts.label})"
    )
    say(f"open it: {result.path.resolve().as_uri()}")
    return 0


def cmd_publish(args: argparse.Namespace, verbosity: Verbosity) -> int:
    """``voipstudio publish``: the read-only copy for BI tools."""
    settings = load_publish_settings(args.directory)
    pipeline = make_pipeline(args.pipeline_name)
    database = duckdb_path(pipeline)
    # Under the sync lock: the copy is consistent, no sync writes the database meanwhile.
    with sync_lock(pipeline):
        result = publish(database, pipeline.dataset_name, settings)
    say(result.summary())
    return 0


def cmd_status(args: argparse.Namespace, verbosity: Verbosity) -> int:
    """``voipstudio status``."""
    from pipelines.status import read_status  # here: it imports reconcile, which sync does not need

    max_age = parse_duration(args.max_age, "--max-age") if args.max_age else None
    pipeline = make_pipeline(args.pipeline_name)
    status = read_status(pipeline)
    age = status.age_seconds()
    stale = max_age is not None and (age is None or age > max_age.total_seconds())
    several = len(status.accounts) > 1
    if args.json:
        say(json.dumps({**status.as_dict(), "age_seconds": age, "stale": stale}))
    else:
        without = [name for name, account in status.accounts.items() if not account.cursor]
        if status.cursor:
            cursor = status.cursor
        elif several and len(without) < len(status.accounts):
            cursor = f"none (no cursor yet for account {', '.join(without)})"
        else:
            cursor = "none (no incremental sync yet)"
        width = max(len(table) for table in status.rows) + 1 if status.rows else 0
        say(f"pipeline:        {pipeline.pipeline_name} -> {pipeline.dataset_name}")
        say(f"data:            {where(pipeline)}")
        say(f"last success:    {status.last_success or 'never'}")
        say(f"cursor:          {cursor}")
        say(f"newest calldate: {status.newest_calldate or 'none'}")
        if not several:
            only = next(iter(status.accounts.values()), None)
            last = only.reconcile.text() if only and only.reconcile else "never"
            say(f"last reconcile:  {last}")
        for table, count in status.rows.items():
            say(f"rows {table + ':':<{width}} {count:,}")
        if several or any(a.error for a in status.accounts.values()):
            for name, account in status.accounts.items():
                outcome = f"LAST SYNC FAILED: {account.error}" if account.error else "ok"
                reconciled = account.reconcile.text() if account.reconcile else "never"
                say(
                    f"account {name}: {account.cdrs:,} CDRs, cursor {account.cursor or 'none'}, "
                    f"synced {account.synced_at or 'never'}; {outcome}; reconciled {reconciled}"
                )
    if stale:
        never = [name for name, account in status.accounts.items() if account.synced_at is None]
        if status.last_success is None:
            when = "no successful sync yet"
        elif age is None:
            when = f"account {', '.join(never)} never synced successfully"
        else:
            oldest = " (of the account synced longest ago)" if several else ""
            when = f"last successful sync {format_age(age)} ago{oldest}"
        say(f"STALE: {when}; allowed: {args.max_age}", error=True)
        return EXIT_STALE
    return 0


def cmd_check(args: argparse.Namespace, verbosity: Verbosity) -> int:
    """``voipstudio check``: one line per check and account; the first failure's exit code."""
    accounts = configured_accounts()
    known = [account.name for account in accounts]
    missing = [name for name in args.account if name not in known]
    if missing:
        raise ConfigError(
            f"unknown account(s) {', '.join(missing)}: the configured accounts are "
            f"{', '.join(known)}"
        )
    chosen = [a for a in accounts if not args.account or a.name in args.account]
    results: list[CheckResult] = []
    for account in chosen:
        checked = check_account(account)
        for result in checked:
            say(result.line(account.name if len(accounts) > 1 else None))
        results.extend(checked)
    counts = {status: sum(r.status == status for r in results) for status in (OK, WARN, FAIL)}
    code = exit_code(results)
    say(
        f"check: {counts[OK]} ok, {counts[WARN]} warnings, {counts[FAIL]} failed "
        f"({len(chosen)} account{'s' if len(chosen) != 1 else ''})",
        error=bool(code),
    )
    return code


def cmd_download(args: argparse.Namespace, verbosity: Verbosity) -> int:
    """``voipstudio download KIND``: one line of totals, one error line per file not fetched
    (logged as it happens); 5 if a file never matched its record, 4 if one was refused."""
    accounts = configured_accounts()
    known = [account.name for account in accounts]
    missing = [name for name in args.account if name not in known]
    if missing:
        raise ConfigError(
            f"unknown account(s) {', '.join(missing)}: the configured accounts are "
            f"{', '.join(known)}"
        )
    chosen = [a for a in accounts if not args.account or a.name in args.account]
    target = Path(args.to).expanduser().resolve()
    done = run_download(
        DOWNLOAD_KINDS[args.kind], chosen, target, since=args.since, until=args.until
    )
    parts = [f"{done.fetched:,} fetched ({done.nbytes:,} bytes)"]
    parts.append(f"{done.present:,} already complete")
    if done.pending:
        parts.append(f"{done.pending:,} without a file yet")
    if done.failed:
        parts.append(f"{len(done.failed):,} NOT downloaded (see the errors above)")
    say(f"download {args.kind}: {'; '.join(parts)}; into {target}", error=bool(done.failed))
    return done.exit_code()


def cmd_token(args: argparse.Namespace, verbosity: Verbosity) -> int:
    """``voipstudio token create``."""
    email = args.email or dlt.config.get("sources.voipstudio.email")
    password: str | None = dlt.secrets.get("sources.voipstudio.password")
    if not email:
        raise ConfigError("give --email or set email in .dlt/secrets.toml [sources.voipstudio]")
    if not password:
        if not sys.stdin.isatty():
            raise ConfigError(
                "no password: set SOURCES__VOIPSTUDIO__PASSWORD or run this on a terminal"
            )
        password = getpass.getpass(f"VoIPstudio password for {email}: ")
    expiry = int(parse_duration(args.expiry, "--expiry").total_seconds())
    configured_url: str | None = dlt.config.get("sources.voipstudio.base_url")
    base_url = configured_url or SourceSettings.base_url
    with VoipstudioClient(
        str(base_url), Credentials(email=str(email), password=str(password))
    ) as client:
        try:
            token, _ = client.login()
        except TwoFactorRequiredError as needed:
            token = _second_factor(client, str(email), needed)
        created: dict[str, Any] = client.request(
            "POST", "/apitokens", json_body={"name": args.name, "expiry": expiry}, token=token
        )
    data = created.get("data", {})
    # Printed once, for the user to store; redacted from anything else from now on.
    redaction.register(data.get("token"))
    say(str(data.get("token")))
    say(
        f"created API key {args.name!r} (expiry {expiry or 'never'}); put it in "
        ".dlt/secrets.toml [sources.voipstudio] api_key, or SOURCES__VOIPSTUDIO__API_KEY",
        error=True,
    )
    return 0


def _second_factor(client: VoipstudioClient, email: str, needed: TwoFactorRequiredError) -> str:
    """Complete a two-factor login by asking for the code on the terminal.

    Returns:
        The login token.

    Raises:
        AuthError: not on a terminal, or the code was refused every time.
    """
    if not sys.stdin.isatty():
        raise AuthError(
            f"The account {email} uses two-factor authentication: run `voipstudio token "
            "create` on a terminal, where it asks for the code, or create the API key in the "
            "VoIPstudio admin panel (user -> API Keys)"
        )
    for attempt in range(1, TWO_FACTOR_TRIES + 1):
        if not needed.nonce:
            raise AuthError("POST /login asked for a second factor without a nonce")
        sys.stderr.write(f"Two-factor code for {email}: ")
        sys.stderr.flush()
        code = sys.stdin.readline().strip()
        if not code:
            raise AuthError("no two-factor code given; nothing was created")
        try:
            token, _ = client.login_two_factor(needed.nonce, code)
        except AuthError:
            if attempt == TWO_FACTOR_TRIES:
                break
            say("the code was refused; try again (a fresh code if it changed)", error=True)
            # A fresh nonce: the API may accept a nonce only once.
            try:
                client.login()
            except TwoFactorRequiredError as again:
                needed = again
            continue
        return token
    raise AuthError(
        f"the two-factor code was refused {TWO_FACTOR_TRIES} times; nothing was created"
    )


def cmd_demo(args: argparse.Namespace, verbosity: Verbosity) -> int:
    """``voipstudio demo``: what ``make demo`` runs."""
    missing = missing_demo_extra("voipstudio demo")
    if missing:
        raise ConfigError(missing)
    from pipelines.demo import run_demo

    display = SyncDisplay(error_console(), enabled=verbosity.progress)
    return run_demo(days=args.days, users=args.users, display=display)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    try:
        args = build_parser().parse_args(argv)
        try:
            verbosity = setup_logging(verbose=args.verbose, quiet=args.quiet)
        except ConfigError as exc:
            say(f"voipstudio: error: {exc}", error=True)
            return exc.exit_code
        return _run(args, verbosity)
    except BrokenPipeError:
        # The reader of stdout went away while we wrote (`voipstudio status | head -1`).
        discard_closed_pipe(sys.stdout)
        return 0


def _run(args: argparse.Namespace, verbosity: Verbosity) -> int:
    commands: dict[str, Callable[[argparse.Namespace, Verbosity], int]] = {
        "sync": cmd_sync,
        "models": cmd_models,
        "status": cmd_status,
        "reconcile": cmd_reconcile,
        "check": cmd_check,
        "download": cmd_download,
        "token": cmd_token,
        "report": cmd_report,
        "publish": cmd_publish,
        "demo": cmd_demo,
    }
    try:
        return commands[args.command](args, verbosity)
    except KeyboardInterrupt:
        say("voipstudio: interrupted; nothing after the last commit was kept", error=True)
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:
        if args.verbose:
            log.exception("failed")
        message, code = describe(exc)
        say(f"voipstudio: error: {message}", error=True)
        return code


if __name__ == "__main__":
    sys.exit(main())
