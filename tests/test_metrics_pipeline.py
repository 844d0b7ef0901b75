"""The metric machinery end to end with tiny generators and detectors: registry, options, sharding,
caching, batch-size independence, PPL against a closed form, reporting, and a 2-process gloo run.

The NVIDIA-format detector files are stood in for by small TorchScript modules that follow the same
calling convention (keyword switches return_features / no_output_bias / return_lpips), so the code path
that loads inception-2015-12-05.pt or vgg16.pt from --detector-dir is exercised without the real files.
"""

import json
import os
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dnnlib
from metrics import detectors, metric_main, metric_utils
from metrics import category_coverage, frechet_inception_distance as fid_mod
from metrics import kernel_inception_distance as kid_mod, perceptual_path_length as ppl_mod
from metrics import precision_recall as pr
from metrics.errors import DetectorUnavailable, MetricError

DIGITS8 = dict(class_name='training.dataset.DigitsDataset', resolution=8, channels=1)
NO_WORKERS = dict(num_workers=0)

# ----------------------------------------------------------------------------
# Stand-ins.


class TinyG(torch.nn.Module):
    """A deterministic generator with the stylegan2-ada G interface (no mapping/synthesis)."""

    def __init__(self, z_dim=4, c_dim=0, res=8, ch=1, seed=0, offset=0.0):
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = z_dim, c_dim, res, ch
        gen = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn([z_dim + c_dim, ch * res * res], generator=gen))
        self.offset = offset

    def forward(self, z, c, **kwargs):
        x = torch.cat([z, c], dim=1) @ self.weight
        return torch.tanh(x + self.offset).view(-1, self.img_channels, self.img_resolution, self.img_resolution)


class LinearStyleG(torch.nn.Module):
    """mapping and synthesis both linear, so PPL has a closed form: 3 * 127.5^2 |(w1 - w0) B|^2 per sample
    with a squared-L2 distance on gray images repeated to RGB."""

    def __init__(self, z_dim=3, res=4, ch=1, num_ws=2):
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = z_dim, 0, res, ch
        self.num_ws, self.w_dim = num_ws, 5
        gen = torch.Generator().manual_seed(1)
        self.M = torch.nn.Parameter(torch.randn([z_dim, self.w_dim], generator=gen))
        self.B = torch.nn.Parameter(torch.randn([self.w_dim, ch * res * res], generator=gen) * 0.05)

    # Both maps compute in float64 and round once to float32, so each output element is the same whatever
    # the batch it is computed in (a float32 matmul's summation order, and so its last bits, depends on the
    # batch size, and PPL's finite difference at epsilon 1e-4 magnifies those bits about 10^4 times).
    def mapping(self, z, c):
        return (z.double() @ self.M.double()).to(z.dtype).unsqueeze(1).repeat([1, self.num_ws, 1])

    def synthesis(self, ws, noise_mode='random', force_fp32=False):
        img = ws.double().mean(1) @ self.B.double()
        return img.to(ws.dtype).view(-1, self.img_channels, self.img_resolution, self.img_resolution)

    def forward(self, z, c, **kwargs):
        return self.synthesis(self.mapping(z, c))


class FakeNvidiaInception(torch.nn.Module):
    """Same calling convention as NVIDIA's inception-2015-12-05.pt; a fixed random 16-d embedding."""

    def __init__(self, dim: int = 16, classes: int = 5):
        super().__init__()
        gen = torch.Generator().manual_seed(7)
        self.proj = torch.nn.Parameter(torch.randn([3 * 4 * 4, dim], generator=gen))
        self.head = torch.nn.Parameter(torch.randn([dim, classes], generator=gen))

    def forward(self, img, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False):
        x = F.adaptive_avg_pool2d(img.to(torch.float32), 4).flatten(1) / 128 - 1
        f = torch.tanh(x @ self.proj)
        if return_features:
            return f
        return torch.softmax(f @ self.head * 3, dim=1)


