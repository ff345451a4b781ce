"""Helpers the built-in filters share (parameter checks, how a missing feature is judged)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from quantbot.api import FilterVerdict, TokenCandidate

OnMissing = Annotated[
    Literal["fail", "pass"],
    msgspec.Meta(description='when the feature could not be measured: "fail" (default, fail closed) or "pass"'),
]


def check_share(key: str, value: Decimal) -> None:
    """A share parameter must lie in [0, 1]."""
    if not Decimal(0) <= value <= Decimal(1):
        raise ValueError(f"{key} must be a share between 0 and 1 (e.g. 0.3 for 30%), got {value}")


def missing_verdict(
    filter_id: str, candidate: TokenCandidate, feature: str, on_missing: str, what: str
) -> FilterVerdict:
    """The verdict when `feature` is None: fail closed unless told to pass."""
    why = candidate.why_missing(feature)
    return FilterVerdict(filter=filter_id, passed=on_missing == "pass", reason=f"{what} unknown: {why}")


def pct(share: Decimal) -> str:
    """A share as a percentage for reasons, e.g. 0.4213 -> "42.13%"."""
    return f"{(share * 100).quantize(Decimal('0.01'))}%"
