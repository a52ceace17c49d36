"""Floor plans: one image per site, uploaded by an admin, on which the page places the site's machines.

Stored as files under `<data dir>/plans/`: `<key>.img` (the bytes as uploaded) and `<key>.json`
(format, width, height, ETag, the site's name). The key is a SHA-256 of the site's name, so a
name (free text: `../../etc`, `Hall 2/East`, anything) never reaches a file path.

Only PNG, JPEG and WebP are taken, recognised by their first bytes whatever the request says. SVG
never is: it is a document that may carry scripts. The width and height are read from the image's
header by Pillow, which is asked to recognise only those three formats; the pixels are never
decoded here, and the bytes are served as they came, with `X-Content-Type-Options: nosniff`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from server.atomic_file import write_atomically
from server.inventory_models import PlanModel

MAX_PLAN_BYTES = 5 * 1024 * 1024
# A plan bigger than this many pixels would take a browser hundreds of MB to draw.
MAX_PLAN_PIXELS = 64_000_000
MAX_SIDE = 20_000

_TOO_LARGE = f"a floor plan may be at most {MAX_SIDE} pixels a side and {MAX_PLAN_PIXELS} pixels in all"
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class PlanRefused(ValueError):
    """The upload is not a plan this server keeps; `status` is 413 (too large) or 415 / 422."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class PlanInfo:
    site: str
    content_type: str
    width: int
    height: int
    etag: str
    size: int

    def to_public(self) -> PlanModel:
        """What `GET /api/sites` shows of a plan."""
        return PlanModel(width=self.width, height=self.height, etag=self.etag)


def sniff(data: bytes) -> str:
    """The format by the first bytes: PNG, JPEG or WEBP. Raises PlanRefused (415) for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype")) or b"<svg" in head:
        raise PlanRefused(415, "SVG is not accepted (it may carry scripts): upload PNG, JPEG or WebP")
    raise PlanRefused(415, "not a PNG, JPEG or WebP image")


def measure(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) of an image, read from its header; PlanRefused when it is no image
    of the three formats or too large."""
    if len(data) > MAX_PLAN_BYTES:
        raise PlanRefused(413, f"a floor plan may be at most {MAX_PLAN_BYTES // (1024 * 1024)} MiB")
    kind = sniff(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PlanRefused(422, _TOO_LARGE) from None
    except UnidentifiedImageError:
        raise PlanRefused(422, f"the {kind} image cannot be read (damaged?)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise PlanRefused(422, f"the {kind} image cannot be read: {e}") from None
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE) or width * height > MAX_PLAN_PIXELS:
        raise PlanRefused(422, _TOO_LARGE)
    return kind, width, height


class PlanStore:
    """The floor plans under `folder` (created when the first plan is stored).

    A plan's image file is named by its site's key and its ETag, and its `.json` names it: a reader
    always finds the image that goes with the size and ETag it read, even during a replacement.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def get(self, site: str) -> PlanInfo | None:
        try:
            raw = json.loads(self._meta_path(site).read_text(encoding="utf-8"))
            info = PlanInfo(**raw)
        except (OSError, ValueError, TypeError):
            return None
        return info if info.site == site else None

    def read(self, site: str) -> tuple[PlanInfo, bytes] | None:
        info = self.get(site)
        if info is None:
            return None
        try:
            data = self._image_path(info).read_bytes()
        except OSError:
            return None
        return info, data

    def prepare(self, site: str, data: bytes) -> PlanInfo:
        """Check an upload (PlanRefused) and describe it; nothing is stored yet."""
        kind, width, height = measure(data)
        return PlanInfo(
            site=site,
            content_type=CONTENT_TYPES[kind],
            width=width,
            height=height,
            etag=hashlib.sha256(data).hexdigest()[:32],
            size=len(data),
        )

    def write(self, info: PlanInfo, data: bytes) -> None:
        """Store a prepared plan, replacing the site's previous one."""
        with self._lock:
            previous = self.get(info.site)
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomically(self._image_path(info), data)
            write_atomically(self._meta_path(info.site), json.dumps(asdict(info)).encode("utf-8"))
            if previous is not None and previous.etag != info.etag:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._image_path(previous))

    def delete(self, site: str) -> PlanInfo | None:
        """Delete the site's plan; returns what was deleted (None: there was none)."""
        with self._lock:
            info = self.get(site)
            if info is None:
                return None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._meta_path(site))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._image_path(info))
            return info

    def _key(self, site: str) -> str:
        return hashlib.sha256(site.encode("utf-8")).hexdigest()[:40]

    def _image_path(self, info: PlanInfo) -> Path:
        return self.folder / f"{self._key(info.site)}-{info.etag}.img"

    def _meta_path(self, site: str) -> Path:
        return self.folder / f"{self._key(site)}.json"
