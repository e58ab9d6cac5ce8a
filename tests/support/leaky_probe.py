"""A test that leaves behind all the session-end check looks for; run only by
tests/support/test_hygiene.py, in a pytest of its own (the name keeps it out of collection)."""

import socket
import subprocess
import tempfile

_kept: list[socket.socket] = []


def test_leaves_a_process_a_socket_and_a_directory() -> None:
    subprocess.Popen(["sleep", "600"], start_new_session=True)  # escapes its parent's group
    tempfile.mkdtemp(prefix="leaky-")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    _kept.append(listener)
