"""MemeScanner end to end against the local Solana endpoint: a recorded pump.fun create_v2 is announced
to a running SolanaWatcher (real parser), the recorded accounts are served where the launch points,
and the candidate's features and the filters' verdicts follow from those accounts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from solders.keypair import Keypair

from quantbot.chains.solana.parser import SolanaParser
from quantbot.config import ScannerConfig
from quantbot.creators import RECORD_KIND
from quantbot.events import TokenAccepted, TokenRejected
from quantbot.events import TokenLaunch as TokenLaunchEvent
from quantbot.localnet.solana import LocalSolana
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import make_plugin, token_launch
from quantbot_filters.blocklist import BlocklistFilter
from quantbot_filters.burn import BurnFilter
from quantbot_filters.creator_history import CreatorHistoryFilter
from quantbot_filters.holders import HoldersFilter
from quantbot_filters.mutable import MutableFilter
from quantbot_filters.pool_size import PoolSizeFilter
from quantbot_filters.renounced import RenouncedFilter
from quantbot_filters.token2022 import Token2022Filter
from tests.scanner_chain import (
    CREATE_V2,
    CREATOR,
    CURVE,
    MINT,
    MINT_SUPPLY,
    amount,
    scanning,
    serve_launch_accounts,
)

OTHERS = [str(Keypair().pubkey()) for _ in range(3)]


def chain_of_filters() -> list[object]:
    return [
        make_plugin(BlocklistFilter, id="blocklist", name_patterns=["rug"]),
        make_plugin(RenouncedFilter, id="renounced"),
        make_plugin(MutableFilter, id="mutable"),
        make_plugin(Token2022Filter, id="token2022_extensions", max_transfer_fee_bps=100),
        make_plugin(PoolSizeFilter, id="pool_size", min_native=Decimal("0.5"), max_native=100),
        make_plugin(HoldersFilter, id="holders", top_n=10, max_share=Decimal("0.3")),
        make_plugin(BurnFilter, id="burn"),
        make_plugin(CreatorHistoryFilter, id="creator_history", max_launches=3),
    ]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "q.db") as s:
        yield s


async def test_a_recorded_pumpfun_create_is_enriched_from_the_recorded_accounts_and_judged(
    local_solana: LocalSolana, store: SqliteStore, solana_fixtures: Path
) -> None:
    holders = serve_launch_accounts(local_solana, solana_fixtures, others=OTHERS)
    async with scanning(local_solana, store, chain_of_filters()) as s:  # type: ignore[arg-type]
        sig = local_solana.load_transaction(solana_fixtures / CREATE_V2)
        await local_solana.announce(sig)
        await s.until(lambda ev: any(isinstance(e, TokenRejected | TokenAccepted) for e in ev))
        await s.settled()
        [verdict] = [e for e in s.events if isinstance(e, TokenRejected | TokenAccepted)]
        assert isinstance(verdict, TokenRejected)
        assert verdict.launch.mint == MINT and verdict.launch.tx == sig
        by_filter = {v.filter: v for v in verdict.verdicts}
        assert [v.filter for v in verdict.verdicts] == [f.id for f in chain_of_filters()]  # type: ignore[attr-defined]
        assert {k for k, v in by_filter.items() if not v.passed} == {"renounced", "mutable", "token2022_extensions"}
        # Reasons and measured values come from the recorded accounts.
        assert (
            by_filter["renounced"].reason == "mint authority not revoked (7MyTjmRygJoCuDBUtAuSugiYZFULD2SWaoUTmtjtRDzD)"
        )
        assert by_filter["mutable"].reason == (
            "metaplex metadata is mutable (update authority 3sJDa9yoaPGiCdCMUxPVqKractvrBoxt7NnBUktcR7Bs)"
        )
        assert by_filter["token2022_extensions"].reason == "transfer fee 690 bps above 100 bps"
        assert by_filter["pool_size"].value == "0.789008086"  # the curve's real_sol_reserves, in SOL
        top = sum(amount(p) for p in (10, 8, 5, 2))  # the curve's 60 % is excluded
        assert Decimal(by_filter["holders"].value) == Decimal(top) / Decimal(MINT_SUPPLY)
        assert by_filter["burn"].reason == "bonding curve: no LP tokens"
        assert by_filter["creator_history"].value == "1"
        assert verdict.score is not None and 0 < verdict.score < 1

        stats = s.scanner.stats()
        assert stats["rejected"] == 1 and stats["accepted"] == 0
        assert stats["rejections"] == {"renounced": 1, "mutable": 1, "token2022_extensions": 1}

        await s.writer.flush()
        row = await store.get_verdict("solana", MINT)
        assert row is not None and row[0] is False
        saved = json.loads(row[1])
        c = saved["candidate"]
        assert c["mint"]["supply"] == MINT_SUPPLY and c["mint"]["decimals"] == 5
        assert c["mint"]["program"] == "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
        assert c["mint"]["extensions"] == ["transferFeeConfig"] and c["mint"]["transfer_fee_bps"] == 690
        assert c["metadata"]["name"] == "Gooberg #2235" and c["metadata"]["is_mutable"] is True
        assert c["liquidity"]["pool"] == CURVE and c["liquidity"]["quote_reserve"] == 789_008_086
        assert c["liquidity"]["bonding_curve"] is True and c["liquidity"]["complete"] is False
        assert c["lp"] is None and c["missing"]["lp"] == "bonding curve: no LP mint"
        assert c["holders"]["excluded"] == [holders["curve"]]
        assert [h["account"] for h in c["holders"]["top"]] == [
            holders["w1"],
            holders["w2"],
            holders["creator"],
            holders["w3"],
        ]
        assert c["creator"]["address"] == CREATOR and c["creator"]["holding"] == amount(5)
        # The dev buy in the same transaction is the first trade flow.
        assert c["momentum"]["buys"] == 1 and c["momentum"]["buyers"] == 1
        assert c["momentum"]["net_native_in"] == 2_962_962_962
        assert [v["filter"] for v in saved["verdicts"]] == [v.filter for v in verdict.verdicts]
        assert await store.get_record(RECORD_KIND, f"solana:{CREATOR}") is not None


async def test_a_slow_lookup_leaves_only_its_feature_missing_with_the_reason(
    local_solana: LocalSolana, store: SqliteStore, solana_fixtures: Path
) -> None:
    serve_launch_accounts(local_solana, solana_fixtures, others=OTHERS)
    local_solana.faults.delay = 1.0
    local_solana.faults.only_methods = frozenset({"getTokenLargestAccounts"})
    async with scanning(
        local_solana,
        store,
        [make_plugin(HoldersFilter, id="holders"), make_plugin(PoolSizeFilter, id="pool_size")],
        lookup_timeout=0.2,
    ) as s:  # type: ignore[arg-type]
        await local_solana.announce(local_solana.load_transaction(solana_fixtures / CREATE_V2))
        await s.until(lambda ev: any(isinstance(e, TokenRejected | TokenAccepted) for e in ev))
        [verdict] = [e for e in s.events if isinstance(e, TokenRejected | TokenAccepted)]
        assert isinstance(verdict, TokenRejected)
        holders, pool = verdict.verdicts
        assert (holders.passed, holders.reason) == (False, "holders unknown: timeout after 0.2s")
        assert pool.passed and pool.value == "0.789008086"
        assert s.scanner.stats()["lookup_failures"] == {"holders": 1}


async def test_the_same_mint_from_two_sources_is_judged_once(
    local_solana: LocalSolana, store: SqliteStore, solana_fixtures: Path
) -> None:
    serve_launch_accounts(local_solana, solana_fixtures, others=OTHERS)
    async with scanning(local_solana, store, [make_plugin(BlocklistFilter, id="blocklist")]) as s:  # type: ignore[arg-type]
        sig = local_solana.load_transaction(solana_fixtures / CREATE_V2)
        await local_solana.announce(sig)
        await s.bus.publish(token_launch(mint=MINT, source="pumpportal", creator=CREATOR))
        await s.until(lambda ev: any(isinstance(e, TokenRejected | TokenAccepted) for e in ev))
        await s.settled()
        judged = [e for e in s.events if isinstance(e, TokenRejected | TokenAccepted)]
        assert len(judged) == 1 and isinstance(judged[0], TokenAccepted)
        assert s.scanner.stats()["duplicates"] == 1


async def test_stopping_at_the_first_failure_reports_only_the_filters_that_ran(
    local_solana: LocalSolana, store: SqliteStore, solana_fixtures: Path
) -> None:
    serve_launch_accounts(local_solana, solana_fixtures, others=OTHERS)
    config = ScannerConfig(evaluate_all=False)
    async with scanning(local_solana, store, chain_of_filters(), config=config) as s:  # type: ignore[arg-type]
        await local_solana.announce(local_solana.load_transaction(solana_fixtures / CREATE_V2))
        await s.until(lambda ev: any(isinstance(e, TokenRejected) for e in ev))
        [verdict] = [e for e in s.events if isinstance(e, TokenRejected)]
        assert [(v.filter, v.passed) for v in verdict.verdicts] == [("blocklist", True), ("renounced", False)]


async def test_creator_launch_history_survives_a_restart(
    local_solana: LocalSolana, tmp_path: Path, solana_fixtures: Path
) -> None:
    serve_launch_accounts(local_solana, solana_fixtures, others=OTHERS)
    limit = [make_plugin(CreatorHistoryFilter, id="creator_history", max_launches=1)]
    async with SqliteStore(tmp_path / "q.db") as store:
        async with scanning(local_solana, store, limit, watch=False) as s:  # type: ignore[arg-type]
            await s.bus.publish(token_launch(mint=str(Keypair().pubkey()), creator=CREATOR))
            await s.until(lambda ev: any(isinstance(e, TokenAccepted) for e in ev))
            await s.settled()
    async with SqliteStore(tmp_path / "q.db") as store:
        async with scanning(local_solana, store, limit, watch=False) as s:  # type: ignore[arg-type]
            await s.bus.publish(token_launch(mint=MINT, creator=CREATOR, bonding_curve=CURVE))
            await s.until(lambda ev: any(isinstance(e, TokenRejected) for e in ev))
            [verdict] = [e for e in s.events if isinstance(e, TokenRejected)]
            assert verdict.verdicts[0].value == "2"
            assert "launched 2 tokens" in verdict.verdicts[0].reason


async def test_a_burst_of_launches_by_one_creator_during_slow_enrichment_accepts_exactly_the_limit(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    limit = [make_plugin(CreatorHistoryFilter, id="creator_history", max_launches=3)]
    creator = str(Keypair().pubkey())
    async with scanning(local_solana, store, limit, watch=False) as s:  # type: ignore[arg-type]
        local_solana.faults.delay = 0.3  # every look-up of every launch is still in flight when the next arrives
        for _ in range(6):
            await s.bus.publish(token_launch(mint=str(Keypair().pubkey()), creator=creator))
        await s.settled()
    verdicts = [e for e in s.events if isinstance(e, (TokenAccepted, TokenRejected))]
    assert len(verdicts) == 6
    assert sum(isinstance(e, TokenAccepted) for e in verdicts) == 3
    assert sorted(e.verdicts[0].value for e in verdicts) == ["1", "2", "3", "4", "5", "6"]


def test_a_candidate_round_trips_through_json() -> None:
    from quantbot.candidates import TokenCandidate
    from quantbot.testing import holders_info, liquidity_info, mint_info, token_candidate

    c = token_candidate(mint=mint_info(), holders=holders_info(supply=10, top=[3]), liquidity=liquidity_info())
    assert msgspec.json.decode(msgspec.json.encode(c), type=TokenCandidate) == c


async def test_a_launch_with_a_malformed_address_is_rejected_with_the_reason_not_dropped(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    async with scanning(local_solana, store, [make_plugin(RenouncedFilter, id="renounced")], watch=False) as s:  # type: ignore[arg-type]
        await s.bus.publish(token_launch(mint="not-a-base58-address!", creator=CREATOR))
        await s.until(lambda ev: any(isinstance(e, TokenRejected) for e in ev))
        [verdict] = [e for e in s.events if isinstance(e, TokenRejected)]
        assert verdict.verdicts[0].reason == "mint account unknown: invalid mint address 'not-a-base58-address!'"
        assert s.scanner.stats()["lookup_failures"]["invalid_address"] == 1


# --- AMM pools: the second look-up round (quote vault, LP mint) ------------------------------------

RAYDIUM_INIT = "raydium_v4_initialize2_gettransaction_jsonparsed.json"
POOL = "6DrWmJAVcCLUTHzgdMoKroZCwdcS8sodLgctiBqvyys6"
MEME = "6Ed5YTw9AoUhr5VcsjZdGHqpdruqgCaZcLv7WU6npump"
WSOL = "So11111111111111111111111111111111111111112"
COIN_VAULT, PC_VAULT, LP_MINT = (
    "9JQ4n7s9xnJvbmaG9wtkUiC8qLUR2MR4LQeJw1ka7X77",
    "Dn1NMgHneoKZvtgec5Pnv336qGVV6AyPuqS5rNvNAFa1",
    "EQRWgCWEwXD2QADZNE9nviKRqDeK3GnibLTnTdq8H2SA",
)
LP_MINTED = 4_042_044_507_682  # LP the initialize2 transaction minted to the migrator (its post token balance)


def raydium_pool_state() -> bytes:
    """An AMM v4 pool state (752 bytes, LIQUIDITY_STATE_LAYOUT_V4 offsets) naming the recorded pool's accounts.

    No recorded pool account exists in the fixtures; the addresses and amounts are the initialize2 transaction's.
    """
    from solders.pubkey import Pubkey

    data = bytearray(752)
    data[0:8] = (6).to_bytes(8, "little")
    data[32:40] = (9).to_bytes(8, "little")
    data[40:48] = (6).to_bytes(8, "little")
    for at, key in ((336, COIN_VAULT), (368, PC_VAULT), (400, WSOL), (432, MEME), (464, LP_MINT)):
        data[at : at + 32] = bytes(Pubkey.from_string(key))
    data[720:728] = LP_MINTED.to_bytes(8, "little")
    return bytes(data)


def spl_mint(supply: int, decimals: int) -> bytes:
    from solders.token.state import Mint

    return bytes(
        Mint(mint_authority=None, supply=supply, decimals=decimals, is_initialized=True, freeze_authority=None)
    )


async def test_a_raydium_pool_launch_measures_sol_liquidity_lp_burn_and_excludes_the_pool_vault(
    local_solana: LocalSolana, store: SqliteStore, solana_fixtures: Path
) -> None:
    from quantbot.chains.solana.programs import RAYDIUM_AMM_V4_AUTHORITY, RAYDIUM_AMM_V4_PROGRAM, TOKEN_PROGRAM
    from tests.scanner_chain import token_account

    ledger = local_solana.ledger
    ledger.set_account(POOL, data=raydium_pool_state(), owner=RAYDIUM_AMM_V4_PROGRAM)
    ledger.set_account(
        COIN_VAULT, data=token_account(WSOL, RAYDIUM_AMM_V4_AUTHORITY, 79_005_359_551), owner=TOKEN_PROGRAM
    )
    ledger.set_account(
        PC_VAULT, data=token_account(MEME, RAYDIUM_AMM_V4_AUTHORITY, 206_900_000_000_000), owner=TOKEN_PROGRAM
    )
    ledger.set_account(LP_MINT, data=spl_mint(LP_MINTED // 20, 9), owner=TOKEN_PROGRAM)  # 95 % of the LP burned
    # The supply is what the token accounts hold: the vault 80 %, one holder 20 %.
    ledger.set_account(MEME, data=spl_mint(258_625_000_000_000, 6), owner=TOKEN_PROGRAM)
    holder = str(Keypair().pubkey())
    ledger.set_account(
        str(Keypair().pubkey()), data=token_account(MEME, holder, 51_725_000_000_000), owner=TOKEN_PROGRAM
    )
    filters = [
        make_plugin(BurnFilter, id="burn", min_burned=Decimal("0.95")),
        make_plugin(PoolSizeFilter, id="pool_size", min_native=50),
        make_plugin(HoldersFilter, id="holders", top_n=10, max_share=Decimal("0.2")),
        make_plugin(CreatorHistoryFilter, id="creator_history"),
    ]
    async with scanning(local_solana, store, filters, watch=False) as s:  # type: ignore[arg-type]
        [launch] = [
            e
            for e in SolanaParser().parse_transaction((solana_fixtures / RAYDIUM_INIT).read_bytes())
            if isinstance(e, TokenLaunchEvent)
        ]
        await s.bus.publish(launch)
        await s.until(lambda ev: any(isinstance(e, TokenAccepted | TokenRejected) for e in ev))
        [verdict] = [e for e in s.events if isinstance(e, TokenAccepted | TokenRejected)]
        assert isinstance(verdict, TokenAccepted), verdict.verdicts
        burn, pool, holders, history = verdict.verdicts
        burned = Decimal(LP_MINTED - LP_MINTED // 20) / Decimal(LP_MINTED)
        assert Decimal(burn.value) == burned and burn.reason == "95.00% of LP burned"
        assert pool.value == "79.005359551"  # WSOL is the coin side here: the vault that does not hold the meme
        assert holders.value == "0.2"  # the pool's meme vault (80 % of supply) is left out
        assert "launches for others" in history.reason
        # Mint, metadata, pool and creator accounts in one request; then the vault and LP mint in a second.
        assert local_solana.calls["getMultipleAccounts"] == 2


async def test_a_cpmm_pool_launch_leaves_the_pool_vault_it_names_out_of_the_holders(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    from quantbot.chains.solana.programs import TOKEN_PROGRAM
    from tests.scanner_chain import token_account

    meme, pool, vault, sol_vault, authority, holder = (str(Keypair().pubkey()) for _ in range(6))
    ledger = local_solana.ledger
    ledger.set_account(meme, data=spl_mint(10**15, 6), owner=TOKEN_PROGRAM)
    ledger.set_account(vault, data=token_account(meme, authority, 95 * 10**13), owner=TOKEN_PROGRAM)
    ledger.set_account(str(Keypair().pubkey()), data=token_account(meme, holder, 10**13), owner=TOKEN_PROGRAM)
    launch = token_launch(
        mint=meme,
        source="Raydium CPMM",
        bonding_curve=None,
        pool=pool,
        base_mint=meme,
        quote_mint=WSOL,
        base_vault=vault,
        quote_vault=sol_vault,
    )
    holders = [make_plugin(HoldersFilter, id="holders", top_n=10, max_share=Decimal("0.05"))]
    async with scanning(local_solana, store, holders, watch=False) as s:  # type: ignore[arg-type]
        await s.bus.publish(launch)
        await s.settled()
    [verdict] = [e for e in s.events if isinstance(e, TokenAccepted | TokenRejected)]
    assert isinstance(verdict, TokenAccepted), verdict.verdicts
    assert verdict.verdicts[0].value == "0.01"  # the pool's vault (95 % of supply) is not a holder


async def test_holders_are_unknown_and_fail_closed_when_the_largest_accounts_answer_misses_the_supply(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    from quantbot.chains.solana.programs import TOKEN_PROGRAM

    meme = str(Keypair().pubkey())
    local_solana.ledger.set_account(meme, data=spl_mint(10**15, 6), owner=TOKEN_PROGRAM)  # no token account: []
    holders = [make_plugin(HoldersFilter, id="holders")]
    async with scanning(local_solana, store, holders, watch=False) as s:  # type: ignore[arg-type]
        await s.bus.publish(token_launch(mint=meme, bonding_curve=None, pool=None))
        await s.settled()
    [verdict] = [e for e in s.events if isinstance(e, TokenAccepted | TokenRejected)]
    assert isinstance(verdict, TokenRejected)
    assert verdict.verdicts[0].reason == (
        "holders unknown: largest accounts answer incomplete: 0 accounts hold 0 of 1000000000000000"
    )


async def test_trades_inside_the_momentum_window_are_part_of_the_candidate(
    local_solana: LocalSolana, store: SqliteStore, solana_fixtures: Path
) -> None:
    from tests.test_rugwatch import trade

    serve_launch_accounts(local_solana, solana_fixtures, others=OTHERS)
    config = ScannerConfig(momentum_window_s=1.5)
    async with scanning(
        local_solana, store, [make_plugin(BlocklistFilter, id="blocklist")], config=config, watch=False
    ) as s:  # type: ignore[arg-type]
        await s.bus.publish(token_launch(mint=MINT, creator=CREATOR, bonding_curve=CURVE))
        buyers = [str(Keypair().pubkey()) for _ in range(2)]
        for user in buyers:
            await s.bus.publish(trade(user=user, is_buy=True, tokens=10**9, reserves=10**9, mint=MINT))
        await s.bus.publish(trade(user=buyers[0], is_buy=False, tokens=10**9, reserves=10**9, mint=MINT))
        await s.until(lambda ev: any(isinstance(e, TokenAccepted) for e in ev))
        await s.writer.flush()
        row = await store.get_verdict("solana", MINT)
        assert row is not None
        momentum = json.loads(row[1])["candidate"]["momentum"]
        assert (momentum["buys"], momentum["sells"], momentum["buyers"]) == (2, 1, 2)
        assert momentum["net_native_in"] == 10**8 and momentum["window_s"] == 1.5


async def test_concurrent_lookups_of_one_launch_share_requests_and_failures_are_not_cached(
    local_solana: LocalSolana, solana_fixtures: Path
) -> None:
    import asyncio

    from quantbot.chains.solana.rpc import SolanaRpcPool
    from quantbot.clock import WallClock
    from quantbot.config import SolanaEndpointConfig
    from quantbot.enrich import SolanaEnricher
    from quantbot.retry import Backoff

    serve_launch_accounts(local_solana, solana_fixtures, others=OTHERS)
    launch = token_launch(mint=MINT, creator=CREATOR, bonding_curve=CURVE)
    endpoint = SolanaEndpointConfig(http=local_solana.http_url, timeout=5.0, rps=0)
    async with SolanaRpcPool(endpoints=[endpoint], clock=WallClock(), rounds=1, backoff=Backoff(0.01, 0.01)) as pool:
        enricher = SolanaEnricher(rpc=pool, clock=WallClock(), state_ttl=600)
        local_solana.faults.server_errors = 1
        local_solana.faults.only_methods = frozenset({"getMultipleAccounts"})
        failed = await enricher.enrich(launch)
        assert failed.mint is None and failed.missing["mint"].startswith("rpc unavailable")
        a, b = await asyncio.gather(enricher.enrich(launch), enricher.enrich(launch))
        assert a.mint == b.mint and a.mint is not None and a.mint.supply == MINT_SUPPLY
        assert a.holders == b.holders and a.holders is not None
        # The failed batch was not kept; the two concurrent look-ups shared one batch and one holders request.
        assert (local_solana.calls["503"], local_solana.calls["getMultipleAccounts"]) == (1, 1)
        assert local_solana.calls["getTokenLargestAccounts"] == 1  # answered in the first run, cached since
        assert enricher.cache.hits >= 5


def test_liquidity_is_valued_in_sol_and_usd_from_the_price_view_for_sol_and_usdc_quotes() -> None:
    from typing import Any, cast

    from quantbot.clock import WallClock
    from quantbot.enrich import SolanaEnricher

    class Prices:
        def price_native(self, chain: str, token: str) -> Decimal | None:
            return None

        def usd_per_native(self, chain: str) -> Decimal | None:
            return Decimal(150) if chain == "solana" else None

    enricher = SolanaEnricher(rpc=cast(Any, None), clock=WallClock(), prices=Prices())
    sol = enricher._liquidity("pump.fun", "Curve", "So11111111111111111111111111111111111111112", 2 * 10**9)
    assert (sol.native, sol.usd, sol.quote_decimals) == (Decimal(2), Decimal(300), 9)
    usdc = enricher._liquidity("pump.fun", "Curve", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 300 * 10**6)
    assert (usdc.native, usdc.usd, usdc.quote_decimals) == (Decimal(2), Decimal(300), 6)
    blind = SolanaEnricher(rpc=cast(Any, None), clock=WallClock())
    usdc_blind = blind._liquidity("pump.fun", "Curve", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 300 * 10**6)
    assert (usdc_blind.native, usdc_blind.usd) == (None, Decimal(300))
