"""Silencing C++ libraries that write straight to file descriptor 2.

TensorFlow's start-up banners and the ONNX/TFLite converters' warnings bypass Python's
logging and every environment variable meant to quiet them, so the only way to keep a
command's output readable is to point descriptor 2 at /dev/null while they run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Send everything written to file descriptor 2 to /dev/null until the block ends."""
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)
