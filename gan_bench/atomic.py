"""One way to write a file: into a temporary file beside it, flushed to disk, then renamed over it.
A reader, a parallel sweep job or a run killed at any moment sees the old file or the new one,
never part of one. Temporary files are `.<name>.<random>.tmp` in the same directory (a rename
across file systems is not atomic), removed when the write fails."""

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

TMP_GLOB = ".*.tmp"  # what a writer killed mid-write leaves behind


@contextmanager
def replacing(path) -> Iterator[Path]:
    """A fresh temporary path beside `path` for the block to write (e.g. a memory map it fills);
    when the block ends without error the file is synced and renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path, write: Callable[[BinaryIO], object]) -> None:
    """write(file object) into a temporary file, then rename it over `path`."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        write(f)


def write_text(path, text: str) -> None:
    write_bytes(path, lambda f: f.write(text.encode()))


def write_json(path, obj, indent: int = 2, default=None) -> None:
    write_text(path, json.dumps(obj, indent=indent, default=default) + "\n")
