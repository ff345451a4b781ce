"""The `blocklist` filter, tested with the plugin-author harness."""

from __future__ import annotations

import msgspec
import pytest

from quantbot.testing import make_plugin, token_candidate
from quantbot_filters.blocklist import BlocklistFilter


async def test_passes_a_token_that_matches_nothing() -> None:
    f = make_plugin(BlocklistFilter, name_patterns=["rug"], creators=["Bad1"])
    verdict = await f.check(token_candidate(name="Good Dog", symbol="GOOD", creator="Fine1"))
    assert (verdict.filter, verdict.passed, verdict.reason) == ("blocklistfilter", True, "")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"name": "Big RUG pull"}, r"name matches /\brug\b/"),
        ({"symbol": "SCAMX"}, "symbol matches /^scam/"),
        ({"creator": "Bad1"}, "creator Bad1 is blocklisted"),
        ({"name": "\uff22\uff49\uff47 \uff32\uff35\uff27"}, r"name matches /\brug\b/"),  # fullwidth folds to ASCII
        ({"name": "big r\u200bug"}, r"name matches /\brug\b/"),  # zero-width space is dropped
        ({"name": "big ru\u0000g"}, r"name matches /\brug\b/"),  # control characters are dropped
    ],
)
async def test_rejects_by_name_symbol_or_creator(fields: dict[str, str], reason: str) -> None:
    f = make_plugin(BlocklistFilter, name_patterns=[r"\brug\b"], symbol_patterns=["^scam"], creators=["Bad1"])
    verdict = await f.check(token_candidate(**fields))
    assert (verdict.passed, verdict.reason) == (False, reason)


async def test_case_sensitivity_is_configurable() -> None:
    f = make_plugin(BlocklistFilter, name_patterns=["rug"], ignore_case=False)
    assert (await f.check(token_candidate(name="RUG"))).passed
    assert not (await f.check(token_candidate(name="rug"))).passed


async def test_reconfigure_recompiles_patterns() -> None:
    f = make_plugin(BlocklistFilter, name_patterns=["rug"])
    assert (await f.check(token_candidate(name="moon"))).passed
    f.reconfigure(msgspec.convert({"name_patterns": ["moon"]}, BlocklistFilter.Config))
    assert not (await f.check(token_candidate(name="moon"))).passed
    assert (await f.check(token_candidate(name="rug"))).passed


def test_invalid_regex_is_refused_with_the_key() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"name_patterns: invalid regular expression '\['"):
        make_plugin(BlocklistFilter, name_patterns=["["])
