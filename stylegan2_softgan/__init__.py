"""The SoftGAN plugin: SoftGAN loss and its EMD-driven β schedule, the other mode-collapse objectives
and regularisers, samplers and mode-coverage benchmarks.

Importing the package registers its objectives with training.loss's `--loss` registry. Inside another
codebase whose top-level ``training`` package is not ours (NVIDIA's stylegan2-ada-pytorch or stylegan3
checkout, where stylegan2_softgan.nvidia_plugin provides SoftGAN in NVIDIA's loss conventions), there is no
registry to fill and the registration is skipped.
"""

import importlib.util as _importlib_util
import os as _os


def _training_is_ours() -> bool:
    spec = _importlib_util.find_spec('training')
    root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    return (spec is not None and spec.origin is not None
            and _os.path.dirname(_os.path.dirname(_os.path.abspath(spec.origin))) == root)


if _training_is_ours():
    from . import softgan  # noqa: F401  (registers 'soft')
    from . import objectives  # noqa: F401  (registers 'ns', 'ms', 'hinge', 'fgan-*', 'wgan', 'wgan-gp')
    from . import far  # noqa: F401  (registers 'far')
    from . import swgan  # noqa: F401  (registers 'swgan')
