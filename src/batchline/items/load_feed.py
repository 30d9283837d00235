"""The text of a ``LOAD DATA LOCAL INFILE``, fed to PyMySQL through a named pipe as it is
rendered.

PyMySQL reads a LOCAL file by the name the server asks for, so the writer names a FIFO and a
thread renders the chunk into it a slice at a time: the server parses the first slice while the
next is rendered, where a file would have to be rendered and written whole first (about a fifth
of the load's time for record batches). Where there are no FIFOs (Windows), a temporary file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable


class LoadFeed:
    """``path`` is what the statement names; ``close()`` after the statement, in any case."""

    def __init__(self, pieces: Iterable[bytes], folder: str | None = None) -> None:
        self._folder = tempfile.mkdtemp(prefix="batchline-load-", dir=folder)
        self.path = os.path.join(self._folder, "rows")
        self.error: BaseException | None = None  # raised while rendering
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not hasattr(os, "mkfifo"):
            try:
                with open(self.path, "wb") as out:
                    for piece in pieces:
                        out.write(piece)
            except BaseException:
                self.close()
                raise
            return
        os.mkfifo(self.path, 0o600)
        self._thread = threading.Thread(
            target=self._feed, args=(pieces,), name="batchline-load-data", daemon=True
        )
        self._thread.start()

    def _feed(self, pieces: Iterable[bytes]) -> None:
        try:
            rendered = iter(pieces)
            try:
                piece = next(rendered, None)  # ready before the server asks for the file
            except BaseException as exc:
                # PyMySQL may be opening the pipe already: it must read an end, not wait for
                # a writer forever.
                self.error, piece = exc, None
            with open(self.path, "wb", buffering=0) as out:  # waits for PyMySQL to open it
                _widen(out.fileno())
                while piece is not None and not self._stop.is_set():
                    out.write(piece)  # returns once the pipe holds it: the next is rendered
                    piece = next(rendered, None)  # while the server reads this one
        except BrokenPipeError:
            pass  # the reader went away: the statement failed, and says why
        except BaseException as exc:  # a value that cannot be rendered: the load is cut short
            self.error = exc

    def close(self) -> None:
        """Wait for the thread (reading the pipe to its end if the statement failed before the
        server asked for the file, or stopped reading it), then remove the pipe."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            # Open for reading and writing: that never waits, and it stays open until the
            # thread is done, so a thread still rendering its first piece opens the pipe
            # after this and does not wait for a reader forever (a read-only end would see
            # no writer yet, read its end at once and close).
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
            try:
                while thread.is_alive():
                    try:
                        os.read(fd, 1 << 16)  # a write into a full pipe goes on
                    except BlockingIOError:
                        thread.join(0.01)
            finally:
                os.close(fd)
        shutil.rmtree(self._folder, ignore_errors=True)


def _widen(fd: int) -> None:
    """A pipe of 1 MiB where Linux allows it (64 KiB otherwise): the writer stays that far
    ahead of the reader, so the server never waits for a piece being rendered."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass
