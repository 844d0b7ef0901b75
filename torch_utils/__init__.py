"""PyTorch plumbing shared by the networks, the training loop and the metrics.

Submodules are imported on demand (``from torch_utils import misc``); importing this package itself
loads nothing but the package.
"""
