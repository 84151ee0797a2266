"""``python -m pipelines.benchmark``: see :mod:`pipelines.benchmark.cli`."""

from __future__ import annotations

import sys

from pipelines.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
