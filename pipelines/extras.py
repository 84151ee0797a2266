"""The package's optional parts, and what to install when one is missing.

The sync, the models and the report need only the package's own dependencies. The bundled API
emulator (``voipstudio demo``, ``voipstudio-emulator``) also needs an ASGI server, uvicorn,
which comes with the ``demo`` extra: ``voipstudio-pipeline[demo]``.
"""

from __future__ import annotations

import importlib.util

DEMO_EXTRA = "voipstudio-pipeline[demo]"


def missing_demo_extra(command: str) -> str | None:
    """Why ``command`` cannot run in this environment, or None when it can."""
    if importlib.util.find_spec("uvicorn") is not None:
        return None
    return (
        f"`{command}` runs the bundled API emulator, which needs uvicorn: install the package "
        f"with its demo extra, {DEMO_EXTRA} (e.g. `uv tool install --reinstall "
        "'<path or URL>[demo]'`, `pipx install --force '<path or URL>[demo]'`, or "
        "`pipx inject voipstudio-pipeline uvicorn`); a checkout's `make setup` installs it"
    )
