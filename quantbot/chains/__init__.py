"""Chain adapters: watchers, parsers and decoders. They publish events; they never import the order path."""
