"""quantbot: a headless trading daemon for Solana and Aptos."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("quantbot")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
