"""Which DEX a swap went through, from the DEX's own swap event (package address + module::Struct).

Addresses and event names are from the field notes (aptos.md §4.1, aptos-launchpads.md §1), taken from
the aptos-labs explorer's parsers and confirmed on recorded mainnet transactions where marked there.
Only the package address identifies a venue: a module of the same name published elsewhere is not it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from quantbot.chains.aptos.addresses import normalize_address

# venue -> (package address, swap event structs emitted by that package)
KNOWN_VENUES: tuple[tuple[str, str, frozenset[str]], ...] = (
    (
        "pancakeswap",
        "0xc7efb4076dbe143cbcd98cfaaa929ecfc8f299203dfff63b95ccb6bfe19850fa",
        frozenset({"swap::SwapEvent"}),
    ),
    (
        "liquidswap",
        "0x190d44266241744264b964a37b8f09863167a12d3e70cda39376cfb4e3561e12",
        frozenset({"liquidity_pool::SwapEvent"}),
    ),
    (
        "liquidswap",
        "0x0163df34fccbf003ce219d3f1d9e70d140b60622cb9dd47599c25fb2f797ba6e",
        frozenset({"liquidity_pool::SwapEvent"}),
    ),
    (
        "thala",
        "0x48271d39d0b05bd6efca2278f22277d6fcc375504f9839fd73f74ace240861af",
        frozenset({"weighted_pool::SwapEvent", "stable_pool::SwapEvent"}),
    ),
    (
        "thala",
        "0x007730cd28ee1cdc9e999336cbc430f99e7c44397c0aa77516f6f23a78559bb5",
        frozenset({"pool::SwapEvent"}),
    ),
    (
        "thala",
        "0x075b4890de3e312d9425408c43d9a9752b64ab3562a30e89a55bdc568c645920",
        frozenset({"pool::SwapEvent"}),
    ),
    (
        "cellana",
        "0x4bf51972879e3b95c4781a5cdcb9e1ee24ef483e7d22f2d903626f126df62bd1",
        frozenset({"liquidity_pool::SwapEvent"}),
    ),
    (
        "hyperion",
        "0x8b4a2c4bb53857c718a04c020b98f8c2e1f99a68b0f57389a8bf5434cd22e05c",
        frozenset({"pool_v3::SwapEventV3", "pool_v3::SwapEventV2", "pool_v3::SwapEvent"}),
    ),
    (
        "tapp",
        "0x487e905f899ccb6d46fdaec56ba1e0c4cf119862a16c409904b8c78fab1f5e8a",
        frozenset({"router::Swapped"}),
    ),
    (
        "earnium",
        "0x12169b6e1bf75ab1a2b2d987d20f8dd4c191e5dbc2066cb7e9af40b1fa7fb659",
        frozenset({"liquidity_pool::SwapEvent"}),
    ),
    (
        "obric",
        "0xc7ea756470f72ae761b7986e4ed6fd409aad183b1b2d3d2f674d979852f45c4b",
        frozenset({"piece_swap::SwapEvent"}),
    ),
    (
        "thetis",
        "0x0c727553dd5019c4887581f0a89dca9c8ea400116d70e9da7164897812c6646e",
        frozenset({"pool_event::Swap"}),
    ),
    (
        "panora",
        "0x1c3206329806286fd2223647c9f9b130e66baeb6d7224a18c1f642ffe48f3b4c",
        frozenset({"panora_swap::PanoraSwapSummaryEvent"}),
    ),
    (
        "emojicoin",
        "0xface729284ae5729100b3a9ad7f7cc025ea09739cd6e7252aff0beb53619cafe",
        frozenset({"emojicoin_dot_fun::Swap"}),
    ),
)

AGGREGATORS = frozenset({"panora"})
"""Venues that route through others: when present, they name the swap on their own."""


class VenueBook:
    """Maps a (package address, module::Struct) event type to a venue name in O(1)."""

    def __init__(self, extra: Mapping[str, Iterable[tuple[str, str]]] | None = None) -> None:
        """`extra`: more venues, name -> [(package address, "module::Struct"), ...] (a localnet deploy)."""
        self._by_event: dict[tuple[str, str], str] = {}
        for venue, package, structs in KNOWN_VENUES:
            for struct in structs:
                self._by_event[(normalize_address(package), struct)] = venue
        for venue, pairs in (extra or {}).items():
            for package, struct in pairs:
                self._by_event[(normalize_address(package), struct)] = venue

    def venue(self, package: str, struct: str) -> str | None:
        return self._by_event.get((package, struct))

    @staticmethod
    def name(venues: list[str]) -> str:
        """One name for a transaction: the aggregator if one reported, else the DEXes in event order."""
        if not venues:
            return "unknown"
        for venue in venues:
            if venue in AGGREGATORS:
                return venue
        ordered = list(dict.fromkeys(venues))
        return "+".join(ordered)
