"""A project folder as a user has it after `make setup`: `.dlt/` with the repository's
`config.toml` and `example.secrets.toml`, and a `.venv` (this checkout's), so that the
documented commands (`.venv/bin/voipstudio ...`) run in it as written."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_project_folder(folder: Path) -> Path:
    """Lay out ``folder`` (created) as a project folder; returns it."""
    (folder / ".dlt").mkdir(parents=True)
    (folder / ".venv").symlink_to(REPO / ".venv")
    for name in ("config.toml", "example.secrets.toml"):
        shutil.copy(REPO / ".dlt" / name, folder / ".dlt" / name)
    return folder
