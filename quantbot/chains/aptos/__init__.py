"""Aptos: REST client use, watcher, transaction parser."""
