"""`gan-bench prepare NAME [--from PATH]`: convert an image data set once into the uint8 cache that
training reads (<data root>/cache/<name>-<resolution>px-<crop>/). Running it again is a no-op
unless the source changed or the cache is incomplete. It calls the very loaders the dataset
configs instantiate, with the same defaults, so the cache it writes is the one training finds."""

import argparse
import logging
import os
import sys
from contextlib import contextmanager

from gan_bench.paths import default_data_root
from gan_bench.data import images
from gan_bench.data.sources import CROPS

CROPPED = ("celeba", "lsun_classroom", "folder")   # the others are fixed-size sources


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gan-bench prepare", description=__doc__.split("\n\n")[0])
    p.add_argument("name", choices=sorted(images.DATASETS), help="data set (as in dataset=NAME)")
    p.add_argument("--from", dest="source", metavar="PATH",
                   help="where the source is (archive, folder, lmdb); default: its place under the data root")
    p.add_argument("--data-root", default=default_data_root(),
                   help="data root, the cache goes under it (default: $GAN_BENCH_DATA or the repository's data/, as paths.data)")
    p.add_argument("--resolution", type=int, help="output size in pixels (default: the data set's)")
    p.add_argument("--crop", choices=sorted(CROPS), help=f"crop preset for {', '.join(CROPPED)}")
    p.add_argument("--n", type=int, help="stacked_mnist: number of stacks (default: the data set's, as dataset.n)")
    p.add_argument("--seed", type=int, help="stacked_mnist: the stacks' seed (default: the data set's, as dataset.seed)")
    args = p.parse_args(argv)
    if args.crop and args.name not in CROPPED:
        p.error(f"--crop applies to {', '.join(CROPPED)} only")
    if (args.n is not None or args.seed is not None) and args.name != "stacked_mnist":
        p.error("--n and --seed apply to stacked_mnist only")

    kwargs = {"root": args.data_root, "path": args.source}
    if args.resolution is not None:
        kwargs["resolution"] = args.resolution
    if args.crop:
        kwargs["crop"] = args.crop
    for key in ("n", "seed"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    with _progress_to_stderr():
        data = images.DATASETS[args.name](**kwargs)   # raises UserError (one line) when the source is missing
    m = data.info["manifest"]
    test = f" + {len(data.test)} test" if data.test is not None else ""
    state = "built" if data.info["built"] else "up to date"
    print(f"{args.name}: {m['count']}{test} images {m['resolution']}x{m['resolution']}x{m['channels']}"
          f"{' crop ' + m['crop'] if m.get('crop') else ''}, {state}: {data.info['cache']}")
    return 0


@contextmanager
def _progress_to_stderr():
    """Show the data loggers' "building ..." and progress lines on stderr for this command when
    nothing else handles them; removed afterwards, so a caller's logging (tests, a notebook) is
    left as it was."""
    log = logging.getLogger("gan_bench.data")
    if logging.getLogger().handlers or log.handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
