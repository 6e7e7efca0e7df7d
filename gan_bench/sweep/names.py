"""Job directory names: `hydra.sweep.subdir` is `${gb_job_dirname:${hydra:job.override_dirname}}`."""

import hashlib

from omegaconf import OmegaConf

MAX_NAME = 240  # bytes; file systems allow 255 per path component


def job_dirname(override_dirname: str) -> str:
    """The job's overrides as one safe path component.

    Hydra's override_dirname (`alpha_d=0.3,seed=0`: sorted, excluded keys left out) is kept as it
    is, except that `/` (a path in a value, `dataset.path=/data/x`) would nest directories or climb
    out of the sweep with `..`, so it is written %2F (and `%` itself %25, so names stay
    unambiguous); a name longer than MAX_NAME bytes keeps its start and ends with a hash of the
    whole; a job without overrides runs in `defaults`.
    """
    name = str(override_dirname).replace("%", "%25").replace("/", "%2F") or "defaults"
    if len(name.encode()) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:12]
        head = name.encode()[: MAX_NAME - 16].decode(errors="ignore")
        name = f"{head}...{digest}"
    return name


def register_resolvers() -> None:
    """The resolvers sweep configs use: ${gb_job_dirname:...} here, ${gb_root:} in gan_bench.config."""
    import gan_bench.config  # noqa: F401  (registers ${gb_root:} when imported)

    OmegaConf.register_new_resolver("gb_job_dirname", job_dirname, replace=True)
