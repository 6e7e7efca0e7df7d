"""`gan-bench prepare NAME [--from PATH]`: convert an image data set once into the uint8 cache that
training reads (<data root>/cache/<name>-<resolution>px-<crop>/). Running it again is a no-op
unless the source changed or the cache is incomplete. It calls the very loaders the dataset
configs instantiate, with the same defaults, so the cache it writes is the one training finds."""

import argparse
import logging
import os

from gan_bench.config import ROOT
from gan_bench.data import images
from gan_bench.data.sources import CROPS

CROPPED = ("celeba", "lsun_classroom", "folder")   # the others are fixed-size sources


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gan-bench prepare", description=__doc__.split("\n\n")[0])
    p.add_argument("name", choices=sorted(images.DATASETS), help="data set (as in dataset=NAME)")
    p.add_argument("--from", dest="source", metavar="PATH",
                   help="where the source is (archive, folder, lmdb); default: its place under the data root")
    p.add_argument("--data-root", default=os.environ.get("GAN_BENCH_DATA", str(ROOT / "data")),
                   help="data root, the cache goes under it (default: $GAN_BENCH_DATA or the repository's data/, as paths.data)")
    p.add_argument("--resolution", type=int, help="output size in pixels (default: the data set's)")
    p.add_argument("--crop", choices=sorted(CROPS), help=f"crop preset for {', '.join(CROPPED)}")
    args = p.parse_args(argv)
    if args.crop and args.name not in CROPPED:
        p.error(f"--crop applies to {', '.join(CROPPED)} only")

    kwargs = {"root": args.data_root, "path": args.source}
    if args.resolution is not None:
        kwargs["resolution"] = args.resolution
    if args.crop:
        kwargs["crop"] = args.crop
    if not logging.getLogger().handlers:   # show "building ..." and progress when run from a shell
        logging.basicConfig(level=logging.INFO, format="%(message)s")

    data = images.DATASETS[args.name](**kwargs)   # raises UserError (one line) when the source is missing
    m = data.info["manifest"]
    test = f" + {len(data.test)} test" if data.test is not None else ""
    state = "built" if data.info["built"] else "up to date"
    print(f"{args.name}: {m['count']}{test} images {m['resolution']}x{m['resolution']}x{m['channels']}"
          f"{' crop ' + m['crop'] if m.get('crop') else ''}, {state}: {data.info['cache']}")
    return 0
