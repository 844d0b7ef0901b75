"""The SoftGAN plugin: SoftGAN loss and its EMD-driven β schedule, the other mode-collapse objectives
and regularisers, samplers and mode-coverage benchmarks.

Importing the package registers its objectives with training.loss's `--loss` registry.
"""

from . import softgan  # noqa: F401  (registers 'soft')
