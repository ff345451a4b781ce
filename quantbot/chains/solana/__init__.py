"""Solana: RPC pool, watcher, transaction parser, account decoders."""
