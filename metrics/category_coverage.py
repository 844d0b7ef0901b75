"""Category coverage and entropy of a class histogram (SoftGAN paper, section 6.4, eq. 11).

A classifier labels N samples; with n_i the count of class i and p_i = n_i / N:
coverage = #{i : n_i > 0} / C and H = -sum_{p_i != 0} p_i log p_i (natural log; log C for a balanced set).
The same numbers for real images are reported beside those of generated ones. Also reported: the mean
predicted class and the standard deviation of the class counts (the MNIST digit-balance protocol).
"""

from __future__ import annotations

import numpy as np

from metrics import metric_utils


def category_stats(labels, num_classes: int) -> dict:
    """Histogram statistics of integer class labels in [0, num_classes)."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        raise ValueError('category statistics need at least one label')
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f'labels must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]')
    counts = np.bincount(labels.astype(np.int64), minlength=num_classes)
    p = counts / counts.sum()
    nz = p[p > 0]
    return dict(counts=counts.tolist(), coverage=float((counts > 0).sum() / num_classes),
                entropy=float(-(nz * np.log(nz)).sum()), max_entropy=float(np.log(num_classes)),
                mean_label=float(labels.mean()), count_std=float(counts.std()), shares=p.tolist())


def classifier_for(opts: metric_utils.MetricOptions):
    """The classifier that labels this generator's images (chosen by image shape and the real data set)."""
    from metrics import classifiers
    metric_utils.check_generator(opts.G, 'category coverage')
    return classifiers.classifier_for_images(opts.G.img_channels, opts.G.img_resolution, device=opts.device,
                                             detector_dir=opts.detector_dir, cache_dir=opts.get_cache_dir(),
                                             allow_download=opts.allow_download, dataset_kwargs=opts.dataset_kwargs)


def compute_category_coverage(opts: metric_utils.MetricOptions, num_gen: int, max_real: int | None, detector=None):
    """(generated stats, real stats) of the classifier's argmax labels."""
    if detector is None:
        detector = classifier_for(opts)
    metric_utils.note_detector(opts, detector)
    gen = metric_utils.compute_feature_stats_for_generator(
        opts, detector, num_items=num_gen, output='probabilities', capture_all=True).get_all()
    real = metric_utils.compute_feature_stats_for_dataset(
        opts, detector, output='probabilities', capture_all=True, max_items=max_real).get_all()
    num_classes = gen.shape[1]
    return category_stats(gen.argmax(1), num_classes), category_stats(real.argmax(1), num_classes)
