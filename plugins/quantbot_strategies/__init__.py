"""First-party strategies: whale_follow, copy_trade, sniper. Registered through entry points like any plugin."""
