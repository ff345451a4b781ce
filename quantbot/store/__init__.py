"""Persistence: the Store interface and its SQLite and PostgreSQL backends."""

from quantbot.store.base import FINAL, DuplicateOrder, FillRow, OrderRow, PositionRow, Store, StoreError
from quantbot.store.history import EquityRow, RoundTrip, SignalRow, TripStats

__all__ = [
    "FINAL",
    "DuplicateOrder",
    "EquityRow",
    "FillRow",
    "OrderRow",
    "PositionRow",
    "RoundTrip",
    "SignalRow",
    "Store",
    "StoreError",
    "TripStats",
]
