"""gan-bench: an experiment runner for research on GAN training objectives."""

__version__ = "0.1.0"
