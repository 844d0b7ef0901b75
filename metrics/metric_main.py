"""The metric registry: named metrics, each a function of MetricOptions returning a dict of numbers.

Names and meanings follow stylegan2-ada-pytorch where they exist there; `calc_metrics.py` and the
training loop both go through calc_metric() and report_metric().

stylegan2-ada-pytorch's metrics
    fid50k_full   FID, 50k generated vs all real images (no x-flips)
    kid50k_full   KID, 50k generated vs up to 1M real images, 100 subsets of 1000
    pr50k3_full   improved precision/recall, k = 3, 50k generated vs up to 200k real images
    ppl2_wend     PPL in W, endpoints, no crop, epsilon 1e-4, 50k samples (LPIPS-VGG16)
    is50k         Inception Score, 50k generated, 10 splits (needs Inception with logits)
    fid50k kid50k pr50k3                    legacy: 50k real images, x-flips kept when the data set has them
    ppl_zfull ppl_wfull ppl_zend ppl_wend   legacy PPL variants (crop)
Smaller versions of the same (for quick checks and CPUs)
    fid10k_full fid10k kid10k_full pr10k3_full is10k
Added by this project
    dc10k_full dc50k_full   density and coverage (Naeem et al.), k = 5, 10k / 50k generated vs up to 200k real
    gs1k        Geometry Score, 1000 generated vs 1000 real images in pixel space, L0 = 64, gamma = 1/1000,
                100 repetitions (the SoftGAN paper's setting for its Fig. 8)
    gs5k        the same with 5000 images and gamma = 1/128 (Khrulkov & Oseledets' default at this size)
    cat_cov10k  category coverage and entropy of 10k generated images (and of up to 10k real ones) labelled by
                the project's classifier: the embedded-digits CNN for builtin:digits (and 1-channel 8/16 px),
                MNIST CNN for other 1-channel 28/32 px, CIFAR-10 ResNet-20 for RGB 32 px
                (with each class's share, <name>_share<i>, and the smallest and largest share)
    cat_cov1k   the same with 1k generated images: the default run's mode-coverage check
    emd64       mean exact batch EMD between 64 generated and 64 real images over 16 batch pairs, and the same
                between two disjoint real batches (emd64_floor), pixels in [-1, 1]

MetricOptions.num_gen / max_real override the generated / real sample counts of every metric (the
result then records them, and report_metric logs a name stating a count under the real one, e.g.
fid200_full); precision/recall and density/coverage use VGG16 features when available and
otherwise Inception features with a warning, recording which in the result's `detector`.
"""

from __future__ import annotations

import json
import os
import re
import time

import dnnlib
from metrics import metric_utils
from metrics.errors import MetricError

_metric_dict: dict = {}


def register_metric(fn):
    """Decorator: register fn(opts) -> dict under fn.__name__."""
    if not callable(fn):
        raise TypeError(f'a metric must be callable, got {type(fn).__name__}')
    name = getattr(fn, '__name__', None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f'metric name {name!r} is not an identifier (letters, digits, underscores)')
    if name in _metric_dict:
        raise ValueError(f'metric {name!r} is already registered')
    _metric_dict[name] = fn
    return fn


def is_valid_metric(metric) -> bool:
    return metric in _metric_dict


def list_valid_metrics() -> list:
    return list(_metric_dict.keys())


def check_metrics(metrics) -> None:
    """Raise MetricError naming the first unknown metric of a list."""
    for metric in metrics:
        if not is_valid_metric(metric):
            raise MetricError(f'unknown metric {metric!r}: expected one of {", ".join(list_valid_metrics())}')


def preflight(metrics, **kwargs) -> None:
    """Load (and cache) every detector the metrics need and check the generator's interface, so that a
    missing file fails before any computation. kwargs are MetricOptions arguments."""
    check_metrics(metrics)
    opts = metric_utils.MetricOptions(**kwargs)
    for metric in metrics:
        check = getattr(_metric_dict[metric], 'metric_requires', None)
        if check is not None:
            check(opts)


def requires(check):
    """Decorator (below @register_metric): `check(opts)` raises MetricError when the metric cannot run."""
    def decorate(fn):
        fn.metric_requires = check
        return fn
    return decorate


def _needs_inception(opts):
    metric_utils.inception(opts)


def _needs_inception_logits(opts):
    metric_utils.inception(opts, need_logits=True)


def _needs_pr_detector(opts):
    metric_utils.pr_features_detector(opts)


def _needs_ppl(opts):
    from metrics import perceptual_path_length
    from metrics import detectors
    from metrics.errors import DetectorUnavailable
    metric_utils.check_generator(opts.G, 'PPL')
    perceptual_path_length.check_style_generator(opts.G)
    try:
        detectors.get_vgg16(device=opts.device, detector_dir=opts.detector_dir, allow_download=opts.allow_download)
    except DetectorUnavailable as e:
        raise DetectorUnavailable(f'PPL needs LPIPS-VGG16: {e}') from None


def _needs_classifier(opts):
    from metrics import category_coverage
    category_coverage.classifier_for(opts)


