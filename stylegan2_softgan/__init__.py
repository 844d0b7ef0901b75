"""The SoftGAN plugin: SoftGAN loss and its EMD-driven β schedule, the other mode-collapse objectives
and regularisers, samplers and mode-coverage benchmarks.

Importing the package registers its objectives with training.loss's `--loss` registry.
"""

from . import softgan  # noqa: F401  (registers 'soft')
from . import objectives  # noqa: F401  (registers 'ns', 'ms', 'hinge', 'fgan-*', 'wgan', 'wgan-gp')
from . import far  # noqa: F401  (registers 'far')
from . import swgan  # noqa: F401  (registers 'swgan')
