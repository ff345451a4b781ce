"""The local Solana endpoint speaks mainnet's wire format to the real solana-py clients."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx2
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solana.rpc.websocket_api import SolanaWsClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import AccountNotification, LogsNotification, SlotNotification
from solders.signature import Signature

from quantbot.localnet.solana import LocalSolana
from tests.solana_chain import fund, make_mint, sol_transfer, spl_transfer, token_account

CREATE_V2 = "pumpfun_create_v2_gettransaction_jsonparsed.json"
PUMPSWAP_JSON = "pumpswap_amm_buy_gettransaction_json.json"


async def test_recorded_transaction_is_served_verbatim_and_v0_needs_max_supported_version(
    local_solana: LocalSolana, solana_fixtures: Path
) -> None:
    recorded = json.loads((solana_fixtures / CREATE_V2).read_text())["result"]
    sig = local_solana.load_transaction(solana_fixtures / CREATE_V2)
    async with AsyncClient(local_solana.http_url) as client:
        resp = await client.get_transaction(
            Signature.from_string(sig), encoding="jsonParsed", max_supported_transaction_version=0
        )
        assert resp.value is not None
        served = json.loads(resp.value.to_json())
        assert served["meta"]["logMessages"] == recorded["meta"]["logMessages"]
        assert served["meta"]["postTokenBalances"] == recorded["meta"]["postTokenBalances"]
        assert served["slot"] == recorded["slot"] == 435946190
        with pytest.raises(RPCException, match="maxSupportedTransactionVersion"):
            await client.get_transaction(Signature.from_string(sig), encoding="jsonParsed")
        missing = await client.get_transaction(Signature.default(), max_supported_transaction_version=0)
        assert missing.value is None
        with pytest.raises(RPCException, match="does not support commitment below `confirmed`"):
            await client.get_transaction(
                Signature.from_string(sig), commitment=Processed, max_supported_transaction_version=0
            )


async def test_signatures_for_address_are_newest_first_and_page_with_before_and_until(
    local_solana: LocalSolana,
) -> None:
    payer, dest = Keypair(), Keypair().pubkey()
    fund(local_solana, payer.pubkey())
    async with AsyncClient(local_solana.http_url) as client:
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        sent = [
            (await client.send_raw_transaction(bytes(sol_transfer(payer, dest, 10**7 + i, blockhash)))).value
            for i in range(5)
        ]
        newest_first = list(reversed(sent))
        page = (await client.get_signatures_for_address(dest, limit=2)).value
        assert [s.signature for s in page] == newest_first[:2]
        rest = (await client.get_signatures_for_address(dest, before=page[-1].signature)).value
        assert [s.signature for s in rest] == newest_first[2:]
        since = (await client.get_signatures_for_address(dest, until=sent[1])).value
        assert [s.signature for s in since] == newest_first[:3]
        assert [s.slot for s in page] == sorted((s.slot for s in page), reverse=True)
        with pytest.raises(RPCException, match="Invalid limit"):
            await client.get_signatures_for_address(dest, limit=1001)
        with pytest.raises(RPCException, match="does not support commitment below `confirmed`"):
            await client.get_signatures_for_address(dest, commitment=Processed)


async def test_signed_spl_transfer_executes_in_litesvm_and_get_transaction_shows_real_balances(
    local_solana: LocalSolana,
) -> None:
    sender, receiver = Keypair(), Keypair()
    fund(local_solana, sender.pubkey())
    mint = make_mint(local_solana, authority=sender.pubkey(), decimals=6)
    source = token_account(local_solana, owner=sender.pubkey(), mint=mint, amount=5_000_000)
    dest = token_account(local_solana, owner=receiver.pubkey(), mint=mint, amount=0)
    async with AsyncClient(local_solana.http_url, commitment=Confirmed) as client:
        lamports_before = (await client.get_balance(sender.pubkey())).value
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        tx = spl_transfer(
            sender, source=source, dest=dest, mint=mint, amount=1_250_000, decimals=6, blockhash=blockhash
        )
        sig = (await client.send_raw_transaction(bytes(tx))).value
        resp = await client.get_transaction(sig, encoding="json", max_supported_transaction_version=0)
        assert resp.value is not None
        result = json.loads(resp.value.to_json())
        meta = result["meta"]
        assert meta["err"] is None
        assert meta["fee"] == 5000
        keys = result["transaction"]["message"]["accountKeys"]
        payer_index = keys.index(str(sender.pubkey()))
        assert meta["preBalances"][payer_index] - meta["postBalances"][payer_index] == 5000
        assert (await client.get_balance(sender.pubkey())).value == lamports_before - 5000
        pre = {b["owner"]: int(b["uiTokenAmount"]["amount"]) for b in meta["preTokenBalances"]}
        post = {b["owner"]: int(b["uiTokenAmount"]["amount"]) for b in meta["postTokenBalances"]}
        assert pre == {str(sender.pubkey()): 5_000_000, str(receiver.pubkey()): 0}
        assert post == {str(sender.pubkey()): 3_750_000, str(receiver.pubkey()): 1_250_000}
        assert any("Tokenkeg" in line for line in meta["logMessages"])
        parsed = await client.get_transaction(sig, encoding="jsonParsed", max_supported_transaction_version=0)
        assert parsed.value is not None
        [ix] = json.loads(parsed.value.to_json())["transaction"]["message"]["instructions"]
        assert (ix["program"], ix["parsed"]["type"]) == ("spl-token", "transferChecked")
        assert ix["parsed"]["info"]["tokenAmount"]["uiAmountString"] == "1.25"
        assert ix["parsed"]["info"]["authority"] == str(sender.pubkey())
        status = (await client.get_signature_statuses([sig])).value[0]
        assert status is not None and status.err is None
        largest = (await client.get_token_largest_accounts(mint)).value
        assert [(str(a.address), a.amount.amount) for a in largest] == [
            (str(source), "3750000"),
            (str(dest), "1250000"),
        ]


async def test_bad_signature_and_failing_preflight_are_refused_with_mainnet_error_codes(
    local_solana: LocalSolana,
) -> None:
    payer = Keypair()
    fund(local_solana, payer.pubkey(), 10**9)
    async with AsyncClient(local_solana.http_url) as client:
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        good = bytearray(bytes(sol_transfer(payer, Keypair().pubkey(), 10**7, blockhash)))
        good[10] ^= 0xFF  # corrupt the signature
        with pytest.raises(RPCException, match="SignatureVerificationFailure"):
            await client.send_raw_transaction(bytes(good))
        too_much = sol_transfer(payer, Keypair().pubkey(), 5 * 10**9, blockhash)
        with pytest.raises(RPCException, match="simulation failed"):
            await client.send_raw_transaction(bytes(too_much))
        # Without preflight it lands, fails on chain, and the fee is still charged.
        sig = (await client.send_raw_transaction(bytes(too_much), opts=TxOpts(skip_preflight=True))).value
        landed = await client.get_transaction(sig, max_supported_transaction_version=0)
        assert landed.value is not None
        meta = json.loads(landed.value.to_json())["meta"]
        assert meta["err"] == {"InstructionError": [0, {"Custom": 1}]}
        assert meta["preBalances"][0] - meta["postBalances"][0] == 5000


async def test_account_info_and_multiple_accounts_serve_recorded_bytes(
    local_solana: LocalSolana, solana_fixtures: Path
) -> None:
    recorded = json.loads((solana_fixtures / "pumpfun_bonding_curve_getaccountinfo.json").read_text())
    curve = str(Keypair().pubkey())
    local_solana.set_account_response(curve, recorded)
    async with AsyncClient(local_solana.http_url) as client:
        info = (await client.get_account_info(Pubkey.from_string(curve))).value
        assert info is not None
        assert bytes(info.data) == base64.b64decode(recorded["result"]["value"]["data"][0])
        assert str(info.owner) == recorded["result"]["value"]["owner"]
        many = (await client.get_multiple_accounts([Pubkey.from_string(curve), Keypair().pubkey()])).value
        assert many[0] is not None and bytes(many[0].data) == bytes(info.data)
        assert many[1] is None


async def test_pubsub_delivers_logs_account_and_slot_notifications_for_a_landed_transaction(
    local_solana: LocalSolana,
) -> None:
    payer, dest = Keypair(), Keypair().pubkey()
    fund(local_solana, payer.pubkey())
    async with AsyncClient(local_solana.http_url) as client, SolanaWsClient(local_solana.ws_url) as ws:
        logs = await ws.logs_subscribe(filter_=RpcTransactionLogsFilterMentions(dest), commitment=Confirmed)
        account = await ws.account_subscribe(pubkey=dest, commitment=Confirmed, encoding="base64")
        slots = await ws.slot_subscribe()
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        sig = (await client.send_raw_transaction(bytes(sol_transfer(payer, dest, 10**7, blockhash)))).value
        got = [await ws.recv() for _ in range(3)]
        by_type = {type(n): n for n in got}
        note = by_type[LogsNotification]
        assert isinstance(note, LogsNotification)
        assert note.subscription == logs.subscription_id
        assert note.result.value.signature == sig and note.result.value.err is None
        acct = by_type[AccountNotification]
        assert isinstance(acct, AccountNotification)
        assert acct.subscription == account.subscription_id and acct.result.value.lamports == 10**7
        slot = by_type[SlotNotification]
        assert isinstance(slot, SlotNotification) and slot.result.slot == note.result.context.slot
        await ws.unsubscribe(logs)
        await ws.unsubscribe(slots)
        assert local_solana.subscriptions("logs") == []


async def test_rate_limit_fault_answers_429_with_retry_after(local_solana: LocalSolana) -> None:
    local_solana.faults.rate_limited = 1
    local_solana.faults.retry_after = "7"
    async with AsyncClient(local_solana.http_url) as client:
        with pytest.raises(SolanaRpcException) as info:
            await client.get_slot()
        cause = info.value.__cause__
        assert isinstance(cause, httpx2.HTTPStatusError)
        assert cause.response.status_code == 429
        assert cause.response.headers["Retry-After"] == "7"
        assert (await client.get_slot()).value == local_solana.slot


async def test_v0_recorded_json_transaction_lists_lookup_table_accounts_for_mentions(
    local_solana: LocalSolana, solana_fixtures: Path
) -> None:
    recorded = json.loads(
        (solana_fixtures / "aggregator_router_pumpswap_buy_with_alt_gettransaction_json.json").read_text()
    )
    loaded = recorded["result"]["meta"]["loadedAddresses"]["writable"][0]
    sig = local_solana.add_transaction(recorded)
    async with AsyncClient(local_solana.http_url) as client:
        found = (await client.get_signatures_for_address(Pubkey.from_string(loaded))).value
        assert [str(s.signature) for s in found] == [sig]


async def test_every_recorded_transaction_fixture_is_served_in_its_recorded_encoding(
    local_solana: LocalSolana, solana_fixtures: Path
) -> None:
    sigs = local_solana.load_transactions(solana_fixtures)
    assert len(sigs) >= 8 and len(set(sigs)) == len(sigs)
    async with AsyncClient(local_solana.http_url) as client:
        for sig in sigs:
            resp = await client.get_transaction(
                Signature.from_string(sig), encoding="jsonParsed", max_supported_transaction_version=0
            )
            assert resp.value is not None and str(resp.value.transaction.transaction.signatures[0]) == sig


async def test_logs_subscribe_all_sees_every_landed_transaction(local_solana: LocalSolana) -> None:
    payer = Keypair()
    fund(local_solana, payer.pubkey())
    async with AsyncClient(local_solana.http_url) as client, SolanaWsClient(local_solana.ws_url) as ws:
        await ws.logs_subscribe()
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        sig = (
            await client.send_raw_transaction(bytes(sol_transfer(payer, Keypair().pubkey(), 10**7, blockhash)))
        ).value
        note = await ws.recv()
        assert isinstance(note, LogsNotification) and note.result.value.signature == sig
