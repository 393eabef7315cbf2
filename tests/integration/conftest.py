"""The integration tests' world lives in tests/world.py (shared with tests/reliability); its names are here
too so that tests can import them from where they are used. The `kit` fixture (adapters built as wiring.py
builds them) comes from tests/integration/kit.py."""

from tests.integration.kit import kit
from tests.world import FAST_BACKOFF, FAST_RETRY, SECRET_NAME, LogCapture, World, days

__all__ = ["FAST_BACKOFF", "FAST_RETRY", "SECRET_NAME", "LogCapture", "World", "days", "kit"]
