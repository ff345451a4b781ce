"""SolanaParser on recorded mainnet transactions: events match what the balances and logs say."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import based58
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.chains.solana.parser import SolanaParser
from quantbot.chains.solana.programs import NATIVE_MINT, PUMP_FUN_PROGRAM, TOKEN_2022_PROGRAM, USDC_MINT
from quantbot.events import Event, PumpTrade, Swap, TokenLaunch, Transfer

TRANSACTIONS = (
    "aggregator_router_pumpswap_buy_with_alt_gettransaction_json.json",
    "jupiter_v6_route_via_raydium_gettransaction_jsonparsed.json",
    "pumpfun_buy_gettransaction_jsonparsed.json",
    "pumpfun_buy_legacy_2024_gettransaction_jsonparsed.json",
    "pumpfun_create_blocksubscribe_base64.json",
    "pumpfun_create_v2_gettransaction_jsonparsed.json",
    "pumpswap_amm_buy_gettransaction_json.json",
    "raydium_v4_initialize2_gettransaction_jsonparsed.json",
    "raydium_v4_swap_direct_gettransaction_jsonparsed.json",
    "spl_transfer_checked_helius_raw_webhook.json",
)


def load(folder: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / name).read_text())
    return data


def result_of(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.get("result", doc)  # type: ignore[no-any-return]


def of_type(events: list[Event], cls: type[Event]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def keys_of(result: dict[str, Any]) -> list[str]:
    keys = [k if isinstance(k, str) else k["pubkey"] for k in result["transaction"]["message"]["accountKeys"]]
    loaded = result["meta"].get("loadedAddresses") or {}
    return keys + loaded.get("writable", []) + loaded.get("readonly", [])


def token_delta(result: dict[str, Any], owner: str, mint: str) -> int:
    """Sum post - sum pre of `owner`'s token accounts for `mint`, straight from the fixture."""
    meta = result["meta"]

    def total(rows: list[dict[str, Any]]) -> int:
        return sum(int(r["uiTokenAmount"]["amount"]) for r in rows if r["owner"] == owner and r["mint"] == mint)

    return total(meta["postTokenBalances"]) - total(meta["preTokenBalances"])


def lamport_delta(result: dict[str, Any], address: str) -> int:
    i = keys_of(result).index(address)
    return int(result["meta"]["postBalances"][i]) - int(result["meta"]["preBalances"][i])


@pytest.fixture
def parser() -> SolanaParser:
    return SolanaParser()


@pytest.mark.parametrize("name", TRANSACTIONS)
def test_every_recorded_transaction_parses_without_rejection(solana_fixtures: Path, name: str) -> None:
    parser = SolanaParser()
    events = parser.parse_transaction((solana_fixtures / name).read_bytes())
    assert events, name
    assert not parser.rejected
    signature = result_of(load(solana_fixtures, name))
    for e in events:
        assert getattr(e, "tx", None) in (None, *(_sig(signature),))


def _sig(result: dict[str, Any]) -> str:
    tx = result["transaction"]
    if isinstance(tx, list):
        from solders.transaction import VersionedTransaction

        return str(VersionedTransaction.from_bytes(base64.b64decode(tx[0])).signatures[0])
    return str(tx["signatures"][0])


def test_envelope_result_object_bytes_str_and_mapping_give_the_same_events(solana_fixtures: Path) -> None:
    parser = SolanaParser()
    path = solana_fixtures / "jupiter_v6_route_via_raydium_gettransaction_jsonparsed.json"
    doc = json.loads(path.read_text())
    outs = [
        parser.parse_transaction(path.read_bytes()),
        parser.parse_transaction(path.read_text()),
        parser.parse_transaction(doc),
        parser.parse_transaction(doc["result"]),
        parser.parse_transaction(json.dumps(doc["result"]).encode()),
    ]
    assert all(o == outs[0] for o in outs)
    assert not parser.rejected


