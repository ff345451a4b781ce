"""Metaplex token metadata accounts (legacy SPL tokens; Token-2022 coins carry metadata on the mint)."""

from __future__ import annotations

from quantbot.chains.solana.layout import DecodeError, Frozen, LayoutError, Reader
from quantbot.chains.solana.programs import METAPLEX_METADATA_PROGRAM


class MetaplexMetadata(Frozen, frozen=True, kw_only=True):
    update_authority: str
    mint: str
    name: str
    symbol: str
    uri: str
    seller_fee_basis_points: int
    creators: tuple[str, ...]
    primary_sale_happened: bool
    is_mutable: bool


_MAX_CREATORS = 5


def decode_metaplex_metadata(data: bytes, *, owner: str | None = None) -> MetaplexMetadata:
    """Metaplex `MetadataV1` account (key 4); strings have their NUL padding stripped."""
    if owner is not None and owner != METAPLEX_METADATA_PROGRAM:
        raise DecodeError("wrong_owner", f"metadata owned by {owner}")
    if not data or data[0] != 4:
        raise DecodeError("wrong_discriminator", f"key {data[:1].hex()} (want 04 MetadataV1)")
    r = Reader(data, 1)
    try:
        update_authority, mint = r.pubkey(), r.pubkey()
        name = r.string(max_len=64, strip_nul=True)
        symbol = r.string(max_len=32, strip_nul=True)
        uri = r.string(max_len=256, strip_nul=True)
        fee = r.u16()
        creators: list[str] = []
        if r.flag():
            count = r.u32()
            if count > _MAX_CREATORS:
                raise DecodeError("bad_length", f"{count} creators")
            for _ in range(count):
                creators.append(r.pubkey())
                r.raw(2)  # verified, share
        primary, mutable = r.flag(), r.flag()
    except LayoutError as exc:
        raise DecodeError(exc.reason, str(exc)) from None
    return MetaplexMetadata(
        update_authority=update_authority,
        mint=mint,
        name=name,
        symbol=symbol,
        uri=uri,
        seller_fee_basis_points=fee,
        creators=tuple(creators),
        primary_sale_happened=primary,
        is_mutable=mutable,
    )
