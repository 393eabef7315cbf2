"""Every local file read has a limit and a clear error: the config, secret files, the CA bundle.

What a path in the config may name: a regular file (followed through symbolic links, as Kubernetes
mounts Secrets and ConfigMaps), and for the config file alone a pipe (`--config <(envsubst < ...)`).
Devices, directories, sockets and oversized files are refused with the key, the file and a fix,
before anything is read whole: `{file: /dev/zero}` once read 1.9 GB.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.config.loading import MAX_CONFIG_BYTES, load_config, parse_config
from service.config.problems import ConfigProblems
from service.config.references import MAX_SECRET_FILE_BYTES
from service.errors import ConfigError
from service.local_files import FileProblem, read_limited

TARGET = """\
targets:
  - name: dime-exchange
    tenant_id: 00000000-0000-0000-0000-000000000000
    client_id: 11111111-1111-1111-1111-111111111111
    sinks:
      - {type: dimescheduler, url: 'https://example.invalid/x', api_key: {file: FILE}}
"""

Make = Callable[[Path], Path]


def regular(content: bytes) -> Make:
    def make(directory: Path) -> Path:
        path = directory / "file"
        path.write_bytes(content)
        return path

    return make


def sparse(size: int) -> Make:
    """A file that says it is ``size`` bytes, without writing them."""

    def make(directory: Path) -> Path:
        path = directory / "big"
        with path.open("wb") as handle:
            handle.truncate(size)
        return path

    return make


def fifo(directory: Path) -> Path:
    path = directory / "fifo"
    os.mkfifo(path)
    return path


def unix_socket(directory: Path) -> Path:
    path = directory / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays
    return path


def symlink_to(target: str) -> Make:
    def make(directory: Path) -> Path:
        path = directory / "link"
        path.symlink_to(target)
        return path

    return make


def the_directory(directory: Path) -> Path:
    return directory


@pytest.fixture
def feed_fifo() -> Iterator[Callable[[Path, bytes], None]]:
    """Write ``data`` into a FIFO from a thread (its reader is the code under test)."""
    threads: list[threading.Thread] = []

    def feed(path: Path, data: bytes) -> None:
        def write() -> None:
            # The reader may stop at its limit and close: the rest is refused, as it should be.
            with contextlib.suppress(BrokenPipeError), path.open("wb") as handle:
                handle.write(data)

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        threads.append(thread)

    yield feed
    for thread in threads:
        thread.join(timeout=5)


# --- read_limited --------------------------------------------------------------------------------

REFUSED: dict[str, tuple[Make, dict[str, bool], str]] = {
    "a file larger than the limit, by its size": (sparse(2048), {}, "it is 2 KB, more than the 1 KB allowed"),
    "/dev/zero, a device that never ends": (lambda _: Path("/dev/zero"), {}, "it is a character device"),
    "a link to /dev/zero": (symlink_to("/dev/zero"), {}, "it is a character device"),
    "a directory": (the_directory, {}, "it is a directory"),
    "a FIFO where a file is wanted": (fifo, {}, "it is a pipe (FIFO), not a regular file"),
    "a socket": (unix_socket, {}, "it is a socket"),
    "a link where links are not followed": (
        symlink_to("/etc/hostname"),
        {"follow_symlinks": False},
        "it is a symbolic link",
    ),
}


@pytest.mark.parametrize(("make", "options", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_read_limited_refuses_what_is_not_a_small_regular_file(
    tmp_path: Path, make: Make, options: dict[str, bool], message: str
) -> None:
    path = make(tmp_path)

    with pytest.raises(FileProblem) as refused:
        read_limited(path, 1024, **options)

    assert message in str(refused.value)


def test_read_limited_reads_a_regular_file_up_to_the_limit_and_follows_links(tmp_path: Path) -> None:
    regular(b"x" * 1024)(tmp_path)
    (tmp_path / "link").symlink_to(tmp_path / "file")

    assert read_limited(tmp_path / "link", 1024) == b"x" * 1024


def test_a_pipe_is_read_when_asked_for(tmp_path: Path, feed_fifo: Callable[[Path, bytes], None]) -> None:
    path = fifo(tmp_path)
    feed_fifo(path, b"targets: []\n")

    assert read_limited(path, 1024, pipes=True) == b"targets: []\n"


def test_a_pipe_that_goes_on_past_the_limit_is_refused(
    tmp_path: Path, feed_fifo: Callable[[Path, bytes], None]
) -> None:
    path = fifo(tmp_path)
    feed_fifo(path, b"y" * 4096)

    with pytest.raises(FileProblem, match="more than the 1 KB allowed"):
        read_limited(path, 1024, pipes=True)


def test_a_pipe_nobody_writes_to_is_refused_after_a_wait_not_waited_for_forever(tmp_path: Path) -> None:
    began = time.monotonic()

    with pytest.raises(FileProblem, match=r"a pipe nothing was written to within 0\.2 s"):
        read_limited(fifo(tmp_path), 1024, pipes=True, pipe_wait=0.2)
    assert time.monotonic() - began < 5


# --- the config file -----------------------------------------------------------------------------

CONFIG_FILES: dict[str, tuple[Make, str]] = {
    "a config larger than 16 MB is refused without being read": (
        sparse(MAX_CONFIG_BYTES + 1),
        "it is 16 MB, more than the 16 MB allowed",
    ),
    "/dev/zero as the config": (lambda _: Path("/dev/zero"), "it is a character device"),
    "a directory as the config": (the_directory, "it is a directory"),
    "a config that is not UTF-8": (regular(b"targets: [\xff]\n"), "not UTF-8 text (a byte that is not UTF-8 at"),
}


@pytest.mark.parametrize(("make", "message"), CONFIG_FILES.values(), ids=CONFIG_FILES.keys())
def test_a_config_file_that_cannot_be_one_is_a_config_error(tmp_path: Path, make: Make, message: str) -> None:
    path = make(tmp_path)
    began = time.monotonic()

    with pytest.raises(ConfigError) as refused:
        load_config(path, {})

    assert str(path) in str(refused.value)
    assert message in str(refused.value)
    assert time.monotonic() - began < 5


def test_a_config_can_come_through_a_pipe(tmp_path: Path, feed_fifo: Callable[[Path, bytes], None]) -> None:
    key = regular(b"an-api-key-from-a-file\n")(tmp_path)
    path = fifo(tmp_path)
    feed_fifo(path, TARGET.replace("FILE", str(key)).encode())

    assert load_config(path, {}).targets[0].name == "dime-exchange"


# --- secret files and the CA bundle --------------------------------------------------------------

SECRET_FILES: dict[str, tuple[Make, str]] = {
    "a secret file larger than 64 KB": (sparse(MAX_SECRET_FILE_BYTES + 1), "it is 64 KB, more than the 64 KB allowed"),
    "/dev/zero as a secret file": (lambda _: Path("/dev/zero"), "it is a character device, not a regular file"),
    "/dev/urandom through a link": (symlink_to("/dev/urandom"), "it is a character device, not a regular file"),
    "a FIFO as a secret file (read at every pass, a pipe gives it once)": (fifo, "it is a pipe (FIFO)"),
    "a directory as a secret file": (the_directory, "it is a directory"),
    "a secret file that is not UTF-8": (regular(b"\xff\xfe\x00k\x00e\x00y"), "is not UTF-8 text: write the secret"),
    "a secret file that does not exist": (lambda d: d / "missing", "cannot be read (No such file or directory)"),
}


@pytest.mark.parametrize(("make", "message"), SECRET_FILES.values(), ids=SECRET_FILES.keys())
def test_a_secret_file_that_cannot_hold_a_secret_names_the_key_the_file_and_the_fix(
    tmp_path: Path, make: Make, message: str
) -> None:
    path = make(tmp_path)

    with pytest.raises(ConfigProblems) as refused:
        parse_config(TARGET.replace("FILE", str(path)), "test.yaml", {})

    [problem] = refused.value.problems
    assert problem.startswith(f"targets[0].sinks[0].api_key: file {path} ")
    assert message in problem


CA_BUNDLES: dict[str, tuple[Make, str]] = {
    "a CA bundle larger than 1 MB": (sparse(2 * 1024 * 1024), "it is 2 MB, more than the 1 MB allowed"),
    "/dev/zero as the CA bundle": (lambda _: Path("/dev/zero"), "it is a character device"),
    "a CA bundle that holds no certificate": (regular(b"not a certificate\n"), "it holds no PEM certificate"),
    "a CA bundle in a binary format": (regular(b"\x30\x82\x01\x0a\xff"), "it is not a PEM file"),
}


@pytest.mark.parametrize(("make", "message"), CA_BUNDLES.values(), ids=CA_BUNDLES.keys())
def test_a_ca_bundle_that_cannot_be_one_is_a_config_problem(tmp_path: Path, make: Make, message: str) -> None:
    key = regular(b"an-api-key\n")(tmp_path)
    (tmp_path / "ca").mkdir()
    path = make(tmp_path / "ca")
    text = f"cloud: {{ca_bundle: '{path}'}}\n" + TARGET.replace("FILE", str(key))

    with pytest.raises(ConfigProblems) as refused:
        parse_config(text, "test.yaml", {})

    [problem] = refused.value.problems
    assert problem.startswith(f"cloud.ca_bundle: {path} ")
    assert message in problem