def calc_metric(metric, **kwargs):
    """Compute one metric. kwargs are MetricOptions arguments. Returns EasyDict(results, metric, total_time,
    total_time_str, num_gpus[, detector][, num_gen][, max_real])."""
    check_metrics([metric])
    opts = metric_utils.MetricOptions(**kwargs)
    opts.progress.context = f'{metric} on {opts.device}'      # named in the long-computation warning
    start = time.time()
    results = _metric_dict[metric](opts)
    total_time = time.time() - start
    # Every rank computes the same numbers from gathered features; rank 0's are the ones reported.
    for key, value in list(results.items()):
        results[key] = metric_utils.broadcast_float(float(value), opts)
    out = dnnlib.EasyDict(
        results=dnnlib.EasyDict(results),
        metric=metric,
        total_time=total_time,
        total_time_str=dnnlib.util.format_time(total_time),
        num_gpus=opts.num_gpus,
    )
    if 'detector' in opts.notes:
        out.detector = opts.notes['detector']
    if opts.num_gen is not None:
        out.num_gen = opts.num_gen
    if opts.max_real is not None:
        out.max_real = opts.max_real
    return out


def logged_name(metric: str, num_gen: int | None) -> str:
    """The name a result is logged under. A name that states its number of generated images (the '50k'
    of fid50k_full) keeps it only when that many were used; after a num_gen override it states the
    real count: fid50k_full with 200 images -> fid200_full, with 2000 -> fid2k_full, pr50k3_full with
    200 -> pr200_3_full (the '_' keeps the count apart from the neighbourhood size)."""
    m = re.search(r'(\d+)k', metric)
    if num_gen is None or m is None or int(m.group(1)) * 1000 == num_gen:
        return metric
    token = f'{num_gen // 1000}k' if num_gen % 1000 == 0 else str(num_gen)
    rest = metric[m.end():]
    if rest[:1].isdigit() and not token.endswith('k'):
        token += '_'
    return metric[:m.start()] + token + rest


def report_metric(result_dict, run_dir=None, snapshot_pkl=None) -> dnnlib.EasyDict:
    """Print the result as one JSON line and append it to <run_dir>/metric-<name>.jsonl, under the name of
    logged_name() (then `computed_as` holds the registered name). Returns the record as logged."""
    metric = result_dict['metric']
    check_metrics([metric])
    record = dnnlib.EasyDict(result_dict)
    name = logged_name(metric, record.get('num_gen'))
    if name != metric:
        record.update(metric=name, computed_as=metric,
                      results=dnnlib.EasyDict({name + key[len(metric):] if key.startswith(metric) else key: value
                                               for key, value in record.results.items()}))
    if run_dir is not None and snapshot_pkl is not None:
        snapshot_pkl = os.path.relpath(snapshot_pkl, run_dir)
    record.update(snapshot_pkl=snapshot_pkl, timestamp=time.time())
    line = json.dumps(record)
    print(line, flush=True)
    if run_dir is not None and os.path.isdir(run_dir):
        with open(os.path.join(run_dir, f'metric-{name}.jsonl'), 'at') as f:
            f.write(line + '\n')
    return record


# ----------------------------------------------------------------------------
# stylegan2-ada-pytorch's metrics.


def _full(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)


def _legacy(opts):
    opts.dataset_kwargs.update(max_size=None)


def _fid(opts, max_real, num_gen):
    from metrics import frechet_inception_distance
    return frechet_inception_distance.compute_fid(opts, max_real=opts.real_count(max_real), num_gen=opts.gen_count(num_gen))


def _kid(opts, max_real, num_gen):
    from metrics import kernel_inception_distance
    return kernel_inception_distance.compute_kid(opts, max_real=opts.real_count(max_real), num_gen=opts.gen_count(num_gen),
                                                 num_subsets=100, max_subset_size=1000)


def _pr(opts, max_real, num_gen, k=3):
    from metrics import precision_recall
    return precision_recall.compute_pr(opts, max_real=opts.real_count(max_real), num_gen=opts.gen_count(num_gen), nhood_size=k)


def _ppl(opts, space, sampling, crop):
    from metrics import perceptual_path_length
    return perceptual_path_length.compute_ppl(opts, num_samples=opts.gen_count(50000), epsilon=1e-4, space=space,
                                              sampling=sampling, crop=crop)


def _is(opts, num_gen):
    from metrics import inception_score
    return inception_score.compute_is(opts, num_gen=opts.gen_count(num_gen), num_splits=10)


@register_metric
@requires(_needs_inception)
def fid50k_full(opts):
    _full(opts)
    return dict(fid50k_full=_fid(opts, None, 50000))


@register_metric
@requires(_needs_inception)
def kid50k_full(opts):
    _full(opts)
    return dict(kid50k_full=_kid(opts, 1000000, 50000))


@register_metric
@requires(_needs_pr_detector)
def pr50k3_full(opts):
    _full(opts)
    precision, recall = _pr(opts, 200000, 50000)
    return dict(pr50k3_full_precision=precision, pr50k3_full_recall=recall)


