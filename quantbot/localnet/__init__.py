"""Local chain endpoints for tests and `quantbot demo`: real wire protocols, recorded data, no network.

Never imported by the daemon's live code.
"""
