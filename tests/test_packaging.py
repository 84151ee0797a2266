"""The package as users install it: the wheel carries the SQL models and not the benchmark,
declares what the code imports, installs into a fresh venv outside the checkout and runs the
demo there; without the `demo` extra the emulator's commands say what to install.

The venvs are built from uv's cache (what `make setup` downloaded) with the versions of
uv.lock, offline; only what the cache lacks is fetched from PyPI.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def uv_binary() -> str:
    """The uv that `make` uses: `uv run` names itself in $UV; else PATH or the Makefile's."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(REPO / ".tools/bin/uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("uv not found: run the tests with `make test`, which installs uv if missing")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: nothing of this checkout's venv or of pytest."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT", "PYTHONHOME")
        and not key.startswith(("PYTEST", "SOURCES__", "DESTINATION__", "PIPELINES__"))
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.update(extra)
    return env


def uv(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run uv offline (from its cache) first, online if the cache lacked something."""
    command = [uv_binary(), *args]
    env = env or clean_env()
    result = subprocess.run(
        [*command, "--offline"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        result = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`uv build` of the checkout: the sdist, and the wheel built from it."""
    out = tmp_path_factory.mktemp("dist")
    uv("build", "--out-dir", str(out), cwd=REPO)
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    [built] = dist.glob("voipstudio_pipeline-*.whl")
    return built


def make_venv(root: Path, wheel: Path, *, extra: bool) -> Path:
    """A fresh venv outside the checkout with the wheel and uv.lock's versions of its
    dependencies (with or without the `demo` extra); returns its bin folder."""
    root.mkdir(parents=True)
    lock = root / "pylock.toml"
    export = ["export", "--frozen", "--no-dev", "--no-emit-project", "--format", "pylock.toml"]
    if extra:
        export += ["--extra", "demo"]
    subprocess.run(
        [uv_binary(), *export, "-q", "-o", str(lock)],
        cwd=REPO,
        env=clean_env(),
        check=True,
        timeout=120,
    )
    venv = root / "venv"
    uv("venv", "-q", "--python", PYTHON, str(venv), cwd=root)
    python = str(venv / "bin" / "python")
    uv("pip", "install", "-q", "--python", python, "-r", str(lock), cwd=root)
    uv("pip", "install", "-q", "--python", python, "--no-deps", str(wheel), cwd=root)
    # The wheel's declared requirements are met by what is installed (nothing undeclared).
    uv("pip", "check", "--python", python, cwd=root)
    return venv / "bin"


def run(
    binary: Path, *args: str, cwd: Path, home: Path, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args],
        cwd=cwd,
        env=clean_env(HOME=str(home), DLT_DATA_DIR=str(home / "dlt")),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_wheel_carries_the_models_and_not_the_benchmark(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for sql in (REPO / "sql").rglob("*.sql"):
        assert f"pipelines/sql/{sql.relative_to(REPO / 'sql')}" in names, sql
    # the report's and the headline's queries, next to their modules
    for sql in [
        *(REPO / "pipelines").rglob("report/sql/*.sql"),
        *(REPO / "pipelines").rglob("models/queries/*.sql"),
    ]:
        assert str(sql.relative_to(REPO)) in names, sql
    # the dashboard's script and its charting library (with the library's license)
    for asset in (
        "pipelines/report/dashboard.js",
        "pipelines/report/vendor/chart.umd.min.js",
        "pipelines/report/vendor/chart.js.LICENSE.md",
    ):
        assert asset in names, asset
    assert not [name for name in names if "benchmark" in name]
    assert not [name for name in names if name.startswith(("tests/", "sql/", "docs/"))]
    metadata = zipfile.ZipFile(wheel).read(
        next(name for name in names if name.endswith(".dist-info/METADATA"))
    )
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata.decode(), flags=re.MULTILINE)
    assert any(r.startswith("uvicorn") and "extra == 'demo'" in r for r in requires)
    assert not any(r.startswith("uvicorn") and "extra" not in r for r in requires)


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0], node.lineno