@register_metric
@requires(_needs_ppl)
def ppl2_wend(opts):
    return dict(ppl2_wend=_ppl(opts, 'w', 'end', crop=False))


@register_metric
@requires(_needs_inception_logits)
def is50k(opts):
    _full(opts)
    mean, std = _is(opts, 50000)
    return dict(is50k_mean=mean, is50k_std=std)


@register_metric
@requires(_needs_inception)
def fid50k(opts):
    _legacy(opts)
    return dict(fid50k=_fid(opts, 50000, 50000))


@register_metric
@requires(_needs_inception)
def kid50k(opts):
    _legacy(opts)
    return dict(kid50k=_kid(opts, 50000, 50000))


@register_metric
@requires(_needs_pr_detector)
def pr50k3(opts):
    _legacy(opts)
    precision, recall = _pr(opts, 50000, 50000)
    return dict(pr50k3_precision=precision, pr50k3_recall=recall)


@register_metric
@requires(_needs_ppl)
def ppl_zfull(opts):
    return dict(ppl_zfull=_ppl(opts, 'z', 'full', crop=True))


@register_metric
@requires(_needs_ppl)
def ppl_wfull(opts):
    return dict(ppl_wfull=_ppl(opts, 'w', 'full', crop=True))


@register_metric
@requires(_needs_ppl)
def ppl_zend(opts):
    return dict(ppl_zend=_ppl(opts, 'z', 'end', crop=True))


@register_metric
@requires(_needs_ppl)
def ppl_wend(opts):
    return dict(ppl_wend=_ppl(opts, 'w', 'end', crop=True))


# ----------------------------------------------------------------------------
# Smaller versions.


@register_metric
@requires(_needs_inception)
def fid10k_full(opts):
    _full(opts)
    return dict(fid10k_full=_fid(opts, None, 10000))


@register_metric
@requires(_needs_inception)
def fid10k(opts):
    _legacy(opts)
    return dict(fid10k=_fid(opts, 10000, 10000))


@register_metric
@requires(_needs_inception)
def kid10k_full(opts):
    _full(opts)
    return dict(kid10k_full=_kid(opts, 1000000, 10000))


@register_metric
@requires(_needs_pr_detector)
def pr10k3_full(opts):
    _full(opts)
    precision, recall = _pr(opts, 200000, 10000)
    return dict(pr10k3_full_precision=precision, pr10k3_full_recall=recall)


@register_metric
@requires(_needs_inception_logits)
def is10k(opts):
    _full(opts)
    mean, std = _is(opts, 10000)
    return dict(is10k_mean=mean, is10k_std=std)


# ----------------------------------------------------------------------------
# Added by this project.


def _dc(opts, name, num_gen):
    from metrics import precision_recall
    _full(opts)
    density, coverage = precision_recall.compute_dc(opts, max_real=opts.real_count(200000), num_gen=opts.gen_count(num_gen), nhood_size=5)
    return {f'{name}_density': density, f'{name}_coverage': coverage}


@register_metric
@requires(_needs_pr_detector)
def dc10k_full(opts):
    return _dc(opts, 'dc10k_full', 10000)


@register_metric
@requires(_needs_pr_detector)
def dc50k_full(opts):
    return _dc(opts, 'dc50k_full', 50000)


def _gs(opts, num, gamma):
    from metrics import geometry_score
    _full(opts)
    n = opts.gen_count(num)
    return geometry_score.compute_gs(opts, num_samples=n, L0=min(64, n), gamma=gamma, i_max=100, n=100)


@register_metric
def gs1k(opts):
    return dict(gs1k=_gs(opts, 1000, 1.0 / 1000))


@register_metric
def gs5k(opts):
    return dict(gs5k=_gs(opts, 5000, 1.0 / 128))


def _cat_cov(opts, name, num):
    from metrics import category_coverage
    _full(opts)
    gen, real = category_coverage.compute_category_coverage(opts, num_gen=opts.gen_count(num), max_real=opts.real_count(10000))
    shares = {f'{name}_share{i}': share for i, share in enumerate(gen['shares'])}
    return {f'{name}_coverage': gen['coverage'], f'{name}_entropy': gen['entropy'],
            f'{name}_mean_label': gen['mean_label'], f'{name}_count_std': gen['count_std'],
            f'{name}_min_share': min(gen['shares']), f'{name}_max_share': max(gen['shares']), **shares,
            f'{name}_real_coverage': real['coverage'], f'{name}_real_entropy': real['entropy']}


@register_metric
@requires(_needs_classifier)
def cat_cov10k(opts):
    return _cat_cov(opts, 'cat_cov10k', 10000)


@register_metric
@requires(_needs_classifier)
def cat_cov1k(opts):
    return _cat_cov(opts, 'cat_cov1k', 1000)


@register_metric
def emd64(opts):
    from metrics import emd
    _full(opts)
    num_batches = max(opts.gen_count(64 * 16) // 64, 1)
    value, floor = emd.compute_batch_emd(opts, batch=64, num_batches=num_batches)
    return dict(emd64=value, emd64_floor=floor)