class FakeNvidiaVGG16(torch.nn.Module):
    """Same calling convention as NVIDIA's vgg16.pt; LPIPS embedding = the image scaled to [0, 1]."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(8)
        self.proj = torch.nn.Parameter(torch.randn([3 * 4 * 4, 12], generator=gen))

    def forward(self, img, resize_images: bool = True, return_lpips: bool = False, return_features: bool = False):
        x = img.to(torch.float32)
        if return_lpips:
            return x.flatten(1) / 255
        return torch.relu(F.adaptive_avg_pool2d(x, 4).flatten(1) / 128 - 1) @ self.proj


class ProjectionDetector(detectors.Detector):
    """Counts its calls; features = tanh of a fixed projection of the pixels; probabilities from brightness."""

    def __init__(self, in_dim=64, dim=12, num_classes=4):
        gen = torch.Generator().manual_seed(3)
        self.proj = torch.randn([in_dim, dim], generator=gen) / 8
        self.name = f'projection-{in_dim}-{dim}'
        self.num_classes = num_classes
        self.calls = 0

    def to(self, device):
        return self

    def features(self, images):
        self.calls += 1
        return torch.tanh((images.to(torch.float32).flatten(1) / 127.5 - 1) @ self.proj)

    def probabilities(self, images):
        self.calls += 1
        bins = (images.to(torch.float32).mean((1, 2, 3)) / 256 * 4 * self.num_classes).long().clamp(0, self.num_classes - 1)
        return F.one_hot(bins, self.num_classes).to(torch.float32)


def make_detector_dir(path, vgg=False):
    os.makedirs(path, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # torch.jit.script: NVIDIA's files are TorchScript
        torch.jit.script(FakeNvidiaInception()).save(os.path.join(path, detectors.INCEPTION_FILENAME))
        if vgg:
            torch.jit.script(FakeNvidiaVGG16()).save(os.path.join(path, detectors.VGG16_FILENAME))
    return str(path)


def opts_kwargs(tmp_path, **kw):
    base = dict(G=TinyG(), dataset_kwargs=dict(DIGITS8), device='cpu', cache_dir=str(tmp_path / 'stats'),
                allow_download=False, data_loader_kwargs=NO_WORKERS)
    base.update(kw)
    return base


def real_digit_images(n=None):
    ds = dnnlib.util.construct_class_by_name(**DIGITS8)
    n = len(ds) if n is None else n
    return torch.from_numpy(np.stack([ds[i][0] for i in range(n)]))


def generated_images(G, n, seed=0):
    sampler = metric_utils.LatentSampler(G.z_dim, 0, seed=seed)
    z = torch.from_numpy(sampler.z(list(range(n))))
    with torch.no_grad():
        return metric_utils.to_uint8(G(z, torch.zeros([n, 0])))


# ----------------------------------------------------------------------------
# Registry.


def test_registry_lists_stylegan2_ada_names_and_ours():
    names = metric_main.list_valid_metrics()
    for name in ['fid50k_full', 'kid50k_full', 'pr50k3_full', 'ppl2_wend', 'is50k', 'fid50k', 'kid50k', 'pr50k3',
                 'ppl_zfull', 'ppl_wfull', 'ppl_zend', 'ppl_wend', 'fid10k', 'fid10k_full', 'kid10k_full',
                 'pr10k3_full', 'is10k', 'dc10k_full', 'dc50k_full', 'gs1k', 'gs5k', 'cat_cov10k', 'cat_cov1k', 'emd64']:
        assert metric_main.is_valid_metric(name) and name in names, name
    assert not metric_main.is_valid_metric('fid1m') and 'fid1m' not in names


def test_register_metric_validates():
    with pytest.raises(TypeError, match='callable'):
        metric_main.register_metric(42)
    with pytest.raises(ValueError, match='already registered'):
        def fid50k_full(opts):
            return {}
        metric_main.register_metric(fid50k_full)
    with pytest.raises(ValueError, match='identifier'):
        metric_main.register_metric(lambda opts: {})

    def my_test_metric_xyz(opts):
        return dict(my_test_metric_xyz=opts.gen_count(3))
    try:
        metric_main.register_metric(my_test_metric_xyz)
        res = metric_main.calc_metric('my_test_metric_xyz', device='cpu', num_gen=5)
        assert res.results.my_test_metric_xyz == 5.0 and res.metric == 'my_test_metric_xyz' and res.num_gpus == 1
        assert res.num_gen == 5 and isinstance(res.total_time_str, str)
    finally:
        metric_main._metric_dict.pop('my_test_metric_xyz', None)


def test_unknown_metric_and_bad_options_fail_clearly():
    with pytest.raises(MetricError, match="unknown metric 'fid1m'"):
        metric_main.calc_metric('fid1m', device='cpu')
    with pytest.raises(ValueError, match='num_gen'):
        metric_utils.MetricOptions(num_gen=0)
    with pytest.raises(ValueError, match='pr_detector'):
        metric_utils.MetricOptions(pr_detector='resnet')
    with pytest.raises(ValueError, match='torch.distributed'):
        metric_utils.MetricOptions(num_gpus=2, rank=1)


def test_report_metric_appends_jsonl(tmp_path, capsys):
    result = dnnlib.EasyDict(results=dnnlib.EasyDict(fid50k_full=12.5), metric='fid50k_full', total_time=1.0,
                             total_time_str='1s', num_gpus=1)
    snap = tmp_path / 'network-snapshot-000010.pt'
    metric_main.report_metric(result, run_dir=str(tmp_path), snapshot_pkl=str(snap))
    metric_main.report_metric(result, run_dir=str(tmp_path), snapshot_pkl=str(snap))
    lines = (tmp_path / 'metric-fid50k_full.jsonl').read_text().splitlines()
    assert len(lines) == 2
    rec = json.loads(lines[0])
    assert rec['results'] == {'fid50k_full': 12.5} and rec['snapshot_pkl'] == 'network-snapshot-000010.pt'
    assert rec['num_gpus'] == 1 and isinstance(rec['timestamp'], float)
    assert json.loads(capsys.readouterr().out.splitlines()[0])['metric'] == 'fid50k_full'


# ----------------------------------------------------------------------------
# Latents, generation, real data.


def test_latent_sampler_depends_only_on_index():
    s = metric_utils.LatentSampler(z_dim=5, seed=4)
    all_z = s.z(list(range(600)))
    picked = s.z([599, 3, 257, 256])
    assert np.array_equal(picked, all_z[[599, 3, 257, 256]])
    other = metric_utils.LatentSampler(z_dim=5, seed=5).z([3])
    assert not np.array_equal(other[0], all_z[3])
    assert abs(all_z.mean()) < 0.1 and abs(all_z.std() - 1) < 0.1


def test_conditional_generator_needs_labels(tmp_path):
    with pytest.raises(MetricError, match='c_dim=3'):
        fid_mod.compute_fid(metric_utils.MetricOptions(**opts_kwargs(tmp_path, G=TinyG(c_dim=3))), None, 10,
                            detector=ProjectionDetector())


def test_conditional_generator_gets_dataset_labels(tmp_path):
    kw = opts_kwargs(tmp_path, G=TinyG(c_dim=10), dataset_kwargs=dict(DIGITS8, use_labels=True))
    opts = metric_utils.MetricOptions(**kw)
    G = metric_utils.prepare_generator(opts)
    sampler = metric_utils.make_sampler(opts, G)
    c = sampler.c(list(range(50)))
    assert c.shape == (50, 10) and np.all(c.sum(1) == 1)  # one-hot labels of real digits
    assert len(set(c.argmax(1).tolist())) > 3


def test_generator_with_wrong_output_is_refused(tmp_path):
    class BadG(TinyG):
        def forward(self, z, c, **kwargs):
            return super().forward(z, c)[:, :, :, :4].repeat([1, 2, 1, 1])
    with pytest.raises(MetricError, match='generator returned shape'):
        fid_mod.compute_fid(metric_utils.MetricOptions(**opts_kwargs(tmp_path, G=BadG())), None, 4, detector=ProjectionDetector())


# ----------------------------------------------------------------------------
# FID / KID / PR through the pipeline.


def test_fid_pipeline_matches_direct_computation(tmp_path):
    det = ProjectionDetector()
    opts = metric_utils.MetricOptions(**opts_kwargs(tmp_path))
    got = fid_mod.compute_fid(opts, max_real=None, num_gen=300, detector=det)
    real = det.features(real_digit_images()).double().numpy()
    gen = det.features(generated_images(TinyG(), 300)).double().numpy()
    assert got == pytest.approx(fid_mod.fid_from_features(gen, real), rel=1e-6)


def test_fid_pipeline_small_sample_route(tmp_path):
    # 8 generated images with 12 features: the exact small-sample route; real items capped at 50 keep all rows.
    det = ProjectionDetector()
    opts = metric_utils.MetricOptions(**opts_kwargs(tmp_path))
    got = fid_mod.compute_fid(opts, max_real=50, num_gen=8, detector=det)
    items = metric_utils.real_item_indices(1797, 50, opts)
    real = det.features(real_digit_images()[items]).double().numpy()
    gen = det.features(generated_images(TinyG(), 8)).double().numpy()
    w, v = np.linalg.eigh(np.cov(real, rowvar=False))
    r = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(r @ np.cov(gen, rowvar=False) @ r), 0, None)).sum()
    diff = real.mean(0) - gen.mean(0)
    expected = diff @ diff + np.trace(np.cov(real, rowvar=False)) + np.trace(np.cov(gen, rowvar=False)) - 2 * tr
    assert got == pytest.approx(expected, rel=1e-5)


def test_results_do_not_depend_on_batch_sizes(tmp_path):
    det = ProjectionDetector()
    values = []
    for batch_size, batch_gen in [(64, 16), (7, 3), (1, 1)]:
        opts = metric_utils.MetricOptions(**opts_kwargs(tmp_path, batch_size=batch_size, batch_gen=batch_gen, cache=False))
        fid = fid_mod.compute_fid(opts, max_real=200, num_gen=120, detector=det)
        kid = kid_mod.compute_kid(opts, max_real=200, num_gen=120, num_subsets=10, max_subset_size=50, detector=det)
        p, r = pr.compute_pr(opts, max_real=200, num_gen=120, nhood_size=3, row_batch_size=13 * batch_size, detector=det)
        values.append((fid, kid, p, r))
    for v in values[1:]:
        assert v == pytest.approx(values[0], rel=1e-6, abs=1e-9)


def test_real_statistics_are_cached_and_keyed(tmp_path):
    det = ProjectionDetector()
    kw = opts_kwargs(tmp_path)
    first = fid_mod.compute_fid(metric_utils.MetricOptions(**kw), max_real=100, num_gen=50, detector=det)
    files = sorted(os.listdir(tmp_path / 'stats'))
    assert len(files) == 1 and files[0].startswith('digits8-projection-64-12-') and files[0].endswith('.npz')
    calls = det.calls
    second = fid_mod.compute_fid(metric_utils.MetricOptions(**kw), max_real=100, num_gen=50, detector=det)
    gen_batches = -(-50 // 64)
    assert second == first and det.calls - calls == gen_batches  # the real images were not looked at again
    # A full-feature cache (KID) serves a later mean/covariance request; other options get other files.
    kid_mod.compute_kid(metric_utils.MetricOptions(**kw), max_real=80, num_gen=50, num_subsets=2, max_subset_size=20, detector=det)
    assert len(os.listdir(tmp_path / 'stats')) == 2
    calls = det.calls
    fid_mod.compute_fid(metric_utils.MetricOptions(**kw), max_real=80, num_gen=50, detector=det)
    assert det.calls - calls == gen_batches and len(os.listdir(tmp_path / 'stats')) == 2
    # No pickles: the cache loads with allow_pickle=False.
    stats = metric_utils.FeatureStats.load(str(tmp_path / 'stats' / files[0]))
    assert stats.num_items == 100 and stats.capture_mean_cov


def test_capped_real_set_is_a_seeded_random_subset(tmp_path):
    opts = metric_utils.MetricOptions(**opts_kwargs(tmp_path))
    items = metric_utils.real_item_indices(1797, 100, opts)
    assert len(items) == 100 == len(set(items)) and items == sorted(items) and items[-1] > 1000
    assert metric_utils.real_item_indices(1797, 5000, opts) == list(range(1797))


def test_registry_metrics_with_nvidia_format_detectors(tmp_path, capsys):
    ddir = make_detector_dir(tmp_path / 'det')
    kw = opts_kwargs(tmp_path, detector_dir=ddir, num_gen=64, max_real=128)
    fid = metric_main.calc_metric('fid50k_full', **kw)
    assert fid.results.fid50k_full > 0 and fid.detector.startswith('inception-v3 (NVIDIA') and fid.max_real == 128
    kid = metric_main.calc_metric('kid50k_full', **kw)
    assert np.isfinite(kid.results.kid50k_full)
    # Without VGG16, precision/recall falls back to Inception, says so once and records it.
    res = metric_main.calc_metric('pr50k3_full', **kw)
    assert 'vgg16 unavailable' in res.detector and 'warning: VGG16 unavailable' in capsys.readouterr().err
    assert 0 <= res.results.pr50k3_full_precision <= 1 and 0 <= res.results.pr50k3_full_recall <= 1
    with pytest.raises(DetectorUnavailable, match='vgg16.pt'):
        metric_main.calc_metric('pr50k3_full', **dict(kw, pr_detector='vgg16'))
    dc = metric_main.calc_metric('dc10k_full', **kw)
    assert dc.results.dc10k_full_density >= 0 and 0 <= dc.results.dc10k_full_coverage <= 1
    is_ = metric_main.calc_metric('is50k', **dict(kw, num_gen=50))
    assert 1 <= is_.results.is50k_mean <= 5
    # The same numbers from the detector applied by hand.
    det = detectors.load_detector_file(os.path.join(ddir, detectors.INCEPTION_FILENAME))
    real = det.features(real_digit_images())
    opts = metric_utils.MetricOptions(**kw)
    items = metric_utils.real_item_indices(len(real), 128, opts)
    gen = det.features(generated_images(TinyG(), 64))
    assert fid.results.fid50k_full == pytest.approx(fid_mod.fid_from_features(gen.numpy(), real[items].numpy()), rel=1e-6)


def test_pr_uses_vgg16_when_supplied(tmp_path, capsys):
    ddir = make_detector_dir(tmp_path / 'det', vgg=True)
    res = metric_main.calc_metric('pr50k3_full', **opts_kwargs(tmp_path, detector_dir=ddir, num_gen=40, max_real=60))
    assert res.detector == 'vgg16 (NVIDIA vgg16.pt)' and 'warning' not in capsys.readouterr().err
    res2 = metric_main.calc_metric('pr50k3_full', **opts_kwargs(tmp_path, detector_dir=ddir, num_gen=40, max_real=60,
                                                               pr_detector='inception'))
    assert res2.detector.startswith('inception')


def test_inception_score_needs_logits(tmp_path):
    # Only the wheel's Inception (no head) or nothing: the IS is refused with a clear message.
    with pytest.raises(DetectorUnavailable, match='classification head'):
        metric_main.calc_metric('is50k', **opts_kwargs(tmp_path, detector_dir=str(tmp_path / 'empty'), num_gen=20))


# ----------------------------------------------------------------------------
# PPL.


def test_ppl_matches_closed_form_for_linear_generator(tmp_path):
    G = LinearStyleG()
    n = 200
    opts = metric_utils.MetricOptions(**opts_kwargs(tmp_path, G=G, batch_gen=7))
    sq = lambda a, b: (a.double() - b.double()).square().flatten(1).sum(1)  # noqa: E731
    got = ppl_mod.compute_ppl(opts, num_samples=n, epsilon=1e-4, space='w', sampling='end', crop=False, distance=sq)
    sampler = metric_utils.LatentSampler(G.z_dim, seed=0)
    z0, z1 = torch.from_numpy(sampler.z(range(n), stream=0)).double(), torch.from_numpy(sampler.z(range(n), stream=1)).double()
    dw = (z1 - z0) @ G.M.detach().double()
    # Gray images are repeated to RGB before the distance (as for LPIPS): 3 equal channels.
    per_sample = (3 * 127.5 ** 2 * (dw @ G.B.detach().double()).square().sum(1)).numpy()
    lo, hi = np.percentile(per_sample, 1, method='lower'), np.percentile(per_sample, 99, method='higher')
    expected = per_sample[(per_sample >= lo) & (per_sample <= hi)].mean()
    assert got == pytest.approx(expected, rel=2e-3)
    # Batch size does not matter; Z-space and 'full' sampling also run.
    opts1 = metric_utils.MetricOptions(**opts_kwargs(tmp_path, G=G, batch_gen=1))
    assert ppl_mod.compute_ppl(opts1, n, 1e-4, 'w', 'end', False, distance=sq) == pytest.approx(got, rel=1e-6)
    assert ppl_mod.compute_ppl(opts, 50, 1e-4, 'z', 'full', False, distance=sq) > 0
    opts8 = metric_utils.MetricOptions(**opts_kwargs(tmp_path, G=LinearStyleG(res=8)))
    assert ppl_mod.compute_ppl(opts8, 50, 1e-4, 'z', 'full', True, distance=sq) > 0
    with pytest.raises(MetricError, match='crop'):
        ppl_mod.compute_ppl(opts, 50, 1e-4, 'z', 'full', True, distance=sq)


def test_ppl_registry_uses_lpips_from_vgg16_and_refuses_without(tmp_path):
    G = LinearStyleG(res=8)
    with pytest.raises(DetectorUnavailable, match='PPL needs LPIPS-VGG16'):
        metric_main.calc_metric('ppl2_wend', **opts_kwargs(tmp_path, G=G, num_gen=10, detector_dir=str(tmp_path / 'none')))
    with pytest.raises(MetricError, match='mapping'):
        metric_main.calc_metric('ppl2_wend', **opts_kwargs(tmp_path, G=TinyG(), num_gen=10))
    ddir = make_detector_dir(tmp_path / 'det', vgg=True)
    res = metric_main.calc_metric('ppl2_wend', **opts_kwargs(tmp_path, G=G, num_gen=40, detector_dir=ddir))
    # The fake LPIPS embedding is pixels / 255, so the value is the closed form divided by 255^2.
    sq = lambda a, b: (a / 255 - b / 255).square().flatten(1).sum(1)  # noqa: E731
    opts = metric_utils.MetricOptions(**opts_kwargs(tmp_path, G=G))
    assert res.results.ppl2_wend == pytest.approx(ppl_mod.compute_ppl(opts, 40, 1e-4, 'w', 'end', False, distance=sq), rel=1e-6)


def test_ppl_with_project_stylegan2_generator(tmp_path):
    networks = pytest.importorskip('training.networks')
    G = networks.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=1,
                           mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=64, channel_max=16))
    sq = lambda a, b: (a - b).square().flatten(1).sum(1)  # noqa: E731
    opts = metric_utils.MetricOptions(**opts_kwargs(tmp_path, G=G, batch_gen=4))
    value = ppl_mod.compute_ppl(opts, 12, 1e-4, 'w', 'end', False, distance=sq)
    assert np.isfinite(value) and value > 0
    opts = metric_utils.MetricOptions(**opts_kwargs(tmp_path, G=G, batch_gen=4))
    assert ppl_mod.compute_ppl(opts, 12, 1e-4, 'w', 'end', False, distance=sq) == value  # reproducible


# ----------------------------------------------------------------------------
# Category coverage, Geometry Score, batch EMD through the registry.


def test_category_coverage_pipeline(tmp_path):
    det = ProjectionDetector()
    opts = metric_utils.MetricOptions(**opts_kwargs(tmp_path))
    gen_stats, real_stats = category_coverage.compute_category_coverage(opts, num_gen=200, max_real=None, detector=det)
    exp_gen = category_coverage.category_stats(det.probabilities(generated_images(TinyG(), 200)).argmax(1).numpy(), 4)
    exp_real = category_coverage.category_stats(det.probabilities(real_digit_images()).argmax(1).numpy(), 4)
    assert gen_stats == exp_gen and real_stats == exp_real


def test_cat_cov_refuses_unsupported_shapes(tmp_path):
    # RGB 8x8 images of some other data set, and 4x4 images even of the digits: no classifier fits.
    folder = dict(class_name='training.dataset.ImageFolderDataset', path=str(tmp_path / 'images.zip'))
    with pytest.raises(MetricError, match='category coverage has classifiers'):
        metric_main.calc_metric('cat_cov10k', **opts_kwargs(tmp_path, G=TinyG(res=8, ch=3), num_gen=10,
                                                            dataset_kwargs=folder))
    with pytest.raises(MetricError, match='category coverage has classifiers'):
        metric_main.calc_metric('cat_cov1k', **opts_kwargs(tmp_path, G=TinyG(res=4, ch=1), num_gen=10))


def test_gs_and_emd_through_registry(tmp_path):
    kw = opts_kwargs(tmp_path, num_gen=100)
    gs = metric_main.calc_metric('gs1k', **kw)
    assert gs.results.gs1k >= 0 and gs.detector == 'pixels in [-1, 1]'
    emd_good = metric_main.calc_metric('emd64', **opts_kwargs(tmp_path, num_gen=128))
    emd_gray = metric_main.calc_metric('emd64', **opts_kwargs(tmp_path, num_gen=128, G=TinyG(offset=50.0)))
    assert emd_gray.results.emd64_floor == emd_good.results.emd64_floor > 0  # the real-vs-real floor
    assert emd_gray.results.emd64 > emd_gray.results.emd64_floor  # a constant white image is far from digits


# ----------------------------------------------------------------------------
# Two processes (gloo on CPU) give the single-process numbers.


def _distributed_worker(rank, init_file, kw, out_dir):
    torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    try:
        det = ProjectionDetector()
        opts = metric_utils.MetricOptions(**dict(kw, num_gpus=2, rank=rank))
        fid = fid_mod.compute_fid(opts, max_real=150, num_gen=101, detector=det)
        p, r = pr.compute_pr(opts, max_real=150, num_gen=101, nhood_size=3, row_batch_size=16, detector=det)
        with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(dict(fid=fid, p=p, r=r), f)
    finally:
        torch.distributed.destroy_process_group()


def test_two_process_evaluation_equals_single_process(tmp_path):
    kw = opts_kwargs(tmp_path, cache=False)
    torch.multiprocessing.spawn(_distributed_worker, args=(str(tmp_path / 'init'), kw, str(tmp_path)), nprocs=2)
    det = ProjectionDetector()
    opts = metric_utils.MetricOptions(**kw)
    single = dict(fid=fid_mod.compute_fid(opts, max_real=150, num_gen=101, detector=det))
    single['p'], single['r'] = pr.compute_pr(opts, max_real=150, num_gen=101, nhood_size=3, detector=det)
    for rank in range(2):
        got = json.loads((tmp_path / f'rank{rank}.json').read_text())
        assert got == pytest.approx(single, rel=1e-9)