def test_every_imported_package_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower() for r in requirements}

    core = names(project["dependencies"])
    demo = names(project["optional-dependencies"]["demo"])
    distributions = packages_distributions()
    for path in sorted((REPO / "pipelines").rglob("*.py")):
        if "benchmark" in path.parts:  # not in the wheel
            continue
        for module, line in _imports(path):
            if module in sys.stdlib_module_names or module in ("pipelines", "__future__"):
                continue
            dists = {d.lower() for d in distributions.get(module, [module])}
            where = f"{path.relative_to(REPO)}:{line} imports {module}"
            if dists & demo:
                # Only the emulator's server may need the extra, and the commands check first.
                assert path.name == "server.py" and "emulator" in path.parts, where
                continue
            assert dists & core, f"{where}, which pyproject.toml does not declare"


def test_installed_wheel_runs_the_demo_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    bin_dir = make_venv(tmp_path / "env", wheel, extra=True)
    folder = tmp_path / "empty-folder"
    folder.mkdir()
    home = tmp_path / "home"
    code = "import pipelines; print(pipelines.__file__)"
    where = run(bin_dir / "python", "-c", code, cwd=folder, home=home)
    assert where.stdout.startswith(str(tmp_path / "env" / "venv")), where.stdout
    version = run(bin_dir / "voipstudio", "--version", cwd=folder, home=home)
    assert version.returncode == 0 and re.match(r"voipstudio \d+\.\d+", version.stdout)
    demo = run(bin_dir / "voipstudio", "demo", "--days", "3", "--users", "5", cwd=folder, home=home)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Traceback" not in demo.stderr
    passed = re.search(r"data tests \(sql/tests\): (\d+) of (\d+) passed", demo.stdout)
    assert passed and passed.group(1) == passed.group(2) and int(passed.group(1)) > 0
    assert "8. Dashboard" in demo.stdout
    assert (folder / "data" / "demo.duckdb").is_file()
    assert (folder / "data" / "demo-report.html").stat().st_size > 100_000


def test_without_the_demo_extra_the_emulator_commands_say_what_to_install(
    wheel: Path, tmp_path: Path
) -> None:
    bin_dir = make_venv(tmp_path / "env", wheel, extra=False)
    folder = tmp_path / "folder"
    folder.mkdir()
    home = tmp_path / "home"
    for command in (["voipstudio", "demo"], ["voipstudio-emulator"]):
        result = run(bin_dir / command[0], *command[1:], cwd=folder, home=home)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "voipstudio-pipeline[demo]" in result.stderr and "uvicorn" in result.stderr
    # Everything else works without it.
    status = run(bin_dir / "voipstudio", "status", cwd=folder, home=home)
    assert status.returncode == 0, status.stderr
    assert "last success:    never" in status.stdout


def test_uv_tool_install_gives_a_working_command(wheel: Path, tmp_path: Path) -> None:
    """The README's `uv tool install`, pinned to uv.lock's versions as it shows."""
    constraints = tmp_path / "constraints.txt"
    subprocess.run(
        [
            *(uv_binary(), "export", "--frozen", "--no-dev", "--extra", "demo"),
            *("--no-emit-project", "--no-hashes", "-q", "-o", str(constraints)),
        ],
        cwd=REPO,
        env=clean_env(),
        check=True,
        timeout=120,
    )
    tools = clean_env(UV_TOOL_DIR=str(tmp_path / "tools"), UV_TOOL_BIN_DIR=str(tmp_path / "bin"))
    uv(
        "tool",
        "install",
        "-q",
        "--python",
        PYTHON,
        "-c",
        str(constraints),
        f"{wheel}[demo]",
        cwd=tmp_path,
        env=tools,
    )
    home = tmp_path / "home"
    version = run(tmp_path / "bin" / "voipstudio", "--version", cwd=tmp_path, home=home)
    assert version.returncode == 0 and version.stdout.startswith("voipstudio ")
    emulator = run(tmp_path / "bin" / "voipstudio-emulator", "--version", cwd=tmp_path, home=home)
    assert emulator.returncode == 0 and emulator.stdout.startswith("voipstudio-emulator ")
