"""`token2022_extensions` filter: refuse Token-2022 mints with extensions that let the issuer take or trap tokens."""

from __future__ import annotations

from typing import Annotated

import msgspec

from quantbot.api import Filter, FilterVerdict, PluginConfig, TokenCandidate

from ._common import OnMissing, missing_verdict

TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"  # noqa: S105  (a program id, not a password)


class Token2022Config(PluginConfig, frozen=True, kw_only=True):
    refuse_permanent_delegate: Annotated[bool, msgspec.Meta(description="a delegate that can move anyone's tokens")] = (
        True
    )
    refuse_transfer_hook: Annotated[
        bool, msgspec.Meta(description="a program that can veto transfers, or an authority that can set one")
    ] = True
    refuse_non_transferable: Annotated[bool, msgspec.Meta(description="tokens that cannot be sold")] = True
    refuse_frozen_default_state: Annotated[
        bool, msgspec.Meta(description="new token accounts start frozen (issuer decides who may sell)")
    ] = True
    refuse_pausable: Annotated[
        bool, msgspec.Meta(description="an authority that can pause every transfer (or transfers already paused)")
    ] = True
    max_transfer_fee_bps: Annotated[
        int, msgspec.Meta(ge=0, le=10_000, description="highest transfer fee accepted, basis points")
    ] = 0
    on_missing: OnMissing = "fail"


class Token2022Filter(Filter):
    Config = Token2022Config
    config: Token2022Config

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        mint, c = candidate.mint, self.config
        if mint is None:
            return missing_verdict(self.id, candidate, "mint", c.on_missing, "mint account")
        if mint.program != TOKEN_2022:
            return self.verdict(True, "SPL Token mint (no extensions)")
        found = ",".join(mint.extensions)
        if c.refuse_permanent_delegate and mint.permanent_delegate is not None:
            return self.verdict(False, f"PermanentDelegate set ({mint.permanent_delegate})", found)
        if c.refuse_transfer_hook and mint.transfer_hook_program is not None:
            return self.verdict(False, f"TransferHook program {mint.transfer_hook_program}", found)
        if c.refuse_transfer_hook and mint.transfer_hook_authority is not None:
            return self.verdict(False, f"TransferHook authority {mint.transfer_hook_authority} can set a hook", found)
        if c.refuse_pausable and mint.paused:
            return self.verdict(False, "Pausable mint is paused", found)
        if c.refuse_pausable and mint.pause_authority is not None:
            return self.verdict(False, f"Pausable by {mint.pause_authority}", found)
        if c.refuse_non_transferable and mint.non_transferable:
            return self.verdict(False, "NonTransferable mint", found)
        if c.refuse_frozen_default_state and mint.default_account_state == "frozen":
            return self.verdict(False, "DefaultAccountState is frozen", found)
        if mint.transfer_fee_bps > c.max_transfer_fee_bps:
            return self.verdict(
                False,
                f"transfer fee {mint.transfer_fee_bps} bps above {c.max_transfer_fee_bps} bps",
                mint.transfer_fee_bps,
            )
        return self.verdict(True, f"no refused extension ({found or 'none'})", found)
