"""Token-2022 extensions decoded (and judged by the filter) from mints the real Token-2022 program builds (LiteSVM).

No recorded mainnet mint carries these extensions, so the bytes come from the program itself: each
extension's initialize instruction, then InitializeMint2 (and TokenMetadata's Initialize).
"""

from __future__ import annotations

import base64
import hashlib
import struct

from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction

from quantbot.api import FilterVerdict
from quantbot.chains.solana.accounts import decode_account, decode_mint
from quantbot.chains.solana.programs import TOKEN_2022_PROGRAM
from quantbot.enrich import mint_features
from quantbot.testing import check_filter, make_plugin, token_candidate
from quantbot_filters.token2022 import Token2022Filter

T22 = Pubkey.from_string(TOKEN_2022_PROGRAM)
METADATA_INIT = hashlib.sha256(b"spl_token_metadata_interface:initialize_account").digest()[:8]


def _opt(key: Pubkey | None) -> bytes:
    """COption<Pubkey> as Token-2022 instructions pack it: a 1-byte tag, then the key."""
    return b"\x01" + bytes(key) if key is not None else b"\x00"


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("<I", len(raw)) + raw


def _mint(
    svm: LiteSVM, extension_ixs: list[bytes], space: int, *, metadata: tuple[str, str, str] | None = None
) -> tuple[bytes, str, Keypair, Pubkey]:
    payer, mint, auth = Keypair(), Keypair(), Keypair()
    svm.airdrop(payer.pubkey(), 10**11)
    writable = [AccountMeta(mint.pubkey(), is_signer=False, is_writable=True)]
    ixs = [
        create_account(
            CreateAccountParams(
                from_pubkey=payer.pubkey(),
                to_pubkey=mint.pubkey(),
                lamports=svm.minimum_balance_for_rent_exemption(space + 512),
                space=space,
                owner=T22,
            )
        )
    ]
    ixs += [Instruction(T22, data.replace(b"AUTH" * 8, bytes(auth.pubkey())), writable) for data in extension_ixs]
    ixs.append(
        Instruction(T22, bytes([20, 6]) + bytes(auth.pubkey()) + _opt(auth.pubkey()), writable)
    )  # InitializeMint2
    if metadata is not None:
        name, symbol, uri = metadata
        ixs.append(
            Instruction(
                T22,
                METADATA_INIT + _text(name) + _text(symbol) + _text(uri),
                [
                    AccountMeta(mint.pubkey(), is_signer=False, is_writable=True),
                    AccountMeta(auth.pubkey(), is_signer=False, is_writable=False),
                    AccountMeta(mint.pubkey(), is_signer=False, is_writable=False),
                    AccountMeta(auth.pubkey(), is_signer=True, is_writable=False),
                ],
            )
        )
    signers = [payer, mint, auth] if metadata is not None else [payer, mint]
    tx = Transaction(signers, Message(ixs, payer.pubkey()), svm.latest_blockhash())
    result = svm.send_transaction(tx)
    assert not hasattr(result, "err"), result
    account = svm.get_account(mint.pubkey())
    assert account is not None
    return bytes(account.data), str(account.owner), auth, mint.pubkey()


AUTH = b"AUTH" * 8  # replaced by the authority's key when the instruction is built


def test_fee_delegate_hook_pointer_close_authority_and_metadata_extensions() -> None:
    delegate, hook = Keypair().pubkey(), Keypair().pubkey()
    exts = [
        bytes([26, 0]) + b"\x01" + AUTH + b"\x01" + AUTH + struct.pack("<HQ", 250, 5_000_000),  # TransferFeeConfig
        bytes([35]) + bytes(delegate),  # PermanentDelegate
        bytes([36, 0]) + AUTH + bytes(hook),  # TransferHook: authority, program
        bytes([39, 0]) + AUTH + bytes(32),  # MetadataPointer: authority, no address (all zeros)
        bytes([25]) + b"\x01" + AUTH,  # MintCloseAuthority
    ]
    svm = LiteSVM()
    space = 166 + (4 + 108) + (4 + 32) + (4 + 64) + (4 + 64) + (4 + 32)
    data, owner, auth, mint = _mint(svm, exts, space, metadata=("Real Coin", "REAL", "https://example.invalid/r.json"))
    decoded = decode_mint(data, owner=owner)
    a = str(auth.pubkey())
    assert decoded.extensions == (
        "transferFeeConfig",
        "permanentDelegate",
        "transferHook",
        "metadataPointer",
        "mintCloseAuthority",
        "tokenMetadata",
    )
    assert decoded.transfer_fee is not None and decoded.transfer_fee_bps == 250
    assert decoded.transfer_fee.newer.maximum_fee == 5_000_000 and decoded.transfer_fee.authority == a
    assert decoded.permanent_delegate == str(delegate)
    assert (decoded.transfer_hook_program, decoded.transfer_hook_authority) == (str(hook), a)
    assert decoded.metadata_pointer is None  # the all-zero address means "none"
    assert decoded.close_authority == a
    assert decoded.metadata is not None
    assert (decoded.metadata.name, decoded.metadata.symbol) == ("Real Coin", "REAL")
    assert decoded.metadata.uri == "https://example.invalid/r.json"
    assert (decoded.metadata.update_authority, decoded.metadata.mint) == (a, str(mint))
    assert (decoded.decimals, decoded.mint_authority, decoded.freeze_authority) == (6, a, a)


