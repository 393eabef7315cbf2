"""Scrubber benchmark: microseconds per `redact.scrub()` call and per rendered log line.

    .venv/bin/python tests/bench/scrub.py [--values 1,50,1000] [--tokens 20] [--repeat 2000] [--short]

`scrub()` runs on every value of every log line and once more on the rendered line, so its cost is
paid on the hot path. For each count of registered secrets (plus `--tokens` JWT-shaped access tokens)
it prints the median time of: a short JSON log line, a `rotation.failed` line with an error message,
a 4 KB line, a line holding percent- and \\u-escapes, a line holding a registered secret, and one
`log.info()` through the whole structlog pipeline (two scrubs: the values, then the rendered line).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import secrets
import statistics
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from service import logs, redact  # noqa: E402  # after the sys.path line, so the checkout is measured

ALPHABET = string.ascii_letters + string.digits + "_-.~"


def entra_secret() -> str:
    return (
        "".join(secrets.choice(ALPHABET) for _ in range(3))
        + "8Q~"
        + "".join(secrets.choice(ALPHABET) for _ in range(34))
    )


def jwt_like() -> str:
    def part(n: int) -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(n)).rstrip(b"=").decode()

    return "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "eyJ" + part(600) + "." + part(256)


LINES = {
    "short event line": json.dumps(
        {
            "event": "sink.updated",
            "target": "dime-exchange",
            "sink": "keyvault:https://my-vault.vault.azure.net/x",
            "key_id": "5d0b1c3e-4a6f-4e0b-9a43-6c1f1d2e3f40",
            "level": "info",
            "timestamp": "2026-01-02T03:04:05.123456Z",
        }
    ),
    "rotation.failed with an error": json.dumps(
        {
            "event": "rotation.failed",
            "target": "dime-exchange",
            "reason": "sink_failed",
            "level": "error",
            "error": "push https://example.invalid/exchange-settings: the endpoint answered 400 "
            "(HTTP 400, bad_request)",
            "hint": "a sink did not take the new secret; the next pass retries it",
            "timestamp": "2026-01-02T03:04:05.123456Z",
        }
    ),
    "4 KB line": json.dumps({"event": "x", "detail": "lorem ipsum dolor sit amet " * 150}),
    "line with %- and \\u-escapes": json.dumps({"event": "x", "url": "https://h/p?a=%7Eb%2Fc&d=e", "m": "a\\u007eb"}),
    "rendered line with a quoted word": json.dumps(
        {
            "event": "rotation.failed",
            "target": "dime-exchange",
            "reason": "not_found",
            "level": "error",
            "error": "graph app 1111 in tenant 0000: Resource 'x' does not exist or one of its \"queried\" references",
            "timestamp": "2026-01-02T03:04:05.123456Z",
        }
    ),
}


def measure(call: Callable[[], object], repeat: int) -> float:
    """Median microseconds of `call()` over `repeat` runs (in batches of 20 to keep timer noise small)."""
    samples = []
    for _ in range(max(1, repeat // 20)):
        start = time.perf_counter()
        for _ in range(20):
            call()
        samples.append((time.perf_counter() - start) / 20 * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--values", default="1,50,1000", help="registered secret counts to measure, comma-separated")
    parser.add_argument("--tokens", type=int, default=20, help="JWT-shaped tokens registered besides the secrets")
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--short", action="store_true", help="also register a 6-character secret at the end")
    args = parser.parse_args()

    for token in (jwt_like() for _ in range(args.tokens)):
        redact.register(token)
    registered: list[str] = []
    stream = io.StringIO()
    logs.configure(stream, json=True)
    log = logs.get_logger(target="dime-exchange")
    print(f"{'secrets':>8} {'line':<32} {'us/call':>9}")
    for count in (int(c) for c in args.values.split(",")):
        while len(registered) < count:
            registered.append(entra_secret())
            redact.register(registered[-1])
        lines = {**LINES, "line holding a secret": json.dumps({"event": "x", "echo": f"got {registered[-1]} back"})}
        for name, line in lines.items():
            print(f"{count:>8} {name:<32} {measure(lambda line=line: redact.scrub(line), args.repeat):>9.1f}")

        def one_line() -> None:
            log.info(
                "sink.updated",
                sink="keyvault:https://my-vault.vault.azure.net/x",
                key_id="5d0b1c3e-4a6f-4e0b-9a43-6c1f1d2e3f40",
            )
            stream.seek(0)
            stream.truncate()

        print(f"{count:>8} {'log.info() through structlog':<32} {measure(one_line, args.repeat):>9.1f}")
    if args.short:
        redact.register("x7Qp2Z")
        line = LINES["rotation.failed with an error"]
        name = "rotation.failed, + a short secret"
        print(f"{len(registered):>8} {name:<32} {measure(lambda: redact.scrub(line), args.repeat):>9.1f}")


if __name__ == "__main__":
    main()
