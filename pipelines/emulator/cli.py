"""``voipstudio-emulator``: serve a synthetic VoIPstudio API on loopback."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pipelines.emulator.config import ERROR_ENTRIES, EmulatorConfig
from pipelines.extras import missing_demo_extra

DEFAULT_PORT = 8787


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(
        prog="voipstudio-emulator",
        description="Serve a synthetic VoIPstudio REST API (base URL "
        "http://HOST:PORT/v1.2/voipstudio) with an admin API under /_emulator.",
    )
    try:
        installed = version("voipstudio-pipeline")
    except PackageNotFoundError:  # run from a source tree that was never installed
        installed = "unknown"
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed}")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--config", type=Path, help="JSON file of settings (flags override it)")
    parser.add_argument("--seed", type=int, help=f"data seed (default {defaults.seed})")
    parser.add_argument("--users", type=int, help=f"users (default {defaults.users})")
    parser.add_argument("--queues", type=int, help=f"queues (default {defaults.queues})")
    parser.add_argument("--rows", type=int, help="exact number of CDRs (default: from the range)")
    parser.add_argument("--start", help="first day of data, YYYY-MM-DD (default: --days ago)")
    parser.add_argument("--end", help="end of data, exclusive (default: now)")
    parser.add_argument("--days", type=int, help=f"days of data (default {defaults.days})")
    parser.add_argument("--timezone", help=f"company time zone (default {defaults.timezone})")
    parser.add_argument(
        "--calldate-timezone",
        dest="calldate_timezone",
        help="serve calldate as the wall clock of this zone (default UTC)",
    )
    parser.add_argument("--email", help=f"login email (default {defaults.email})")
    parser.add_argument("--password", help="login password (default: see README)")
    parser.add_argument(
        "--api-key", dest="api_key", help="a ready-made API key (default: see README)"
    )
    parser.add_argument(
        "--user-api-key",
        dest="user_api_key",
        help="a ready-made key of a plain (not admin) user, who sees only their own calls "
        "(default: see README; empty for none)",
    )
    parser.add_argument(
        "--login-ttl", dest="login_ttl", type=float, help="idle expiry of login tokens, s"
    )
    parser.add_argument(
        "--page-cap",
        dest="page_cap",
        type=int,
        help=f"most records per page; a larger limit gets this many (default {defaults.page_cap})",
    )
    parser.add_argument(
        "--total-cap",
        dest="total_cap",
        type=int,
        help="report at most this `total` in collection answers, as a search-backed API "
        "(default: exact totals)",
    )
    parser.add_argument(
        "--ignore-sort",
        dest="ignore_sort",
        action="store_true",
        default=None,
        help="serve the default order (id DESC) whatever sort/dir ask",
    )
    parser.add_argument(
        "--error-entries",
        dest="error_entries",
        choices=ERROR_ENTRIES,
        help=f"shape of the entries of error bodies (default {defaults.error_entries})",
    )
    parser.add_argument("--latency-per-request-ms", dest="latency_per_request_ms", type=float)
    parser.add_argument("--latency-per-row-ms", dest="latency_per_row_ms", type=float)
    parser.add_argument("--now", help="fix the emulator's clock start, YYYY-MM-DD HH:MM:SS")
    parser.add_argument(
        "--no-admin",
        dest="admin",
        action="store_false",
        default=None,
        help="do not serve the /_emulator admin API",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    missing = missing_demo_extra("voipstudio-emulator")
    if missing:
        print(f"voipstudio-emulator: error: {missing}", file=sys.stderr)
        return 2
    # Imported here: without the demo extra the module cannot be imported at all.
    from pipelines.emulator.server import serve_forever

    settings: dict[str, object] = {}
    if args.config:
        try:
            settings = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            parser.error(f"cannot read --config {args.config}: {exc}")
    overrides = {
        k: v for k, v in vars(args).items() if k not in ("host", "port", "config") and v is not None
    }
    settings.update(overrides)
    try:
        config = EmulatorConfig.from_dict(settings)
        config.company_spec()
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    shown = {k: v for k, v in asdict(config).items() if k not in ("password", "faults")}
    print(
        f"voipstudio-emulator: base URL http://{args.host}:{args.port}/v1.2/voipstudio", flush=True
    )
    print(f"settings: {json.dumps(shown)}", flush=True)
    try:
        serve_forever(config, args.host, args.port)
    except ValueError as exc:
        # A setting that can only be checked against the generated company (a user id).
        parser.error(str(exc))
    except OSError as exc:
        print(
            f"voipstudio-emulator: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