def test_raydium_direct_buy_is_half_a_sol_for_the_tokens_the_wallet_received(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    doc = load(solana_fixtures, "raydium_v4_swap_direct_gettransaction_jsonparsed.json")
    r = result_of(doc)
    [swap] = of_type(parser.parse_transaction(doc), Swap)
    wallet = "8hnZamLJMaHYzTXGxWTEGUnyCXkjdtTV3EQ4JWaUwzGF"
    assert swap.wallet == wallet
    assert swap.venue == "Raydium AMM v4"
    assert (swap.mint_in, swap.decimals_in) == (NATIVE_MINT, 9)
    # ray_log SwapBaseIn: amount_in u64 at byte 1, out_amount u64 at byte 49 (notes section 4)
    line = next(x for x in r["meta"]["logMessages"] if "ray_log: " in x)
    ray = base64.b64decode(line.split("ray_log: ")[1])
    assert swap.amount_in == int.from_bytes(ray[1:9], "little") == 500_000_000
    assert swap.amount_out == token_delta(r, wallet, swap.mint_out) == int.from_bytes(ray[49:57], "little")
    assert swap.amount_out == 7_971_544_451
    assert swap.fee == r["meta"]["fee"] == 305_001
    assert swap.slot == r["slot"] and swap.tx == r["transaction"]["signatures"][0]
    # the wallet's lamports fell by the trade, the fee, a 0.0045 SOL tip and nothing else (rent round-trips)
    tip = of_type(parser.parse_transaction(doc), Transfer)[0]
    assert tip.amount == 4_500_000 and tip.source == wallet
    assert lamport_delta(r, wallet) + token_account_lamports_delta(r, wallet) == -(500_000_000 + 305_001 + 4_500_000)


def token_account_lamports_delta(result: dict[str, Any], owner: str) -> int:
    meta = result["meta"]
    idx = {t["accountIndex"] for t in meta["preTokenBalances"] + meta["postTokenBalances"] if t["owner"] == owner}
    return sum(meta["postBalances"][i] - meta["preBalances"][i] for i in idx)


def test_jupiter_route_collapses_to_the_net_in_and_out_matching_its_swap_event(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    doc = load(solana_fixtures, "jupiter_v6_route_via_raydium_gettransaction_jsonparsed.json")
    r = result_of(doc)
    events = parser.parse_transaction(doc)
    [swap] = of_type(events, Swap)
    wallet = "GHa33oDG4yioeufqZkPUrbpYM5Vkb8pZFPaReZGRgd3w"
    assert (swap.wallet, swap.venue, swap.mint_out) == (wallet, "Jupiter", NATIVE_MINT)
    assert swap.amount_in == -token_delta(r, wallet, swap.mint_in) == 11_288_441_160
    # SwapEvent self-CPI data: tag(8) disc(8) amm(32) in_mint(32) in_amount(8) out_mint(32) out_amount(8)
    cpi = next(
        ix
        for g in r["meta"]["innerInstructions"]
        for ix in g["instructions"]
        if ix.get("programId") == "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4" and len(ix.get("accounts", [])) == 1
    )
    import based58

    data = bytes(based58.b58decode(cpi["data"].encode()))
    assert swap.amount_out == int.from_bytes(data[120:128], "little") == 964_248_099
    # lamports: +959,939,083 = out - fee 3,309,016 - 1,000,000 tip (notes section 7)
    assert lamport_delta(r, wallet) == swap.amount_out - swap.fee - 1_000_000
    [tip] = of_type(events, Transfer)
    assert (tip.source, tip.amount, tip.mint) == (wallet, 1_000_000, NATIVE_MINT)


def test_pump_create_v2_yields_launch_dev_buy_trade_and_the_devs_swap(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    doc = load(solana_fixtures, "pumpfun_create_v2_gettransaction_jsonparsed.json")
    r = result_of(doc)
    events = parser.parse_transaction(doc)
    [launch] = of_type(events, TokenLaunch)
    mint, dev = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump", "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"
    assert (launch.mint, launch.name, launch.symbol, launch.source) == (mint, "The Ass Statue", "TAS", "pump.fun")
    assert launch.uri == "https://meta.uxento.io/data/714b0bec-90cb-4cbb-9598-b7bcbcd3bd06"
    assert (launch.creator, launch.token_program, launch.decimals) == (dev, TOKEN_2022_PROGRAM, 6)
    assert launch.bonding_curve == "3jJ83NDorkbFkF1JKbEfFWGeX16aXUiwby9RwJm9kat3"
    assert launch.quote_mint == NATIVE_MINT
    assert launch.block_time == datetime.fromtimestamp(r["blockTime"], UTC)
    [trade] = of_type(events, PumpTrade)
    assert (trade.mint, trade.user, trade.is_buy) == (mint, dev, True)
    assert (trade.sol_amount, trade.token_amount) == (2_962_962_962, 96_449_438_144_093)
    assert (trade.quote_mint, trade.quote_amount, trade.quote_decimals) == (NATIVE_MINT, 2_962_962_962, 9)
    assert (trade.virtual_sol_reserves, trade.virtual_token_reserves) == (32_962_962_962, 976_550_561_855_907)
    assert (trade.fee, trade.creator_fee, trade.ix_name) == (28_148_149, 0, "buy_exact_sol_in")
    [swap] = of_type(events, Swap)
    assert (swap.wallet, swap.mint_out, swap.venue) == (dev, mint, "pump.fun")
    assert swap.amount_out == token_delta(r, dev, mint) == trade.token_amount
    assert swap.amount_in > trade.sol_amount + trade.fee  # plus creation rent, cashback and buyback fees
    # the two top-level SOL payments to other wallets are transfers, not part of the trade
    assert sorted(t.amount for t in of_type(events, Transfer)) == [3_000_000, 27_000_000]
    assert swap.amount_in == -(lamport_delta(r, dev) + token_account_lamports_delta(r, dev)) - swap.fee - 30_000_000


def test_usdc_quoted_pump_buy_reports_the_quote_amount_not_sol(solana_fixtures: Path, parser: SolanaParser) -> None:
    doc = load(solana_fixtures, "pumpfun_buy_gettransaction_jsonparsed.json")
    r = result_of(doc)
    events = parser.parse_transaction(doc)
    [trade] = of_type(events, PumpTrade)
    user = "BwWK17cbHxwWBKZkUYvzxLcNQ1YVyaFezduWbtm2de6s"
    assert (trade.user, trade.is_buy, trade.sol_amount) == (user, True, 0)
    assert (trade.quote_mint, trade.quote_decimals) == (USDC_MINT, 6)
    assert trade.quote_amount == -token_delta(r, user, USDC_MINT) == 3_517_192
    assert trade.token_amount == token_delta(r, user, trade.mint) == 445_377_137_871
    # the trading account is not a signer (a router's account): no Swap is invented for the fee payer
    assert of_type(events, Swap) == []
    assert of_type(events, Transfer) == []  # token legs under pump.fun are the trade, not transfers


def test_legacy_pump_buy_and_sell_in_one_tx_are_two_trades_and_no_net_swap(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    events = parser.parse_transaction(load(solana_fixtures, "pumpfun_buy_legacy_2024_gettransaction_jsonparsed.json"))
    buy, sell = of_type(events, PumpTrade)
    assert (buy.is_buy, buy.sol_amount, buy.token_amount) == (True, 24_080_282, 605_426_095_720)
    assert (sell.is_buy, sell.sol_amount, sell.token_amount) == (False, 24_080_281, 605_426_095_720)
    assert buy.fee is None and buy.quote_mint == NATIVE_MINT and buy.quote_amount == buy.sol_amount
    assert buy.timestamp == datetime.fromtimestamp(1724126293, UTC)
    assert of_type(events, Swap) == []


def test_base64_blocksubscribe_create_gives_launch_and_dev_buy(solana_fixtures: Path, parser: SolanaParser) -> None:
    events = parser.parse_transaction(load(solana_fixtures, "pumpfun_create_blocksubscribe_base64.json"))
    [launch] = of_type(events, TokenLaunch)
    assert (launch.mint, launch.name, launch.symbol) == (
        "7YD6ZHb39jGb33ki2iFd7kHK11yMkSFCc9kvjJscpump",
        "NYXORA",
        "NYXORA",
    )
    [trade] = of_type(events, PumpTrade)
    [swap] = of_type(events, Swap)
    assert swap.wallet == trade.user == launch.creator
    assert swap.amount_out == trade.token_amount
    assert swap.tx == launch.tx == trade.tx and len(swap.tx) > 80


def test_pumpswap_json_encoding_sell_matches_wallet_deltas(solana_fixtures: Path, parser: SolanaParser) -> None:
    doc = load(solana_fixtures, "pumpswap_amm_buy_gettransaction_json.json")
    r = result_of(doc)
    [swap] = of_type(parser.parse_transaction(doc), Swap)
    wallet = "95rVs91daKmzom4SM41dg4MRmy5M7rMEHPerenZwWaCq"
    assert (swap.wallet, swap.venue, swap.mint_out) == (wallet, "PumpSwap", NATIVE_MINT)
    assert swap.amount_in == -token_delta(r, wallet, swap.mint_in) == 468_934_276_696_458
    # pool base is WSOL here: the BuyEvent's base_amount_out is the SOL the wallet got
    assert swap.amount_out == lamport_delta(r, wallet) + swap.fee == 201_692_493


def test_lookup_table_accounts_resolve_program_and_mint(solana_fixtures: Path, parser: SolanaParser) -> None:
    doc = load(solana_fixtures, "aggregator_router_pumpswap_buy_with_alt_gettransaction_json.json")
    r = result_of(doc)
    assert "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA" in r["meta"]["loadedAddresses"]["readonly"]
    events = parser.parse_transaction(doc)
    [swap] = of_type(events, Swap)
    wallet = r["transaction"]["message"]["accountKeys"][0]
    assert swap.venue == "PumpSwap"  # the program id is only reachable through the lookup table
    assert (swap.wallet, swap.mint_in, swap.mint_out) == (
        wallet,
        NATIVE_MINT,
        "8k1DvnFBsbuWJw2t4JqTibR7cAgqadMveqiykMr1pump",
    )
    assert swap.amount_out == token_delta(r, wallet, swap.mint_out) == 4_374_143_343
    [tip] = of_type(events, Transfer)
    assert (
        swap.amount_in == -(lamport_delta(r, wallet) + token_account_lamports_delta(r, wallet)) - swap.fee - tip.amount
    )


def test_raydium_initialize2_is_a_launch_of_the_non_sol_side_and_not_a_swap(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    events = parser.parse_transaction(load(solana_fixtures, "raydium_v4_initialize2_gettransaction_jsonparsed.json"))
    [launch] = of_type(events, TokenLaunch)
    assert launch.source == "Raydium AMM v4"
    assert launch.mint == launch.base_mint == "6Ed5YTw9AoUhr5VcsjZdGHqpdruqgCaZcLv7WU6npump"
    assert launch.quote_mint == NATIVE_MINT
    assert launch.pool == "6DrWmJAVcCLUTHzgdMoKroZCwdcS8sodLgctiBqvyys6"
    assert launch.creator == "39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg"  # pump.fun's migration wallet
    assert (launch.base_amount, launch.quote_amount, launch.decimals) == (206_900_000_000_000, 79_005_359_551, 6)
    assert of_type(events, Swap) == []


def test_spl_transfer_checked_names_owners_not_token_accounts(solana_fixtures: Path, parser: SolanaParser) -> None:
    doc = load(solana_fixtures, "spl_transfer_checked_helius_raw_webhook.json")
    [t] = parser.parse_transaction(doc)
    assert isinstance(t, Transfer)
    src, dst = "6BU22Rzfw4PpZMjW2ffRc3Snzn6znVSiBUufhxtWv8N2", "H7DNE1wz4FfRxyP5eG9T4NEs4WVmniZ88PEvqAsocSdS"
    assert (t.source, t.destination, t.amount, t.decimals) == (src, dst, 260_000, 6)
    assert t.amount == -token_delta(doc, src, t.mint) == token_delta(doc, dst, t.mint)


def test_failed_transaction_yields_nothing_and_is_not_a_rejection(solana_fixtures: Path, parser: SolanaParser) -> None:
    doc = load(solana_fixtures, "raydium_v4_swap_direct_gettransaction_jsonparsed.json")
    doc["result"]["meta"]["err"] = {"InstructionError": [3, {"Custom": 30}]}
    assert parser.parse_transaction(doc) == []
    assert not parser.rejected and parser.skipped["failed_tx"] == 1


def test_truncated_logs_fall_back_to_pump_self_cpi_events(solana_fixtures: Path, parser: SolanaParser) -> None:
    doc = load(solana_fixtures, "pumpfun_create_v2_gettransaction_jsonparsed.json")
    full = parser.parse_transaction(copy.deepcopy(doc))
    doc["result"]["meta"]["logMessages"] = [*doc["result"]["meta"]["logMessages"][:3], "Log truncated"]
    cut = parser.parse_transaction(doc)
    assert of_type(cut, TokenLaunch) == of_type(full, TokenLaunch)
    assert of_type(cut, PumpTrade) == of_type(full, PumpTrade)


def test_parse_logs_alone_gives_the_launch_and_trade(solana_fixtures: Path, parser: SolanaParser) -> None:
    r = result_of(load(solana_fixtures, "pumpfun_create_v2_gettransaction_jsonparsed.json"))
    sig = r["transaction"]["signatures"][0]
    events = parser.parse_logs(signature=sig, slot=r["slot"], logs=r["meta"]["logMessages"])
    assert [type(e) for e in events] == [TokenLaunch, PumpTrade]
    from_tx = parser.parse_transaction(r)
    launch = next(e for e in from_tx if isinstance(e, TokenLaunch))
    assert events[0] == msgspec.structs.replace(launch, block_time=None)
    assert parser.parse_logs(signature=sig, slot=1, logs=r["meta"]["logMessages"], err={"x": 1}) == []
    assert not parser.rejected


def test_parse_logs_ignores_pump_shaped_data_from_another_program(solana_fixtures: Path, parser: SolanaParser) -> None:
    r = result_of(load(solana_fixtures, "pumpfun_create_v2_gettransaction_jsonparsed.json"))
    data_lines = [x for x in r["meta"]["logMessages"] if x.startswith("Program data: ")]
    other = "LanMV9sAd7wArD4vJFi2qDdfnVhFxYSUg6eADduJ3uj"
    forged = [
        f"Program {other} invoke [1]",
        *data_lines,
        f"Program log: Program {PUMP_FUN_PROGRAM} invoke [2]",  # a program's own log cannot fake the runtime
        *data_lines,
        f"Program {other} success",
    ]
    assert parser.parse_logs(signature="s", slot=1, logs=forged) == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "bad_json"),
        (b'{"jsonrpc":"2.0","result":null,"id":1}', "not_a_transaction"),
        (b'{"jsonrpc":"2.0","error":{"code":-32602,"message":"bad"},"id":1}', "rpc_error"),
        (
            b'{"result":{"transaction":{"signatures":[],"message":{"accountKeys":[],"instructions":[]}},"meta":{}}}',
            "no_signature",
        ),
        (b'{"result":{"transaction":5,"meta":{}}}', "schema"),
        (b"[1,2,3]", "schema"),
        (
            b'{"result":{"transaction":{"signatures":["s"],"message":{"accountKeys":["a",{"pubkey":"b"}],'
            b'"instructions":[]}},"meta":{"preBalances":[0,0],"postBalances":[0,0]}}}',
            "mixed_account_keys",
        ),
        (
            b'{"result":{"transaction":{"signatures":["s"],"message":{"accountKeys":["a"],"instructions":[]}},'
            b'"meta":{"preBalances":[0],"postBalances":[0],"preTokenBalances":[{"accountIndex":0,"mint":"m",'
            b'"uiTokenAmount":{"amount":"\xc2\xb2","decimals":6}}]}}}',
            "schema",
        ),
        (12345, "bad_type"),
    ],
)
def test_malformed_input_is_counted_under_its_reason_and_never_raises(raw: Any, reason: str) -> None:
    parser = SolanaParser()
    assert parser.parse_transaction(raw) == []
    assert parser.rejected == {reason: 1}


def test_out_of_range_account_index_is_rejected(solana_fixtures: Path, parser: SolanaParser) -> None:
    doc = load(solana_fixtures, "pumpswap_amm_buy_gettransaction_json.json")
    ixs = doc["result"]["transaction"]["message"]["instructions"]
    # the top-level SPL Token instruction (closeAccount) made a transfer, which the parser reads
    token = next(ix for ix in ixs if len(ix["accounts"]) == 3)
    token["data"] = based58.b58encode(bytes([3]) + (5).to_bytes(8, "little")).decode()
    token["accounts"][0] = 10_000
    parser.parse_transaction(doc)
    assert parser.rejected["bad_account_index"] == 1


def test_an_account_index_is_only_checked_in_instructions_the_parser_reads(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    """A PumpSwap buy is not a pool creation: its accounts are never resolved, so a bad index there
    costs nothing and the swap is still reported (from the balances, which do not use it)."""
    doc = load(solana_fixtures, "pumpswap_amm_buy_gettransaction_json.json")
    ixs = doc["result"]["transaction"]["message"]["instructions"]
    buy = next(ix for ix in ixs if len(ix["accounts"]) > 10)
    buy["accounts"][0] = 10_000
    events = parser.parse_transaction(doc)
    assert not parser.rejected
    assert [type(e) for e in events] == [Swap]


def test_control_characters_in_a_token_name_drop_the_launch_with_a_reason(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    r = result_of(load(solana_fixtures, "pumpfun_create_v2_gettransaction_jsonparsed.json"))
    logs = r["meta"]["logMessages"]
    i = next(n for n, x in enumerate(logs) if x.startswith("Program data: G3Kp"))
    raw = bytearray(base64.b64decode(logs[i][14:]))
    raw[12] = 0x07  # first byte of the name ("The Ass Statue") becomes BEL
    logs[i] = "Program data: " + base64.b64encode(bytes(raw)).decode()
    events = parser.parse_logs(signature="s", slot=1, logs=logs)
    assert [type(e) for e in events] == [PumpTrade]
    assert parser.rejected == {"pump_event_bad_string": 1}


def _pool_instruction(doc: dict[str, Any], program: str, accounts: list[str], data: bytes) -> dict[str, Any]:
    """The recorded Raydium initialize2 transaction with its pool instruction swapped for another program's."""
    import based58

    ixs = doc["result"]["transaction"]["message"]["instructions"]
    i = next(n for n, ix in enumerate(ixs) if ix.get("programId") == "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8")
    ixs[i] = {"programId": program, "accounts": accounts, "data": based58.b58encode(data).decode(), "stackHeight": None}
    return doc


def test_pumpswap_create_pool_is_a_launch_with_its_seed_amounts(solana_fixtures: Path, parser: SolanaParser) -> None:
    """Account order and args from the pump_amm IDL (pool, global_config, creator, base_mint, quote_mint...)."""
    doc = load(solana_fixtures, "raydium_v4_initialize2_gettransaction_jsonparsed.json")
    mint = "6Ed5YTw9AoUhr5VcsjZdGHqpdruqgCaZcLv7WU6npump"
    creator = "39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg"
    pool = "6DrWmJAVcCLUTHzgdMoKroZCwdcS8sodLgctiBqvyys6"
    data = bytes.fromhex("e992d18ecf6840bc") + (0).to_bytes(2, "little")
    data += (206_900_000_000_000).to_bytes(8, "little") + (84_990_359_954).to_bytes(8, "little") + bytes(32)
    accounts = [pool, "ADyA8hdefvWN2dbGGWFotbzWxrAvLW83WG6QCVXvJKqw", creator, mint, NATIVE_MINT]
    events = parser.parse_transaction(
        _pool_instruction(doc, "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA", accounts, data)
    )
    [launch] = of_type(events, TokenLaunch)
    assert (launch.source, launch.pool, launch.creator) == ("PumpSwap", pool, creator)
    assert (launch.mint, launch.quote_mint) == (mint, NATIVE_MINT)
    assert (launch.base_amount, launch.quote_amount, launch.decimals) == (206_900_000_000_000, 84_990_359_954, 6)
    assert not parser.rejected


def test_raydium_cpmm_initialize_with_sol_as_token0_launches_token1(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    doc = load(solana_fixtures, "raydium_v4_initialize2_gettransaction_jsonparsed.json")
    mint, creator = "6Ed5YTw9AoUhr5VcsjZdGHqpdruqgCaZcLv7WU6npump", "39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg"
    pool = "6DrWmJAVcCLUTHzgdMoKroZCwdcS8sodLgctiBqvyys6"
    data = bytes.fromhex("afaf6d1f0d989bed") + (5_000_000_000).to_bytes(8, "little")
    data += (1_000_000_000_000).to_bytes(8, "little") + (0).to_bytes(8, "little")
    accounts = [creator, "D4FPEruKEHrG5TenZ2mpDGEfu1iUvTiqBxvpU8HLBvC2", "GpMZbSM2GgvTKHJirzeGfMFoaZ8UR2X7F4v8vHTvxFbL"]
    accounts += [pool, NATIVE_MINT, mint]
    events = parser.parse_transaction(
        _pool_instruction(doc, "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C", accounts, data)
    )
    [launch] = of_type(events, TokenLaunch)
    assert (launch.source, launch.pool, launch.creator, launch.mint) == ("Raydium CPMM", pool, creator, mint)
    assert (launch.base_amount, launch.quote_amount, launch.quote_mint) == (
        1_000_000_000_000,
        5_000_000_000,
        NATIVE_MINT,
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pumpfun_buy_gettransaction_jsonparsed.json", [PumpTrade]),  # pump.fun CPI'd from a router
        ("pumpfun_buy_legacy_2024_gettransaction_jsonparsed.json", [PumpTrade, PumpTrade]),
        ("pumpfun_create_blocksubscribe_base64.json", [TokenLaunch, PumpTrade]),
        ("jupiter_v6_route_via_raydium_gettransaction_jsonparsed.json", []),
    ],
)
def test_parse_logs_matches_the_pump_events_of_the_full_transaction(
    solana_fixtures: Path, parser: SolanaParser, name: str, expected: list[type[Event]]
) -> None:
    r = result_of(load(solana_fixtures, name))
    from_logs = parser.parse_logs(signature="sig", slot=7, logs=r["meta"]["logMessages"])
    assert [type(e) for e in from_logs] == expected
    from_tx = [e for e in parser.parse_transaction(r) if isinstance(e, PumpTrade | TokenLaunch)]
    strip = {"tx": "sig", "slot": 7, "block_time": None}
    assert from_logs == [msgspec.structs.replace(e, **strip) for e in from_tx]
    assert not parser.rejected


@given(lamports=st.integers(0, 2**64 - 1), decimals=st.integers(0, 255))
def test_base58_shortcuts_hold_for_every_amount(lamports: int, decimals: int) -> None:
    """The parser skips decoding instructions whose base58 data cannot be a transfer; never a real one."""
    import based58

    amount = lamports.to_bytes(8, "little")
    system = based58.b58encode(bytes([2, 0, 0, 0]) + amount).decode()
    assert len(system) == 16 and system.startswith("3Bxs")
    assert len(based58.b58encode(bytes([3]) + amount)) == 12
    assert len(based58.b58encode(bytes([12]) + amount + bytes([decimals]))) == 13


def _emitter_line_by_line(logs: list[str], at: int) -> str | None:
    """The walk-back as first written (every line tested in Python): the reference for `emitter`."""
    depth = 0
    for i in range(at - 1, -1, -1):
        line = logs[i]
        last = line[-1:]
        if last == "s":
            if line.endswith(" success") and line.count(" ") == 2 and line.startswith("Program "):
                depth += 1
        elif (
            last == "]"
            and line.startswith("Program ")
            and not line.startswith(("Program log: ", "Program data: ", "Program return: ", "Program consumption: "))
        ):
            parts = line.split(" ")
            if len(parts) == 4 and parts[2] == "invoke":
                if depth == 0:
                    return parts[1]
                depth -= 1
    return None


_PROGRAMS = st.sampled_from([PUMP_FUN_PROGRAM, "LanMV9sAd7wArD4vJFi2qDdfnVhFxYSUg6eADduJ3uj", "x", ""])
_LOG_LINES = st.one_of(
    st.builds("Program {} invoke [{}]".format, _PROGRAMS, st.integers(0, 5)),
    st.builds("Program {} success".format, _PROGRAMS),
    st.builds("Program log: Program {} invoke [2]".format, _PROGRAMS),
    st.builds("Program {} consumed 5 of 9 compute units".format, _PROGRAMS),
    st.sampled_from(["", "s", "]", " success", "Program  success", "Program log: a success", "Program a b ]"]),
    st.sampled_from(["Program data: vdt/007mYe", "Program return: x ]", "Program x invoke [1] ]", "Log truncated"]),
    st.text(alphabet="Program invokesuc[]1 :", max_size=30),
)


@given(logs=st.lists(_LOG_LINES, max_size=40), data=st.data())
def test_emitter_walk_back_agrees_with_testing_every_line(logs: list[str], data: st.DataObject) -> None:
    """`emitter` lets only lines ending like an invoke/success line reach Python; the answer is unchanged."""
    from quantbot.chains.solana.pumpfun import emitter

    at = data.draw(st.integers(0, len(logs)))
    assert emitter(logs, at) == _emitter_line_by_line(logs, at)


_NEAR_DATA_LINES = st.one_of(
    st.builds(
        "{}{}".format,
        st.sampled_from(["Program data: ", "Program data:", "Program data:!", "Program data"]),
        st.text(max_size=12),
    ),
    st.builds("Program data: {}".format, st.sampled_from(["vdt/007mYe", "G3KpTd7rY3", "vdt/007mY", ""])),
    st.text(alphabet="Program dat: !\x00\U0001f600", max_size=20),
    _LOG_LINES,
)


@given(logs=st.lists(_NEAR_DATA_LINES, max_size=30))
def test_program_data_takes_exactly_the_lines_that_start_with_the_prefix(logs: list[str]) -> None:
    """`program_data` finds `Program data: ` lines by comparing, not `startswith`; the lines it takes are the same."""
    from quantbot.chains.solana.pumpfun import program_data

    prefixes = frozenset({line[14:24] for line in logs})  # every line's would-be prefix: only the line test decides
    reference = [
        base64.b64decode(line[14:], validate=True) for line in logs if line.startswith("Program data: ") and _b64(line)
    ]
    clean = [line for line in logs if not line.startswith("Program data: ") or _b64(line)]
    assert list(program_data(clean, PUMP_FUN_PROGRAM, prefixes, check_emitter=False)) == reference


def _b64(line: str) -> bool:
    try:
        base64.b64decode(line[14:], validate=True)
    except ValueError:
        return False
    return True


@given(text=st.text(max_size=40) | st.text(alphabet=st.characters(max_codepoint=0x2070), max_size=40))
def test_clean_text_refuses_exactly_the_control_and_bidi_characters(text: str) -> None:
    """Printable strings skip the regex (every refused character is non-printable); the rest go through it."""
    import re

    from quantbot.chains.solana.layout import LayoutError, clean_text

    bad = re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]", text)
    try:
        assert clean_text(text) == text and not bad
    except LayoutError as exc:
        assert bad and exc.reason == "bad_string"


@pytest.mark.parametrize("amount", ["1 2", "+5", "1_0", "\u0663", "0x1", "-1", " 7"])
def test_token_amounts_that_are_not_ascii_digits_are_schema_rejections(solana_fixtures: Path, amount: str) -> None:
    """Only the length is checked while decoding; the digits are checked over all amounts at once."""
    doc = load(solana_fixtures, "raydium_v4_swap_direct_gettransaction_jsonparsed.json")
    result_of(doc)["meta"]["postTokenBalances"][-1]["uiTokenAmount"]["amount"] = amount
    for raw in (doc, msgspec.json.encode(doc)):
        parser = SolanaParser()
        assert parser.parse_transaction(raw) == []
        assert parser.rejected == {"schema": 1}


def test_a_side_of_several_mints_is_named_by_its_largest_quote_else_its_largest_holding() -> None:
    """Several mints on one side: the quote mint worth most (by its decimals) names it; with no quote
    mint, the mint with the most whole units does (decimals from the balance rows; unknown counts as 0)."""
    from quantbot.chains.solana.balances import Leg, _best

    decimals = {"MEME": 6, "OTHER": 2, USDC_MINT: 6, NATIVE_MINT: 9}.get
    # 2 SOL against 150 USDC: USDC is the larger quote, by value in whole units
    assert _best({NATIVE_MINT: 2 * 10**9, USDC_MINT: 150 * 10**6, "MEME": 10**12}, decimals) == Leg(
        USDC_MINT, 150 * 10**6, 6
    )
    # 300 MEME (6 decimals) against 500 OTHER (2 decimals); UNKNOWN has no decimals and counts its raw units
    assert _best({"MEME": 300 * 10**6, "OTHER": 500 * 10**2}, decimals) == Leg("OTHER", 50_000, 2)
    assert _best({"MEME": 300 * 10**6, "UNKNOWN": 400}, decimals) == Leg("UNKNOWN", 400, None)
