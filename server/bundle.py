"""`millwatch bundle`: the offline machine package, one zip a technician carries on a USB stick.

    millwatch-exporter-<version>-<platform>-py<X.Y>/
        wheels/                    the exporter's own wheel and its dependencies' for that platform
        exporter.example.yaml      every key of exporter.yaml, documented (the exporter's own example)
        setup_helper.py            check a config, read its port, wait for the exporter to answer
        README.txt                 the steps, short
        INSTALL.bat  UNINSTALL.bat  millwatch-task.ps1  run-exporter.cmd      (Windows)
        install.sh   uninstall.sh   millwatch-exporter.service                (Linux)

The installer files are package data of `server/` (server/bundle_files/), not of the exporter:
only this central command reads them, and a machine PC's install stays the exporter code alone.
Their `@NAME@` placeholders are filled here; Windows files get CRLF line ends (cmd.exe misreads
labels in LF-only batch files).
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from exporter import __version__ as EXPORTER_VERSION
from server.bundle_targets import PLATFORMS, PYTHON_VERSIONS, Target
from server.bundle_wheels import (
    EXPORTER_DISTRIBUTION,
    build_exporter_wheel,
    download_wheels,
    exporter_requirements,
)
from server.errors import BundleError

_WINDOWS_FILES = ("INSTALL.bat", "UNINSTALL.bat", "millwatch-task.ps1", "run-exporter.cmd")
_LINUX_FILES = ("install.sh", "uninstall.sh", "millwatch-exporter.service")
_COMMON_FILES = ("setup_helper.py", "README.txt")
_EXECUTABLE = ("install.sh", "uninstall.sh")
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")
_ZIP_DATE = (2020, 2, 2, 0, 0, 0)  # hatchling's date for the files of the wheels it builds


@dataclass(frozen=True)
class BundleResult:
    path: Path
    wheels: tuple[str, ...]

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def bundle_name(target: Target) -> str:
    return f"{EXPORTER_DISTRIBUTION}-{EXPORTER_VERSION}-{target.platform}-py{target.python_version}"


def build_bundle(target: Target, output_dir: Path, *, wheels_dir: Path | None = None) -> BundleResult:
    """Write the bundle zip for `target` into `output_dir` (created if needed); returns its path.

    Wheels come from the package index, or only from `wheels_dir` when given. Raises BundleError
    (WheelsUnavailable, WheelMismatch) without leaving a partial zip behind.
    """
    _check_target(target)
    name = bundle_name(target)
    with tempfile.TemporaryDirectory(prefix="millwatch-bundle-") as work:
        wheels = Path(work) / "wheels"
        exporter_wheel = build_exporter_wheel(Path(work) / "build")
        # pip resolves the exporter wheel's own dependencies and copies the wheel itself along.
        collected = download_wheels(target, [str(exporter_wheel)], wheels, wheels_dir=wheels_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        final = output_dir / f"{name}.zip"
        partial = final.with_name(final.name + ".partial")
        try:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
                for wheel in collected:
                    # Wheels are zips already: compressing them again gains nothing.
                    _add(archive, f"{name}/wheels/{wheel.name}", wheel.read_bytes(), stored=True)
                for file_name, text in _installer_files(target).items():
                    data = text.encode("utf-8")
                    _add(archive, f"{name}/{file_name}", data, executable=file_name in _EXECUTABLE)
            partial.replace(final)
        finally:
            partial.unlink(missing_ok=True)
    return BundleResult(final, tuple(wheel.name for wheel in collected))


def download_for_offline(target: Target, destination: Path) -> list[Path]:
    """Fill `destination` with the dependency wheels a bundle for `target` needs (from the index).

    The folder can then serve `build_bundle(..., wheels_dir=destination)` on a host without internet.
    """
    _check_target(target)
    return download_wheels(target, exporter_requirements(), destination)


def _installer_files(target: Target) -> dict[str, str]:
    windows = target.platform.startswith("win")
    names = (*(_WINDOWS_FILES if windows else _LINUX_FILES), *_COMMON_FILES)
    values = {
        "@VERSION@": EXPORTER_VERSION,
        "@PLATFORM@": target.platform,
        "@PYTHON_VERSION@": target.python_version,
        "@DISTRIBUTION@": EXPORTER_DISTRIBUTION,
        "@BUNDLE@": bundle_name(target),
        "@INSTALL_COMMAND@": "INSTALL.bat (right-click, Run as administrator)"
        if windows
        else "sudo sh install.sh",
    }
    files: dict[str, str] = {}
    folder = resources.files("server").joinpath("bundle_files")
    for file_name in names:
        text = folder.joinpath(file_name).read_text(encoding="utf-8")
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        leftover = _PLACEHOLDER.search(text)
        if leftover:
            raise BundleError(f"bundle file {file_name}: unknown placeholder {leftover.group(0)}")
        if windows and file_name.endswith((".bat", ".cmd", ".ps1", ".txt")):
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        files[file_name] = text
    example = resources.files("exporter").joinpath("exporter.example.yaml").read_text(encoding="utf-8")
    files["exporter.example.yaml"] = example.replace("\n", "\r\n") if windows else example
    return files


def _add(
    archive: zipfile.ZipFile, arcname: str, data: bytes, *, executable: bool = False, stored: bool = False
) -> None:
    # A fixed date and mode: the same sources and wheels give the same zip, byte for byte, so a
    # bundle can be checked against its checksum after it travelled on a USB stick.
    info = zipfile.ZipInfo(arcname, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    archive.writestr(info, data, compresslevel=9)


def _check_target(target: Target) -> None:
    if target.platform not in PLATFORMS:
        raise BundleError(f"unknown platform {target.platform!r}: expected one of {', '.join(PLATFORMS)}")
    if target.python_version not in PYTHON_VERSIONS:
        raise BundleError(
            f"unsupported Python version {target.python_version!r}: "
            f"expected one of {', '.join(PYTHON_VERSIONS)}"
        )
