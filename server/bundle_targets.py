"""What a bundle is for: a machine PC's platform and CPython version (standard library only, so that
`millwatch --help` lists the choices on any install)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.tags import Tag

PLATFORMS = ("win_amd64", "win32", "linux_x86_64")
PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
# The oldest glibc the Linux bundle aims at (manylinux2014, CentOS 7): old machine PCs run old distros.
_OLDEST_GLIBC_MINOR = 17


@dataclass(frozen=True)
class Target:
    """A machine PC's platform and CPython version, as pip and the wheel tags name them."""

    platform: str  # win_amd64, win32 or linux_x86_64
    python_version: str  # "3.9" ... "3.13"

    @property
    def pip_platforms(self) -> tuple[str, ...]:
        """The platform tags pip may pick wheels for (Linux: manylinux up to glibc 2.17, then plain)."""
        if self.platform != "linux_x86_64":
            return (self.platform,)
        legacy = {17: "manylinux2014_x86_64", 12: "manylinux2010_x86_64", 5: "manylinux1_x86_64"}
        tags: list[str] = []
        for minor in range(_OLDEST_GLIBC_MINOR, 4, -1):
            tags.append(f"manylinux_2_{minor}_x86_64")
            if minor in legacy:
                tags.append(legacy[minor])
        return (*tags, "linux_x86_64")

    @property
    def version_tuple(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")
        return int(major), int(minor)

    def supported_tags(self) -> frozenset[Tag]:
        """Every wheel tag a CPython of this version on this platform installs."""
        from packaging.tags import compatible_tags, cpython_tags

        platforms = list(self.pip_platforms)
        version = self.version_tuple
        interpreter = f"cp{version[0]}{version[1]}"
        return frozenset(
            [
                *cpython_tags(version, platforms=platforms),
                *compatible_tags(version, interpreter=interpreter, platforms=platforms),
            ]
        )
