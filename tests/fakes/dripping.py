"""A server that answers 200 and then sends its body one byte at a time, for the tests of
timeouts that must bound a whole answer, not each read of it."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def dripping_receiver(byte_every_s: float, length: int) -> Iterator[str]:
    """A receiver that answers 200 and then sends its body one byte at a time: each read
    is quick, so a per-read timeout never fires (a wedged proxy, a receiver stuck mid-answer)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}"
                             "\r\n\r\n".encode())
                for _ in range(length):
                    if stop.wait(byte_every_s):
                        return
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)
