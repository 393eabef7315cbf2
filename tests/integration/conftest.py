"""The integration tests' world lives in tests/world.py (shared with tests/reliability); its names are here
too so that tests can import them from where they are used. The `kit` fixture (adapters built as wiring.py
builds them) comes from tests/integration/kit.py, the `start_daemon` fixture (a Daemon on the test's loop)
from tests/integration/daemon_kit.py."""

from tests.integration.daemon_kit import start_daemon
from tests.integration.kit import kit
from tests.world import FAST_BACKOFF, FAST_RETRY, SECRET_NAME, LogCapture, World, days

__all__ = ["FAST_BACKOFF", "FAST_RETRY", "SECRET_NAME", "LogCapture", "World", "days", "kit", "start_daemon"]
