"""What one machine may send in one scrape: the limits of `machines.yaml` (Prometheus' names).

Each limit is a key of `defaults` and of each machine (a machine's own value wins); see
docs/inventory.md. A scrape over any limit keeps nothing of that scrape: the machine is `down` with
the limit in its reason ("sample_limit 500 exceeded"), so one machine's flood never reaches the
database nor holds the others up. Series per machine are bounded by the store
(`Store.max_series_per_machine`), for labels that change at every scrape.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

DEFAULT_SAMPLE_LIMIT = 50_000
DEFAULT_LABEL_LIMIT = 64
DEFAULT_LABEL_NAME_LENGTH_LIMIT = 128
DEFAULT_LABEL_VALUE_LENGTH_LIMIT = 2048
DEFAULT_METRIC_NAME_LENGTH_LIMIT = 200  # the store's metric column holds 200 characters
DEFAULT_BODY_SIZE_LIMIT = 10 * 2**20
MAX_BODY_SIZE_LIMIT = 2**30

_SIZE = re.compile(r"\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*")
_UNITS = {None: 1, "B": 1, "KB": 10**3, "KiB": 2**10, "MB": 10**6, "MiB": 2**20, "GB": 10**9, "GiB": 2**30}


def parse_size(value: object) -> int:
    """Bytes from an integer or a text like `10MiB`, `512 KiB`, `2MB`."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 10MiB or a number of bytes")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match:
            return int(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError("expected a size like 10MiB or a number of bytes")


Size = Annotated[int, BeforeValidator(parse_size), Field(ge=1, le=MAX_BODY_SIZE_LIMIT)]
Count = Annotated[int, Field(ge=1, le=10_000_000)]
Redirects = Literal["none", "same_host"]


class LimitsSpec(BaseModel):
    """The limit keys as written in machines.yaml (in `defaults` and in each machine); all optional."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    sample_limit: Count | None = None
    label_limit: Count | None = None
    label_name_length_limit: Count | None = None
    label_value_length_limit: Count | None = None
    metric_name_length_limit: Annotated[int, Field(ge=1, le=DEFAULT_METRIC_NAME_LENGTH_LIMIT)] | None = None
    body_size_limit: Size | None = None
    follow_redirects: Redirects | None = None


class ScrapeLimits(BaseModel):
    """The limits in force for one machine."""

    model_config = ConfigDict(frozen=True)

    sample_limit: int = DEFAULT_SAMPLE_LIMIT
    label_limit: int = DEFAULT_LABEL_LIMIT
    label_name_length_limit: int = DEFAULT_LABEL_NAME_LENGTH_LIMIT
    label_value_length_limit: int = DEFAULT_LABEL_VALUE_LENGTH_LIMIT
    metric_name_length_limit: int = DEFAULT_METRIC_NAME_LENGTH_LIMIT
    body_size_limit: int = DEFAULT_BODY_SIZE_LIMIT
    follow_redirects: Redirects = "none"

    def overridden_by(self, spec: LimitsSpec) -> ScrapeLimits:
        """These limits with the keys written in `spec` replaced."""
        written = {k: getattr(spec, k) for k in LimitsSpec.model_fields if getattr(spec, k) is not None}
        return self.model_copy(update=written) if written else self
