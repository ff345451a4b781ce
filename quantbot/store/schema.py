"""The schema, as versioned migrations shared by SQLite and PostgreSQL.

Both backends run the same statements: amounts are TEXT (base units can exceed 64 bits), times are
ISO-8601 UTC TEXT (sortable), payloads are JSON TEXT. A migration is applied once, in a transaction,
and recorded in `schema_version`; the store refuses to open a database newer than it knows.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "orders journal, fills, positions, state, counters, cursors, records",
        (
            """CREATE TABLE orders (
                order_id TEXT PRIMARY KEY,
                idempotency_key TEXT NOT NULL UNIQUE,
                strategy TEXT NOT NULL,
                chain TEXT NOT NULL,
                side TEXT NOT NULL,
                token TEXT NOT NULL,
                amount TEXT NOT NULL,
                notional_usd TEXT,
                executor TEXT NOT NULL,
                status TEXT NOT NULL,
                tx TEXT,
                reason TEXT NOT NULL DEFAULT '',
                detail TEXT NOT NULL DEFAULT '',
                intent TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX orders_status ON orders (status)",
            """CREATE TABLE fills (
                order_id TEXT PRIMARY KEY REFERENCES orders (order_id),
                tx TEXT NOT NULL,
                amount_in TEXT NOT NULL,
                amount_out TEXT NOT NULL,
                fee TEXT NOT NULL,
                price_native TEXT,
                filled_at TEXT NOT NULL
            )""",
            """CREATE TABLE positions (
                chain TEXT NOT NULL,
                token TEXT NOT NULL,
                quantity TEXT NOT NULL,
                cost_native TEXT NOT NULL,
                realised_pnl_native TEXT NOT NULL,
                opened_at TEXT,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (chain, token)
            )""",
            """CREATE TABLE state (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE daily_counters (
                day TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (day, key)
            )""",
            """CREATE TABLE cursors (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE records (
                kind TEXT NOT NULL,
                key TEXT NOT NULL,
                payload TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (kind, key)
            )""",
            "CREATE INDEX records_age ON records (kind, updated_at)",
        ),
    ),
    (
        2,
        "round trips, signals, token verdicts, wallet profiles, equity history; position strategy and leader",
        (
            "ALTER TABLE positions ADD COLUMN strategy TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE positions ADD COLUMN leader TEXT",
            """CREATE TABLE round_trips (
                id TEXT PRIMARY KEY,
                strategy TEXT NOT NULL,
                chain TEXT NOT NULL,
                token TEXT NOT NULL,
                opened_at TEXT,
                closed_at TEXT NOT NULL,
                cost_native TEXT NOT NULL,
                proceeds_native TEXT NOT NULL,
                pnl_native TEXT NOT NULL
            )""",
            "CREATE INDEX round_trips_strategy ON round_trips (strategy, closed_at)",
            """CREATE TABLE signals (
                id TEXT PRIMARY KEY,
                chain TEXT NOT NULL,
                kind TEXT NOT NULL,
                token TEXT NOT NULL,
                payload TEXT NOT NULL,
                at TEXT NOT NULL
            )""",
            "CREATE INDEX signals_at ON signals (at)",
            "CREATE INDEX signals_token ON signals (chain, token, at)",
            """CREATE TABLE token_verdicts (
                chain TEXT NOT NULL,
                token TEXT NOT NULL,
                passed INTEGER NOT NULL,
                payload TEXT NOT NULL,
                at TEXT NOT NULL,
                PRIMARY KEY (chain, token)
            )""",
            "CREATE INDEX token_verdicts_at ON token_verdicts (at)",
            """CREATE TABLE wallet_profiles (
                chain TEXT NOT NULL,
                wallet TEXT NOT NULL,
                payload TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (chain, wallet)
            )""",
            "CREATE INDEX wallet_profiles_age ON wallet_profiles (updated_at)",
            """CREATE TABLE equity_history (
                chain TEXT NOT NULL,
                kind TEXT NOT NULL,
                at TEXT NOT NULL,
                equity_native TEXT NOT NULL,
                equity_usd TEXT,
                PRIMARY KEY (chain, kind, at)
            )""",
            "CREATE INDEX equity_history_age ON equity_history (kind, at)",
        ),
    ),
    (
        3,
        "wallet trades: every tracked wallet's swaps, for trader analytics and candles",
        (
            """CREATE TABLE wallet_trades (
                chain TEXT NOT NULL,
                wallet TEXT NOT NULL,
                tx TEXT NOT NULL,
                token TEXT NOT NULL,
                side TEXT NOT NULL,
                quantity TEXT NOT NULL,
                decimals INTEGER,
                native TEXT,
                usd TEXT,
                at TEXT NOT NULL,
                PRIMARY KEY (chain, wallet, tx, token, side)
            )""",
            "CREATE INDEX wallet_trades_at ON wallet_trades (at)",
            "CREATE INDEX wallet_trades_token ON wallet_trades (chain, token, at)",
        ),
    ),
    (
        4,
        "position round-trip figures (cost and proceeds since it opened), so a restart keeps them",
        (
            "ALTER TABLE positions ADD COLUMN trip_cost TEXT",
            "ALTER TABLE positions ADD COLUMN trip_proceeds TEXT",
        ),
    ),
    (
        5,
        "position units received for nothing (outside quantbot), so a restart keeps them at no cost",
        ("ALTER TABLE positions ADD COLUMN free_quantity TEXT",),
    ),
)

LATEST = MIGRATIONS[-1][0]
