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
    # mkstemp makes the file 0600; a file written plainly gets 0666 less the umask, and so does this
    # one, so a labmate can read result.json and last.pt wherever they can read the rest of the run.
    os.fchmod(fd, 0o666 & ~_umask())
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


def _umask() -> int:
    """The process's umask, read without changing it where /proc says it (os.umask can only set)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path, write: Callable[[BinaryIO], object]) -> None:
    """write(file object) into a temporary file, then rename it over `path`."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        write(f)


def write_text(path, text: str) -> None:
    write_bytes(path, lambda f: f.write(text.encode()))


def write_json(path, obj, indent: int = 2, default=None) -> None:
    write_text(path, json.dumps(obj, indent=indent, default=default) + "\n")
