"""Local chain endpoints for tests and development: real wire formats, recorded data."""
