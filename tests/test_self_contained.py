"""The repository stands on its own: no tracked file points at development notes outside it."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Built from pieces so that this file does not match itself.
NEEDLE = "shar" + "ed/"
BINARY = {".png", ".jpg", ".jpeg", ".gif", ".pt", ".pth", ".gz", ".zip", ".tar", ".npz", ".npy",
          ".pkl", ".lmdb", ".mdb", ".webp", ".whl", ".so", ".pyc"}


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode("utf-8", "surrogateescape").split("\0") if name]


def test_no_tracked_file_refers_to_development_notes():
    files = tracked_files()
    assert files, "git ls-files listed nothing"
    hits = []
    for path in files:
        if path.suffix.lower() in BINARY or not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for number, line in enumerate(text.splitlines(), 1):
            if NEEDLE in line:
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not hits, "tracked files refer to " + NEEDLE + " (outside the repository):\n" + "\n".join(hits)
