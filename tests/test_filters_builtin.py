"""The built-in filters, through the plugin-author harness: pass, fail, near miss, bad parameters, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.api import CreatorInfo, LpInfo, MetadataInfo
from quantbot.testing import check_filter, holders_info, liquidity_info, make_plugin, mint_info, token_candidate
from quantbot_filters.burn import BurnFilter
from quantbot_filters.creator_history import CreatorHistoryFilter
from quantbot_filters.holders import HoldersFilter
from quantbot_filters.mutable import MutableFilter
from quantbot_filters.pool_size import PoolSizeFilter
from quantbot_filters.renounced import RenouncedFilter
from quantbot_filters.token2022 import TOKEN_2022, Token2022Filter

NOW = datetime(2026, 1, 1, tzinfo=UTC)
AMM = dict(venue="PumpSwap", bonding_curve=False)


def lp(minted: int, supply: int) -> LpInfo:
    return LpInfo(lp_mint="Lp1", minted=minted, supply=supply, decimals=9)


def meta(*, mutable: bool, authority: str | None = "Auth1") -> MetadataInfo:
    return MetadataInfo(source="metaplex", name="X", symbol="X", uri="", update_authority=authority, is_mutable=mutable)


# --- burn ----------------------------------------------------------------------------------------


async def test_burn_passes_at_the_minimum_and_fails_just_below_it() -> None:
    f = make_plugin(BurnFilter, min_burned=0.9)
    at = await check_filter(f, token_candidate(liquidity=liquidity_info(**AMM), lp=lp(1000, 100)))
    below = await check_filter(f, token_candidate(liquidity=liquidity_info(**AMM), lp=lp(1000, 101)))
    assert (at.passed, at.value) == (True, "0.9")
    assert not below.passed and below.reason == "only 89.90% of LP burned (< 90.00%)" and below.value == "0.899"


async def test_burn_treats_bonding_curves_as_configured() -> None:
    curve = token_candidate(liquidity=liquidity_info(bonding_curve=True), missing={"lp": "bonding curve: no LP mint"})
    assert (await check_filter(make_plugin(BurnFilter), curve)).passed
    refused = await check_filter(make_plugin(BurnFilter, bonding_curve="fail"), curve)
    assert not refused.passed and "refused by config" in refused.reason


async def test_burn_fails_closed_when_the_lp_could_not_be_read_unless_told_to_pass() -> None:
    c = token_candidate(liquidity=liquidity_info(**AMM), missing={"lp": "timeout after 5s"})
    v = await check_filter(make_plugin(BurnFilter), c)
    assert not v.passed and v.reason == "LP burn unknown: timeout after 5s"
    assert (await check_filter(make_plugin(BurnFilter, on_missing="pass"), c)).passed


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_burn_refuses_a_share_outside_0_1(bad: float) -> None:
    with pytest.raises(msgspec.ValidationError, match="min_burned must be a share between 0 and 1"):
        make_plugin(BurnFilter, min_burned=bad)


@given(minted=st.integers(1, 10**18), supply=st.integers(0, 10**18), minimum=st.decimals(0, 1, places=4))
async def test_burn_passes_exactly_when_the_burned_share_reaches_the_minimum(
    minted: int, supply: int, minimum: Decimal
) -> None:
    f = make_plugin(BurnFilter, min_burned=minimum)
    v = await check_filter(f, token_candidate(liquidity=liquidity_info(**AMM), lp=lp(minted, supply)))
    burned = max(0, minted - supply)
    assert v.passed == (Decimal(burned) / Decimal(minted) >= minimum)


# --- mutable -------------------------------------------------------------------------------------


async def test_mutable_passes_immutable_metadata_and_refuses_mutable_with_the_authority() -> None:
    f = make_plugin(MutableFilter)
    assert (await check_filter(f, token_candidate(metadata=meta(mutable=False)))).passed
    v = await check_filter(f, token_candidate(metadata=meta(mutable=True, authority="Auth1")))
    assert (v.passed, v.value) == (False, "Auth1")
    assert v.reason == "metaplex metadata is mutable (update authority Auth1)"


async def test_mutable_accepts_a_known_update_authority_but_not_another() -> None:
    f = make_plugin(MutableFilter, allowed_update_authorities=["Auth1"])
    assert (await check_filter(f, token_candidate(metadata=meta(mutable=True, authority="Auth1")))).passed
    assert not (await check_filter(f, token_candidate(metadata=meta(mutable=True, authority="Auth2")))).passed


async def test_mutable_fails_closed_without_metadata() -> None:
    c = token_candidate(missing={"metadata": "no Metaplex metadata account and no TokenMetadata extension"})
    v = await check_filter(make_plugin(MutableFilter), c)
    assert not v.passed and v.reason.startswith("metadata unknown: no Metaplex")


def test_mutable_refuses_unknown_parameters() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        make_plugin(MutableFilter, allow=["x"])


# --- renounced -----------------------------------------------------------------------------------


async def test_renounced_requires_mint_and_by_default_freeze_authority_revoked() -> None:
    f = make_plugin(RenouncedFilter)
    assert (await check_filter(f, token_candidate(mint=mint_info()))).passed
    minting = await check_filter(f, token_candidate(mint=mint_info(mint_authority="MintAuth")))
    assert (minting.passed, minting.value) == (False, "MintAuth")
    freezing = await check_filter(f, token_candidate(mint=mint_info(freeze_authority="FreezeAuth")))
    assert not freezing.passed and freezing.reason == "freeze authority not revoked (FreezeAuth)"


async def test_renounced_can_allow_a_freeze_authority() -> None:
    f = make_plugin(RenouncedFilter, require_freeze_revoked=False)
    assert (await check_filter(f, token_candidate(mint=mint_info(freeze_authority="FreezeAuth")))).passed


async def test_renounced_fails_closed_without_the_mint_account() -> None:
    v = await check_filter(make_plugin(RenouncedFilter), token_candidate(missing={"mint": "mint account not found"}))
    assert not v.passed and v.reason == "mint account unknown: mint account not found"


# --- pool_size -----------------------------------------------------------------------------------


async def test_pool_size_bounds_are_inclusive_and_a_near_miss_fails() -> None:
    f = make_plugin(PoolSizeFilter, min_native=5, max_native=50)
    assert (await check_filter(f, token_candidate(liquidity=liquidity_info(native=Decimal(5))))).passed
    assert (await check_filter(f, token_candidate(liquidity=liquidity_info(native=Decimal(50))))).passed
    low = await check_filter(f, token_candidate(liquidity=liquidity_info(native=Decimal("4.999999999"))))
    assert not low.passed and low.reason == "liquidity 4.999999999 SOL below 5 SOL"
    high = await check_filter(f, token_candidate(liquidity=liquidity_info(native=Decimal("50.000000001"))))
    assert not high.passed and high.value == "50.000000001"


async def test_pool_size_in_usd_needs_a_price() -> None:
    f = make_plugin(PoolSizeFilter, min_usd=1000)
    no_price = await check_filter(f, token_candidate(liquidity=liquidity_info(usd=None)))
    assert not no_price.passed and "USD unknown" in no_price.reason
    assert (await check_filter(f, token_candidate(liquidity=liquidity_info(usd=Decimal(1500))))).passed
    assert not (await check_filter(f, token_candidate(liquidity=liquidity_info(usd=Decimal(999))))).passed


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_native": 10, "max_native": 5}, "min_native .10. is above max_native .5."),
        ({"min_native": -1}, "min_native must be a non-negative number"),
        ({"max_usd": "NaN"}, "max_usd must be a non-negative number"),
    ],
)
def test_pool_size_refuses_inverted_or_negative_bounds(params: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        make_plugin(PoolSizeFilter, **params)


@given(
    sol=st.decimals(0, 10**6, places=9),
    lo=st.decimals(0, 10**6, places=3),
    width=st.decimals(0, 10**6, places=3),
)
async def test_pool_size_passes_exactly_inside_the_range(sol: Decimal, lo: Decimal, width: Decimal) -> None:
    f = make_plugin(PoolSizeFilter, min_native=lo, max_native=lo + width)
    v = await check_filter(f, token_candidate(liquidity=liquidity_info(native=sol)))
    assert v.passed == (lo <= sol <= lo + width)


# --- holders -------------------------------------------------------------------------------------


async def test_holders_counts_only_the_top_n_and_fails_above_the_share() -> None:
    f = make_plugin(HoldersFilter, top_n=2, max_share=0.3)
    ok = await check_filter(f, token_candidate(holders=holders_info(supply=1000, top=[200, 100, 100])))
    assert (ok.passed, ok.value) == (True, "0.3")
    over = await check_filter(f, token_candidate(holders=holders_info(supply=1000, top=[200, 101, 100])))
    assert not over.passed and over.reason == "top 2 holders hold 30.10% (> 30.00%)"


async def test_holders_fails_a_zero_supply_and_missing_holders() -> None:
    f = make_plugin(HoldersFilter)
    assert not (await check_filter(f, token_candidate(holders=holders_info(supply=0, top=[])))).passed
    v = await check_filter(f, token_candidate(missing={"holders": "supply unknown (mint account not found)"}))
    assert not v.passed and "supply unknown" in v.reason


@pytest.mark.parametrize("params", [{"top_n": 0}, {"top_n": 21}, {"max_share": 2}])
def test_holders_refuses_impossible_parameters(params: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        make_plugin(HoldersFilter, **params)


@given(
    amounts=st.lists(st.integers(0, 10**15), max_size=20),
    extra=st.integers(1, 10**16),
    n=st.integers(1, 20),
    share=st.decimals(0, 1, places=4),
)
async def test_holders_passes_exactly_when_the_top_n_share_is_within_the_limit(
    amounts: list[int], extra: int, n: int, share: Decimal
) -> None:
    supply = sum(amounts) + extra
    f = make_plugin(HoldersFilter, top_n=n, max_share=share)
    v = await check_filter(f, token_candidate(holders=holders_info(supply=supply, top=amounts)))
    top = sum(sorted(amounts, reverse=True)[:n])
    assert v.passed == (Decimal(top) / Decimal(supply) <= share)


# --- creator_history -----------------------------------------------------------------------------


def creator(*ages_h: float) -> CreatorInfo:
    return CreatorInfo(address="Dev1", previous_launches=tuple(NOW - timedelta(hours=h) for h in ages_h))


async def test_creator_history_counts_this_launch_and_only_launches_inside_the_window() -> None:
    f = make_plugin(CreatorHistoryFilter, max_launches=3, window_s=86_400)
    c2 = token_candidate(creator=creator(1, 2, 30))  # two inside the day + this one = 3
    c3 = token_candidate(creator=creator(1, 2, 3))
    v2 = await check_filter(f, msgspec.structs.replace(c2, observed_at=NOW))
    v3 = await check_filter(f, msgspec.structs.replace(c3, observed_at=NOW))
    assert (v2.passed, v2.value) == (True, "3")
    assert not v3.passed and v3.reason == "creator Dev1 launched 4 tokens within 86400s" and v3.value == "4"


async def test_creator_history_does_not_judge_the_pumpfun_raydium_migrator() -> None:
    migrator = CreatorInfo(address="39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg", previous_launches=(NOW,) * 40)
    f = make_plugin(CreatorHistoryFilter, max_launches=3)
    v = await check_filter(f, msgspec.structs.replace(token_candidate(creator=migrator), observed_at=NOW))
    assert v.passed and "ignored" in v.reason
    strict = make_plugin(CreatorHistoryFilter, max_launches=3, ignore_creators=[])
    assert not (
        await check_filter(strict, msgspec.structs.replace(token_candidate(creator=migrator), observed_at=NOW))
    ).passed


async def test_creator_history_fails_closed_without_a_creator() -> None:
    v = await check_filter(make_plugin(CreatorHistoryFilter), token_candidate(missing={"creator": "no creator"}))
    assert not v.passed


def test_creator_history_needs_at_least_one_launch_and_a_positive_window() -> None:
    with pytest.raises(msgspec.ValidationError):
        make_plugin(CreatorHistoryFilter, max_launches=0)
    with pytest.raises(msgspec.ValidationError):
        make_plugin(CreatorHistoryFilter, window_s=0)


# --- token2022_extensions ------------------------------------------------------------------------


def t22(**fields: object) -> object:
    return mint_info(program=TOKEN_2022, **fields)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"permanent_delegate": "Del1", "extensions": ("permanentDelegate",)}, "PermanentDelegate set (Del1)"),
        ({"transfer_hook_program": "Hook1", "extensions": ("transferHook",)}, "TransferHook program Hook1"),
        ({"non_transferable": True, "extensions": ("nonTransferable",)}, "NonTransferable mint"),
        ({"default_account_state": "frozen", "extensions": ("defaultAccountState",)}, "DefaultAccountState is frozen"),
        ({"transfer_fee_bps": 1, "extensions": ("transferFeeConfig",)}, "transfer fee 1 bps above 0 bps"),
    ],
)
async def test_token2022_refuses_each_dangerous_extension(fields: dict[str, object], reason: str) -> None:
    v = await check_filter(make_plugin(Token2022Filter), token_candidate(mint=t22(**fields)))
    assert not v.passed and v.reason == reason


async def test_token2022_each_refusal_can_be_switched_off_and_the_fee_bound_raised() -> None:
    f = make_plugin(
        Token2022Filter,
        refuse_permanent_delegate=False,
        refuse_transfer_hook=False,
        refuse_non_transferable=False,
        refuse_frozen_default_state=False,
        max_transfer_fee_bps=100,
    )
    everything = t22(
        permanent_delegate="Del1",
        transfer_hook_program="Hook1",
        non_transferable=True,
        default_account_state="frozen",
        transfer_fee_bps=100,
    )
    assert (await check_filter(f, token_candidate(mint=everything))).passed
    assert not (await check_filter(f, token_candidate(mint=t22(transfer_fee_bps=101)))).passed


async def test_token2022_passes_plain_spl_mints_and_an_initialized_default_state() -> None:
    f = make_plugin(Token2022Filter)
    assert (await check_filter(f, token_candidate(mint=mint_info()))).passed
    assert (await check_filter(f, token_candidate(mint=t22(default_account_state="initialized")))).passed


def test_token2022_refuses_a_fee_bound_above_100_percent() -> None:
    with pytest.raises(msgspec.ValidationError):
        make_plugin(Token2022Filter, max_transfer_fee_bps=10_001)