def test_non_transferable_and_frozen_default_state() -> None:
    exts = [bytes([32]), bytes([28, 0, 2])]  # InitializeNonTransferableMint; DefaultAccountState Initialize(Frozen)
    svm = LiteSVM()
    data, owner, _, _ = _mint(svm, exts, 166 + 4 + (4 + 1))
    decoded = decode_mint(data, owner=owner)
    assert decoded.extensions == ("nonTransferable", "defaultAccountState")
    assert decoded.non_transferable and decoded.default_account_state == "frozen"
    via_response = decode_account({"value": {"data": [base64.b64encode(data).decode(), "base64"], "owner": owner}})
    assert via_response == decoded


# --- what the token2022_extensions filter makes of these mints -------------------------------------


def _send(svm: LiteSVM, mint: Pubkey, auth: Keypair, data: bytes) -> bytes:
    """Run one authority-signed Token-2022 instruction on the mint; the mint's bytes after it."""
    payer = Keypair()
    svm.airdrop(payer.pubkey(), 10**10)
    accounts = [AccountMeta(mint, is_signer=False, is_writable=True), AccountMeta(auth.pubkey(), True, False)]
    tx = Transaction([payer, auth], Message([Instruction(T22, data, accounts)], payer.pubkey()), svm.latest_blockhash())
    result = svm.send_transaction(tx)
    assert not hasattr(result, "err"), result
    account = svm.get_account(mint)
    assert account is not None
    return bytes(account.data)


async def _verdict(data: bytes, owner: str, **config: object) -> FilterVerdict:
    mint = mint_features(decode_mint(data, owner=owner))
    return await check_filter(make_plugin(Token2022Filter, **config), token_candidate(mint=mint))


def _fee_config(bps: int) -> bytes:
    return bytes([26, 0]) + b"\x01" + AUTH + b"\x01" + AUTH + struct.pack("<HQ", bps, 2**64 - 1)


async def test_a_fee_lowered_from_a_later_epoch_is_judged_by_the_fee_still_in_force() -> None:
    svm = LiteSVM()
    _, owner, auth, mint = _mint(svm, [_fee_config(5_000)], 166 + 4 + 108)
    lowered = _send(svm, mint, auth, bytes([26, 5]) + struct.pack("<HQ", 0, 0))  # SetTransferFee: 0 in two epochs
    fee = decode_mint(lowered, owner=owner).transfer_fee
    assert fee is not None and (fee.older.basis_points, fee.newer.basis_points) == (5_000, 0)
    v = await _verdict(lowered, owner, max_transfer_fee_bps=100)
    assert not v.passed and v.reason == "transfer fee 5000 bps above 100 bps"


async def test_a_fee_raised_from_a_later_epoch_is_refused_already() -> None:
    svm = LiteSVM()
    _, owner, auth, mint = _mint(svm, [_fee_config(0)], 166 + 4 + 108)
    raised = _send(svm, mint, auth, bytes([26, 5]) + struct.pack("<HQ", 300, 2**64 - 1))
    v = await _verdict(raised, owner, max_transfer_fee_bps=100)
    assert not v.passed and v.reason == "transfer fee 300 bps above 100 bps"


async def test_a_transfer_hook_authority_without_a_program_is_refused_unless_hooks_are_allowed() -> None:
    svm = LiteSVM()
    data, owner, auth, _ = _mint(svm, [bytes([36, 0]) + AUTH + bytes(32)], 166 + 4 + 64)
    v = await _verdict(data, owner)
    assert not v.passed and v.reason == f"TransferHook authority {auth.pubkey()} can set a hook"
    assert (await _verdict(data, owner, refuse_transfer_hook=False)).passed


async def test_a_pausable_mint_is_refused_by_default_paused_or_not() -> None:
    svm = LiteSVM()
    data, owner, auth, mint = _mint(svm, [bytes([44, 0]) + AUTH], 166 + 4 + 33)  # PausableExtension Initialize
    assert decode_mint(data, owner=owner).extensions == ("pausableConfig",)
    v = await _verdict(data, owner)
    assert not v.passed and v.reason == f"Pausable by {auth.pubkey()}"
    assert (await _verdict(data, owner, refuse_pausable=False)).passed
    paused = _send(svm, mint, auth, bytes([44, 1]))  # PausableExtension Pause
    v = await _verdict(paused, owner)
    assert not v.passed and v.reason == "Pausable mint is paused"
