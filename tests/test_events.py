"""Events: one registry of topics, immutability, lossless JSON round trips."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot import events
from quantbot.events import EVENT_TYPES, TOPICS, OrderApproved, OrderIntent, Swap, decode, encode
from quantbot.testing import order_intent, swap, token_launch


def test_every_event_type_has_a_unique_registered_topic() -> None:
    assert len(TOPICS) == len(EVENT_TYPES)
    assert all(cls.TOPIC for cls in EVENT_TYPES)
    for name in dir(events):
        obj = getattr(events, name)
        if isinstance(obj, type) and issubclass(obj, events.Event) and obj.TOPIC:
            assert obj in EVENT_TYPES, f"{name} is not in the registry"


def test_topics_named_by_the_design_are_registered() -> None:
    expected = {
        "chain.{chain}.swap",
        "chain.{chain}.transfer",
        "token.launch",
        "token.accepted",
        "token.rejected",
        "whale.signal",
        "price.update",
        "order.intent",
        "order.approved",
        "order.rejected",
        "order.submitted",
        "order.filled",
        "order.failed",
        "order.expired",
        "position.update",
        "plugin.disabled",
    }
    assert expected <= set(TOPICS)


def test_chain_events_carry_their_chain_in_the_topic() -> None:
    assert swap(chain="aptos").topic == "chain.aptos.swap"
    assert swap().topic == "chain.solana.swap"
    assert token_launch(chain="aptos").topic == "token.launch"


@given(chains=st.lists(st.sampled_from(["solana", "aptos"]), min_size=1, max_size=6))
def test_a_chain_topic_is_the_template_with_the_chain_however_often_asked(chains: list[str]) -> None:
    for chain in chains:
        s = swap(chain=chain)
        assert s.topic == f"chain.{chain}.swap" == s.topic
        assert token_launch(chain=chain).topic == "token.launch"


def test_events_are_immutable() -> None:
    s = swap()
    with pytest.raises(AttributeError):
        s.amount_in = 5  # type: ignore[misc]


def test_nested_event_round_trips() -> None:
    approved = OrderApproved(order_id="o1", intent=order_intent(notional_usd=Decimal("12.3400")))
    again = decode(encode(approved))
    assert again == approved
    assert isinstance(again, OrderApproved) and again.intent.notional_usd == Decimal("12.3400")


def test_decode_rejects_unknown_type() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode(b'{"type": "Nope"}')


big_ints = st.integers(min_value=0, max_value=2**128)
text = st.text(max_size=50)
# hypothesis takes naive bounds and attaches the timezone itself
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=12, min_value=-(10**12), max_value=10**12)


@given(
    wallet=text,
    mint_in=text,
    mint_out=text,
    amount_in=big_ints,
    amount_out=big_ints,
    slot=big_ints,
    block_time=st.none() | times,
    fee=big_ints,
    ts=times,
    id=st.integers(0, 2**63 - 1),
)
def test_swap_json_round_trip_is_lossless(**fields: object) -> None:
    s = Swap(chain="solana", venue="jupiter", tx="sig", **fields)  # type: ignore[arg-type]
    assert decode(encode(s)) == s


@given(amount=big_ints, usd=st.none() | decimals, reason=text, side=st.sampled_from(["buy", "sell"]))
def test_order_intent_json_round_trip_is_lossless(amount: int, usd: Decimal | None, reason: str, side: str) -> None:
    i = OrderIntent(
        chain="aptos",
        intent_id="i",
        strategy="s",
        side=side,
        token="0x1::aptos_coin::AptosCoin",  # type: ignore[arg-type]
        amount=amount,
        notional_usd=usd,
        reason=reason,
    )
    assert decode(encode(i)) == i
