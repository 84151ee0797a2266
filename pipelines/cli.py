"""``voipstudio``: sync VoIPstudio CDRs into DuckDB (or any dlt destination) and check on them.

Exit codes (for schedulers): 0 success; 1 unexpected error; 2 configuration error; 3 the API
refused the credentials; 4 the API was unreachable or kept failing; 5 pages did not add up after
every retry; 6 a reporting model failed to build (the raw data stays loaded); 7 a data test of
the models failed (``models --test``); 8 ``status --max-age``: the data is stale or was never
loaded; 75 another sync of the same pipeline is running.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dlt

from pipelines.console import Progress, describe
from pipelines.models import (
    BuildResult,
    ModelError,
    build_models,
    check_data_tests,
    load_settings,
    run_data_tests,
)
from pipelines.report import (
    DEFAULT_REPORT_NAME,
    duckdb_path,
    resolve_period,
    with_timezone,
    write_report,
)
from pipelines.report.publish import load_publish_settings, publish
from pipelines.status import read_status
from pipelines.sync import (
    DEFAULT_COMMIT_EVERY_ROWS,
    PIPELINE_NAME,
    SyncOptions,
    SyncSummary,
    make_pipeline,
    models_duckdb_settings,
    run_sync,
    sync_lock,
)
from pipelines.voipstudio import parse_duration, settings
from pipelines.voipstudio.client import Credentials, VoipstudioClient
from pipelines.voipstudio.errors import AccountsFailedError, ConfigError, LockedError
from pipelines.voipstudio.progress import listening

EXIT_STALE = 8

log = logging.getLogger("voipstudio")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="voipstudio",
        description="Sync VoIPstudio call detail records into DuckDB and check on them.",
        epilog="Exit codes: 0 ok, 1 unexpected error, 2 configuration, 3 credentials refused, "
        "4 API unreachable or failing, 5 data check failed, 6 a model failed, "
        "7 a data test failed, 8 stale (status --max-age), 75 another sync is running.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--pipeline-name",
        default=PIPELINE_NAME,
        help=f"dlt pipeline name (default {PIPELINE_NAME})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sync = commands.add_parser("sync", help="load new and late CDRs, users and queues")
    sync.add_argument("--start", help="re-read CDRs from this date (YYYY-MM-DD[ HH:MM:SS])")
    sync.add_argument("--end", help="read CDRs up to this date instead of now")
    sync.add_argument(
        "--full-refresh", action="store_true", help="drop the loaded tables and state, then sync"
    )
    sync.add_argument(
        "--resources",
        default=",".join(settings.RESOURCES),
        help="comma-separated subset of cdrs,users,queues (default all)",
    )
    sync.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="NAME",
        help="sync only this configured account (repeatable; default every account)",
    )
    sync.add_argument(
        "--commit-every-rows",
        type=int,
        default=DEFAULT_COMMIT_EVERY_ROWS,
        help=f"commit a long backfill every N CDRs (default {DEFAULT_COMMIT_EVERY_ROWS:,})",
    )
    sync.add_argument(
        "--no-models", action="store_true", help="do not rebuild the reporting models afterwards"
    )

    models = commands.add_parser("models", help="build the SQL reporting models (sql/)")
    models.add_argument(
        "--test", action="store_true", help="then run the data tests (sql/tests); exit 7 on failure"
    )
    models.add_argument(
        "--full",
        action="store_true",
        help="rebuild every model from every row (default: only what changed since the last build)",
    )

    status = commands.add_parser("status", help="last sync, cursor, row counts, freshness")
    status.add_argument(
        "--max-age", help=f"exit {EXIT_STALE} if the last successful sync is older (e.g. 2h)"
    )
    status.add_argument("--json", action="store_true", help="print JSON")

    token = commands.add_parser("token", help="API keys")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser(
        "create", help="mint a long-lived API key from email and password"
    )
    create.add_argument("--name", required=True, help="a name for the key (unique per user)")
    create.add_argument(
        "--expiry", default="0", help="idle expiry, e.g. 7d or seconds; 0 = never (default)"
    )
    create.add_argument("--email", help="login email (default: sources.voipstudio.email)")

    # --- dashboard and BI copy (pipelines/report) ---
    report = commands.add_parser(
        "report", help="write the dashboard: one self-contained HTML file (opens offline)"
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
        "publish", help="copy the data to a read-only snapshot and Parquet files for BI tools"
    )
    publish.add_argument(
        "--directory", help="where to publish (default [publish] directory, data/published)"
    )
    # --- end dashboard and BI copy ---

    demo = commands.add_parser("demo", help="emulator + two syncs into data/demo.duckdb")
    demo.add_argument("--days", type=int, default=30, help="days of synthetic calls (default 30)")
    demo.add_argument("--users", type=int, default=25, help="users of the company (default 25)")
    return parser


def _print_summary(summary: SyncSummary) -> None:
    rows = summary.rows_loaded
    parts = [
        f"{rows.get('cdrs', 0):,} CDRs read ({summary.cdrs_new:,} new, "
        f"{summary.cdrs_updated:,} already loaded and merged)"
    ]
    if summary.rejects:
        parts.append(f"{summary.rejects:,} rejected (see table {settings.REJECTS_TABLE})")
    for table in ("users", "queues"):
        if table in rows:
            parts.append(f"{rows[table]:,} {table}")
    print(
        f"sync done in {summary.seconds:.1f}s: {'; '.join(parts)}; cursor {summary.cursor}; "
        f"{summary.cdrs_after:,} CDRs in the table; {summary.loads} load(s)",
        flush=True,
    )
    if len(summary.accounts) > 1:
        for name, result in summary.accounts.items():
            outcome = f"FAILED: {result.error}" if result.error else f"cursor {result.cursor}"
            print(
                f"  account {name}: {result.cdrs_after:,} CDRs "
                f"({result.cdrs_after - result.cdrs_before:+,}); {outcome}",
                flush=True,
            )


def cmd_sync(args: argparse.Namespace) -> int:
    """``voipstudio sync``."""
    publishing = load_publish_settings()  # a bad [publish] setting fails before the sync
    resources = tuple(r.strip() for r in args.resources.split(",") if r.strip())
    options = SyncOptions(
        start=args.start,
        end=args.end,
        full_refresh=args.full_refresh,
        resources=resources,
        accounts=tuple(args.account),
        commit_every_rows=args.commit_every_rows,
    )
    pipeline = make_pipeline(args.pipeline_name)
    progress = Progress()
    failed: AccountsFailedError | None = None
    with listening(progress):
        try:
            summary = run_sync(pipeline, options)
        except AccountsFailedError as error:
            # The other accounts were loaded: report them and build the models on what is
            # there, then end with the failed account's exit code.
            if not isinstance(error.summary, SyncSummary):
                raise
            failed, summary = error, error.summary
        finally:
            progress.finish()
    _print_summary(summary)
    if not args.no_models or publishing.after_sync:
        # Under the sync lock again: a sync starting meanwhile would fight over the database.
        try:
            with sync_lock(pipeline):
                if not args.no_models:
                    with models_duckdb_settings(pipeline):
                        _print_models(build_models(pipeline))
                # [publish] after_sync: only after the models built (a failed build exits 6
                # and the BI tools keep the last good copy).
                if publishing.after_sync:
                    print(
                        publish(duckdb_path(pipeline), pipeline.dataset_name, publishing).summary(),
                        flush=True,
                    )
        except LockedError:
            print(
                "models not rebuilt (nor published): another sync started and will do it",
                flush=True,
            )
        except Exception:
            # The models' error ends the command; the accounts' must not go unsaid.
            if failed is not None:
                print(f"voipstudio: error: {failed}", file=sys.stderr, flush=True)
            raise
    if failed is not None:
        raise failed
    return 0


def _print_models(result: BuildResult) -> None:
    print(result.summary(), flush=True)
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


def cmd_models(args: argparse.Namespace) -> int:
    """``voipstudio models [--test]``."""
    pipeline = make_pipeline(args.pipeline_name)
    # Under the sync lock: a sync running at the same time would fight over the database.
    with sync_lock(pipeline), models_duckdb_settings(pipeline):
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
            print(test.describe(), file=sys.stderr if test.failures else sys.stdout)
    passed = sum(1 for test in results if test.passed)
    failed = sum(1 for test in results if test.failures)
    skipped = len(results) - passed - failed
    print(f"data tests: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    check_data_tests(results)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
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
    print(
        f"report written: {result.path} ({result.size / 1e6:.1f} MB; {data.period.start} to "
        f"{data.period.end}, {data.timezone}; {data.totals.calls:,} calls; "
        f"{data.accounts.label})",
        flush=True,
    )
    print(f"open it: {result.path.resolve().as_uri()}", flush=True)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """``voipstudio publish``: the read-only copy for BI tools."""
    settings = load_publish_settings(args.directory)
    pipeline = make_pipeline(args.pipeline_name)
    database = duckdb_path(pipeline)
    # Under the sync lock: the copy is consistent, no sync writes the database meanwhile.
    with sync_lock(pipeline):
        result = publish(database, pipeline.dataset_name, settings)
    print(result.summary(), flush=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """``voipstudio status``."""
    max_age = parse_duration(args.max_age, "--max-age") if args.max_age else None
    pipeline = make_pipeline(args.pipeline_name)
    status = read_status(pipeline)
    age = status.age_seconds()
    stale = max_age is not None and (age is None or age > max_age.total_seconds())
    if args.json:
        print(json.dumps({**status.as_dict(), "age_seconds": age, "stale": stale}))
    else:
        print(f"pipeline:        {pipeline.pipeline_name} -> {pipeline.dataset_name}")
        print(f"last success:    {status.last_success or 'never'}")
        print(f"cursor:          {status.cursor or 'none (no incremental sync yet)'}")
        print(f"newest calldate: {status.newest_calldate or 'none'}")
        for table, count in status.rows.items():
            print(f"rows {table + ':':<12}{count:,}")
        if len(status.accounts) > 1 or any(a.error for a in status.accounts.values()):
            for name, account in status.accounts.items():
                outcome = f"LAST SYNC FAILED: {account.error}" if account.error else "ok"
                print(
                    f"account {name}: {account.cdrs:,} CDRs, cursor {account.cursor or 'none'}, "
                    f"synced {account.synced_at or 'never'}; {outcome}"
                )
    if stale:
        when = "never" if age is None else f"{age / 3600:.1f} h ago"
        print(
            f"STALE: last successful sync {when} (of the account synced longest ago), "
            f"more than {args.max_age}",
            file=sys.stderr,
        )
        return EXIT_STALE
    return 0


def cmd_token(args: argparse.Namespace) -> int:
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
    base_url = configured_url or settings.DEFAULT_BASE_URL
    with VoipstudioClient(
        str(base_url), Credentials(email=str(email), password=str(password))
    ) as client:
        token, _ = client.login()
        created: dict[str, Any] = client.request(
            "POST", "/apitokens", json_body={"name": args.name, "expiry": expiry}, token=token
        )
    data = created.get("data", {})
    print(data.get("token"))
    print(
        f"created API key {args.name!r} (expiry {expiry or 'never'}); put it in "
        ".dlt/secrets.toml [sources.voipstudio] api_key, or SOURCES__VOIPSTUDIO__API_KEY",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.command == "sync":
            return cmd_sync(args)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "token":
            return cmd_token(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "publish":
            return cmd_publish(args)
        from pipelines.demo import run_demo

        return run_demo(days=args.days, users=args.users)
    except KeyboardInterrupt:
        print("voipstudio: interrupted; nothing after the last commit was kept", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            log.exception("failed")
        message, code = describe(exc)
        print(f"voipstudio: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
