"""Building real, signed Solana transactions against the local endpoint (LiteSVM executes them)."""

from __future__ import annotations

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.token import ID as TOKEN_PROGRAM_ID
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint
from solders.transaction import VersionedTransaction

from quantbot.clock import WallClock
from quantbot.localnet.jupiter import token_account_data, transfer_checked_ix
from quantbot.localnet.solana import LocalSolana


class RecordingClock(WallClock):
    """The wall clock, remembering every wait it was asked for (to prove Retry-After was honoured)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


def fund(node: LocalSolana, who: Pubkey, lamports: int = 10**10) -> None:
    node.ledger.svm.airdrop(who, lamports)


def make_mint(node: LocalSolana, *, authority: Pubkey, decimals: int = 6, supply: int = 10**15) -> Pubkey:
    mint = Keypair().pubkey()
    data = bytes(Mint(mint_authority=authority, supply=supply, decimals=decimals, is_initialized=True))
    node.ledger.set_account(str(mint), data=data, owner=str(TOKEN_PROGRAM_ID))
    return mint


def token_account(node: LocalSolana, *, owner: Pubkey, mint: Pubkey, amount: int) -> Pubkey:
    address = get_associated_token_address(owner, mint)
    node.ledger.set_account(str(address), data=token_account_data(mint, owner, amount), owner=str(TOKEN_PROGRAM_ID))
    return address


def sign(payer: Keypair, instructions: list[Instruction], blockhash: Hash) -> VersionedTransaction:
    return VersionedTransaction(MessageV0.try_compile(payer.pubkey(), instructions, [], blockhash), [payer])


def sol_transfer(payer: Keypair, to: Pubkey, lamports: int, blockhash: Hash) -> VersionedTransaction:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return sign(payer, [ix], blockhash)


def spl_transfer(
    owner: Keypair, *, source: Pubkey, dest: Pubkey, mint: Pubkey, amount: int, decimals: int, blockhash: Hash
) -> VersionedTransaction:
    ix = transfer_checked_ix(mint, decimals, source, dest, owner.pubkey(), amount)
    return sign(owner, [ix], blockhash)
