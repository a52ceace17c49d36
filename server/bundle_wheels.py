"""The wheels of the offline bundle: the exporter's own wheel, its dependencies, and the tag check.

The exporter's wheel is built from the source of this install (`exporter/` and `millwatch_common/`
only, with the base dependencies of the `millwatch` distribution), so a machine PC never receives
the scraper, the server or the web page. Dependencies come from pip: the registry, or a local
folder of wheels (`--no-index --find-links`) for a central host that is itself offline. Every
wheel is then checked against the tags the target interpreter accepts (`packaging.tags`), so a
bundle that would fail on the machine PC is refused here, with the wheel's name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from exporter import __version__ as EXPORTER_VERSION
from server.bundle_targets import Target
from server.errors import BundleError, WheelMismatch, WheelsUnavailable

EXPORTER_DISTRIBUTION = "millwatch-exporter"
# What the machine PC receives: the exporter and the small shared module it imports, nothing else.
EXPORTER_PACKAGES = ("exporter", "millwatch_common")
_IGNORED_FILES = ("__pycache__", "*.pyc", "*.pyo")
_PIP_TIMEOUT_SECONDS = 600


def exporter_requirements() -> list[str]:
    """The base dependencies of the installed `millwatch` distribution (no extra): the exporter's own.

    pyproject.toml is their one definition; the installed metadata carries them to this code.
    """
    try:
        declared = importlib.metadata.requires("millwatch") or []
    except importlib.metadata.PackageNotFoundError:
        raise BundleError(
            "the millwatch distribution is not installed: pip install 'millwatch[central]'"
        ) from None
    base = []
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker is None or "extra" not in str(requirement.marker):
            base.append(str(requirement))
    return base


def build_exporter_wheel(destination: Path) -> Path:
    """Build the exporter's wheel (exporter + millwatch_common, base dependencies only) into `destination`.

    The packages are copied from this install into a temporary project whose pyproject names only
    them, and hatchling (the project's own build backend) builds it without any network.
    """
    from hatchling.builders.wheel import WheelBuilder

    requirements = exporter_requirements()
    with tempfile.TemporaryDirectory(prefix="millwatch-exporter-build-") as work:
        project = Path(work)
        for package in EXPORTER_PACKAGES:
            source = Path(importlib.import_module(package).__file__ or "").parent
            shutil.copytree(source, project / package, ignore=shutil.ignore_patterns(*_IGNORED_FILES))
        dependencies = ",\n".join(f"    {_toml_string(r)}" for r in requirements)
        (project / "pyproject.toml").write_text(
            "[build-system]\n"
            'requires = ["hatchling"]\n'
            'build-backend = "hatchling.build"\n\n'
            "[project]\n"
            f'name = "{EXPORTER_DISTRIBUTION}"\n'
            f'version = "{EXPORTER_VERSION}"\n'
            'description = "millwatch exporter: serial sensor readings and system figures for Prometheus."\n'
            'requires-python = ">=3.9"\n'
            f"dependencies = [\n{dependencies},\n]\n\n"
            "[project.scripts]\n"
            'millwatch-exporter = "exporter.cli:main"\n\n'
            "[tool.hatch.build.targets.wheel]\n"
            f"packages = [{', '.join(_toml_string(p) for p in EXPORTER_PACKAGES)}]\n",
            encoding="utf-8",
        )
        built = list(WheelBuilder(str(project)).build(directory=str(destination), versions=["standard"]))
    if len(built) != 1:
        raise BundleError(f"building the exporter wheel gave {len(built)} files instead of one")
    return Path(built[0])


def download_wheels(
    target: Target, requirements: Sequence[str], destination: Path, *, wheels_dir: Path | None = None
) -> list[Path]:
    """Let pip resolve `requirements` (names or local wheel files) for `target` into `destination`.

    From the registry, or with `wheels_dir` from that folder alone (`--no-index`). Returns the
    wheels now in `destination`, each checked against the target's tags. Raises WheelsUnavailable
    with pip's reason, WheelMismatch for a wheel that does not fit.
    """
    destination.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--quiet",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        target.python_version,
        *(arg for platform in target.pip_platforms for arg in ("--platform", platform)),
        "--dest",
        str(destination),
    ]
    if wheels_dir is not None:
        if not wheels_dir.is_dir():
            raise WheelsUnavailable(f"the wheel folder {wheels_dir} does not exist")
        command += ["--no-index", "--find-links", str(wheels_dir)]
    result = subprocess.run(
        [*command, *requirements], capture_output=True, text=True, timeout=_PIP_TIMEOUT_SECONDS, check=False
    )
    if result.returncode != 0:
        raise WheelsUnavailable(_explain_pip_failure(result.stderr, target, wheels_dir))
    wheels = sorted(destination.glob("*.whl"))
    check_wheels(wheels, target)
    return wheels


def check_wheels(wheels: Iterable[Path], target: Target) -> None:
    """Raise WheelMismatch for the first wheel none of whose tags the target's CPython accepts."""
    supported = target.supported_tags()
    for wheel in wheels:
        try:
            _name, _version, _build, tags = parse_wheel_filename(wheel.name)
        except InvalidWheelFilename:
            raise WheelMismatch(wheel.name, target.platform, target.python_version) from None
        if not tags & supported:
            raise WheelMismatch(wheel.name, target.platform, target.python_version)


def _explain_pip_failure(stderr: str, target: Target, wheels_dir: Path | None) -> str:
    where = f"in {wheels_dir}" if wheels_dir is not None else "on the package index"
    missing = re.search(r"No matching distribution found for (\S+)", stderr)
    if missing:
        hint = (
            f"; fill the folder on a host with internet: millwatch bundle --platform {target.platform} "
            f"--python-version {target.python_version} --download-to DIR"
            if wheels_dir is not None
            else ""
        )
        return (
            f"no wheel of {missing.group(1)} for {target.platform} with CPython "
            f"{target.python_version} {where}{hint}"
        )
    errors = [line.strip() for line in stderr.splitlines() if line.startswith("ERROR")]
    detail = errors[-1] if errors else (stderr.strip().splitlines() or ["pip failed"])[-1]
    return f"pip could not get the wheels {where}: {detail}"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
