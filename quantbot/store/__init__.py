"""Persistence: the Store interface and its SQLite and PostgreSQL backends."""

from quantbot.store.base import FINAL, DuplicateOrder, FillRow, OrderRow, PositionRow, Store, StoreError

__all__ = ["FINAL", "DuplicateOrder", "FillRow", "OrderRow", "PositionRow", "Store", "StoreError"]
