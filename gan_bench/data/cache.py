"""The prepared-data cache: uint8 arrays as .npy files plus manifest.json, in
<data root>/cache/<key>/. Sources are converted once; training reads only the cache, through
np.memmap, so a 2.5 GB CelebA costs no RAM until its pages are touched.

Crash safety: every file is written under a temporary name and renamed into place, and the
manifest goes last, so a directory without a valid manifest (or whose arrays do not match it) is
partial and gets rebuilt, never used. A rebuild deletes the manifest before touching anything.
Concurrent builders (a multirun starting several jobs at once) are serialised by a lock file; the
one that waited finds the finished cache and loads it."""

import datetime
import hashlib
import json
import logging
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

import gan_bench
from gan_bench import atomic

try:
    import fcntl
except ImportError:   # Windows: no advisory locks; concurrent builds of one cache are the user's risk
    fcntl = None

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Sources up to this size are fingerprinted by content; larger ones by names + sizes + mtimes,
# which costs one stat per file instead of reading gigabytes at every start.
CONTENT_HASH_BYTES = 64 << 20


def fingerprint(files: list[Path], base: Path) -> str:
    """Identity of a source; names are taken relative to base so a moved source keeps its identity
    (small ones at least: a copy gets new mtimes)."""
    files = sorted(set(files))
    stats = [f.stat() for f in files]
    by_content = sum(s.st_size for s in stats) <= CONTENT_HASH_BYTES
    h = hashlib.sha256()
    for f, st in zip(files, stats):
        rel = f.relative_to(base) if f.is_relative_to(base) else Path(f.name)
        h.update(f"{rel.as_posix()}\0{st.st_size}\0".encode())
        if by_content:
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        else:
            h.update(f"{st.st_mtime_ns}\0".encode())
    return ("content:" if by_content else "stat:") + h.hexdigest()[:24]


def _jsonable(params: dict) -> dict:
    return json.loads(json.dumps(params))   # tuples -> lists, so it compares equal to a loaded manifest


def load(cache_dir: Path, params: dict, source_fp: str | None = None):
    """(arrays, manifest) when the cache is complete, built with these params and, when the source
    is at hand (source_fp not None), from this source; None otherwise. Arrays are copy-on-write
    memmaps: writable (torch.from_numpy wants that) but nothing ever reaches the file."""
    problem, hit = _check(cache_dir, _jsonable(params), source_fp)
    if problem and cache_dir.exists():   # say why an existing cache is not used; a new one needs no word
        log.info("cache %s: %s", cache_dir, problem)
    return hit


def _check(cache_dir: Path, params: dict, source_fp: str | None):
    try:
        m = json.loads((cache_dir / MANIFEST).read_text())
    except FileNotFoundError:
        return "missing or partial (no manifest)", None
    except (OSError, ValueError):
        return "unreadable manifest", None
    if m.get("version") != FORMAT_VERSION:
        return f"format version {m.get('version')} != {FORMAT_VERSION}", None
    if m.get("params") != params:
        return f"built with {m.get('params')}, want {params}", None
    if source_fp is not None and m.get("source", {}).get("fingerprint") != source_fp:
        return "the source changed", None
    arrays = {}
    for name, spec in m.get("arrays", {}).items():
        try:
            a = np.load(cache_dir / f"{name}.npy", mmap_mode="c")
        except (OSError, ValueError):   # missing or truncated
            return f"{name}.npy missing or truncated", None
        if list(a.shape) != spec["shape"] or str(a.dtype) != spec["dtype"]:
            return f"{name}.npy does not match the manifest", None
        arrays[name] = a
    if "train" not in arrays:
        return "no train array", None
    return None, (arrays, m)


class Writer:
    """Hands out .npy memmaps under temporary names (gan_bench.atomic.replacing); the builder fills
    them in place, so a source larger than RAM converts fine. Each is renamed into place when the
    build succeeds, and removed when it fails."""

    def __init__(self, cache_dir: Path, files: ExitStack):
        self.dir, self.tmp, self._files = cache_dir, {}, files

    def array(self, name: str, shape: tuple, dtype=np.uint8) -> np.ndarray:
        tmp = self.tmp[name] = self._files.enter_context(atomic.replacing(self.dir / f"{name}.npy"))
        return np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(int(s) for s in shape))


def build(cache_dir: Path, params: dict, source_fp: str, source: str, fill: Callable[[Writer], None],
          force: bool = False):
    """Build the cache with fill(writer) unless a complete one appears while we wait for the lock.
    Returns (arrays, manifest, built)."""
    params = _jsonable(params)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir / ".lock"):
        if not force:
            problem, hit = _check(cache_dir, params, source_fp)
            if hit:
                return (*hit, False)
        log.info("building %s from %s", cache_dir, source)
        (cache_dir / MANIFEST).unlink(missing_ok=True)   # from here on the directory reads as partial
        for stale in cache_dir.glob(atomic.TMP_GLOB):    # left by a builder that was killed
            stale.unlink()
        with ExitStack() as files:                       # on success every array is renamed into place
            w = Writer(cache_dir, files)
            fill(w)
            specs = {}
            for name, tmp in w.tmp.items():
                a = np.load(tmp, mmap_mode="r")
                specs[name] = {"shape": list(a.shape), "dtype": str(a.dtype)}
                del a
        train = specs["train"]["shape"]
        manifest = {
            "version": FORMAT_VERSION,
            "params": params,
            "count": train[0],
            "channels": train[1],
            "resolution": train[2],
            "crop": params.get("crop"),
            "arrays": specs,
            "source": {"path": source, "fingerprint": source_fp},
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "gan_bench": gan_bench.__version__,
        }
        atomic.write_json(cache_dir / MANIFEST, manifest, indent=1)
        problem, hit = _check(cache_dir, params, source_fp)
        if not hit:   # only a disk problem or a concurrent writer outside the lock gets here
            raise RuntimeError(f"cache {cache_dir} is invalid right after building it: {problem}")
        return (*hit, True)


@contextmanager
def _locked(path: Path):
    with open(path, "a") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)
