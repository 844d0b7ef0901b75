"""StyleGAN2 generator and discriminator (training/networks.py): parity with the paper's Table 5,
layers against direct computations, truncation, noise, style mixing, conditioning, gradients,
reduced precision, channels_last, persistence and state-dict names."""

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dnnlib
from torch_utils import persistence
from training import networks

# ----------------------------------------------------------------------------
# Helpers.


def small_G(seed=0, c_dim=0, res=16, **synthesis_kwargs):
    torch.manual_seed(seed)
    kwargs = dict(channel_base=128, channel_max=16)
    kwargs.update(synthesis_kwargs)
    return networks.Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=res, img_channels=3,
                              mapping_kwargs=dict(num_layers=2), synthesis_kwargs=kwargs)


def small_D(seed=0, c_dim=0, res=16, **kwargs):
    torch.manual_seed(seed)
    args = dict(channel_base=128, channel_max=16)
    args.update(kwargs)
    return networks.Discriminator(c_dim=c_dim, img_resolution=res, img_channels=3, **args)


def one_hot(labels, c_dim):
    return F.one_hot(torch.as_tensor(labels), c_dim).to(torch.float32)


def capture(module, names):
    """Context-free helper: register hooks that store the first output tensor of each named submodule."""
    store = {}
    modules = dict(module.named_modules())

    def hook(name):
        def fn(_m, _inp, out):
            store[name] = out[0] if isinstance(out, tuple) else out
        return fn
    handles = [modules[name].register_forward_hook(hook(name)) for name in names]
    return store, handles


# ----------------------------------------------------------------------------
# Parity with seed 000 Table 5 (256x256, channel_base 16384, 2 mapping layers, no conditioning).

TABLE5_G = [
    ('mapping.fc0', 262656, [32, 512]),
    ('mapping.fc1', 262656, [32, 512]),
    ('synthesis.b4.conv1', 2622465, [32, 512, 4, 4]),
    ('synthesis.b4.torgb', 264195, [32, 3, 4, 4]),
    ('synthesis.b4:0', 8192, [32, 512, 4, 4]),
    ('synthesis.b8.conv0', 2622465, [32, 512, 8, 8]),
    ('synthesis.b8.conv1', 2622465, [32, 512, 8, 8]),
    ('synthesis.b8.torgb', 264195, [32, 3, 8, 8]),
    ('synthesis.b16.conv0', 2622465, [32, 512, 16, 16]),
    ('synthesis.b16.conv1', 2622465, [32, 512, 16, 16]),
    ('synthesis.b16.torgb', 264195, [32, 3, 16, 16]),
    ('synthesis.b32.conv0', 2622465, [32, 512, 32, 32]),
    ('synthesis.b32.conv1', 2622465, [32, 512, 32, 32]),
    ('synthesis.b32.torgb', 264195, [32, 3, 32, 32]),
    ('synthesis.b64.conv0', 1442561, [32, 256, 64, 64]),
    ('synthesis.b64.conv1', 721409, [32, 256, 64, 64]),
    ('synthesis.b64.torgb', 132099, [32, 3, 64, 64]),
    ('synthesis.b128.conv0', 426369, [32, 128, 128, 128]),
    ('synthesis.b128.conv1', 213249, [32, 128, 128, 128]),
    ('synthesis.b128.torgb', 66051, [32, 3, 128, 128]),
    ('synthesis.b256.conv0', 139457, [32, 64, 256, 256]),
    ('synthesis.b256.conv1', 69761, [32, 64, 256, 256]),
    ('synthesis.b256.torgb', 33027, [32, 3, 256, 256]),
]
TABLE5_D = [
    ('b256.fromrgb', 256, [32, 64, 256, 256]),
    ('b256.skip', 8192, [32, 128, 128, 128]),
    ('b256.conv0', 36928, [32, 64, 256, 256]),
    ('b256.conv1', 73856, [32, 128, 128, 128]),
    ('b128.skip', 32768, [32, 256, 64, 64]),
    ('b128.conv0', 147584, [32, 128, 128, 128]),
    ('b128.conv1', 295168, [32, 256, 64, 64]),
    ('b64.skip', 131072, [32, 512, 32, 32]),
    ('b64.conv0', 590080, [32, 256, 64, 64]),
    ('b64.conv1', 1180160, [32, 512, 32, 32]),
    ('b32.skip', 262144, [32, 512, 16, 16]),
    ('b32.conv0', 2359808, [32, 512, 32, 32]),
    ('b32.conv1', 2359808, [32, 512, 16, 16]),
    ('b16.skip', 262144, [32, 512, 8, 8]),
    ('b16.conv0', 2359808, [32, 512, 16, 16]),
    ('b16.conv1', 2359808, [32, 512, 8, 8]),
    ('b8.skip', 262144, [32, 512, 4, 4]),
    ('b8.conv0', 2359808, [32, 512, 8, 8]),
    ('b8.conv1', 2359808, [32, 512, 4, 4]),
    ('b4.conv', 2364416, [32, 512, 4, 4]),
    ('b4.fc', 4194816, [32, 512]),
    ('b4.out', 513, [32, 1]),
]


def _row_params(net, row):
    modules = dict(net.named_modules())
    if row.endswith(':0'):  # the block's own tensors (stylegan2-ada prints the const this way)
        return sum(p.numel() for p in modules[row[:-2]].parameters(recurse=False))
    return sum(p.numel() for p in modules[row].parameters())


def _paper_networks():
    G_kwargs, D_kwargs = networks.paper256_kwargs()
    return dnnlib.util.construct_class_by_name(**G_kwargs), dnnlib.util.construct_class_by_name(**D_kwargs)


def test_table5_parameter_counts():
    G, D = _paper_networks()
    assert sum(p.numel() for p in G.parameters()) == 23_191_522
    assert sum(p.numel() for p in D.parameters()) == 24_001_089
    for net, table in ((G, TABLE5_G), (D, TABLE5_D)):
        got = [(row, _row_params(net, row)) for row, _, _ in table]
        assert got == [(row, count) for row, count, _ in table]
        # The rows account for every parameter: nothing else is hidden in the networks.
        assert sum(count for _, count, _ in table) == sum(p.numel() for p in net.parameters())


def test_table5_output_shapes_on_meta_device():
    # Shapes only: the meta device runs the 256x256 networks at batch 32 without computing anything.
    G, D = _paper_networks()
    G, D = G.to('meta'), D.to('meta')
    z = torch.empty([32, 512], device='meta')
    c = torch.empty([32, 0], device='meta')
    store_g, handles = capture(G, [row.replace(':0', '') for row, _, _ in TABLE5_G])
    img = G(z, c, noise_mode='none')
    for h in handles:
        h.remove()
    assert list(img.shape) == [32, 3, 256, 256]
    for row, _, shape in TABLE5_G:
        assert list(store_g[row.replace(':0', '')].shape) == shape, row
    store_d, handles = capture(D, [row for row, _, _ in TABLE5_D])
    logits = D(img, c)
    for h in handles:
        h.remove()
    assert list(logits.shape) == [32, 1]
    for row, _, shape in TABLE5_D:
        assert list(store_d[row].shape) == shape, row


def test_paper_summary_prints_table5_rows(monkeypatch):
    # Exercise print_paper_summary cheaply: the same code path on a 16x16 stand-in configuration.
    original = networks.paper256_kwargs

    def tiny_kwargs(num_fp16_res=4, conv_clamp=256):
        G_kwargs, D_kwargs = original(num_fp16_res, conv_clamp)
        G_kwargs.update(img_resolution=16, z_dim=8, w_dim=8)
        G_kwargs['synthesis_kwargs'].update(channel_base=64, channel_max=8)
        D_kwargs.update(img_resolution=16, channel_base=64, channel_max=8)
        return G_kwargs, D_kwargs
    monkeypatch.setattr(networks, 'paper256_kwargs', tiny_kwargs)
    import io
    buf = io.StringIO()
    networks.print_paper_summary(batch_size=2, file=buf)
    text = buf.getvalue()
    for name in ('mapping.fc0', 'mapping.fc1', 'synthesis.b4.conv1', 'synthesis.b4.torgb',
                 'synthesis.b16.torgb', 'b16.fromrgb', 'b16.skip', 'b8.conv1', 'b4.conv', 'b4.fc', 'b4.out'):
        assert name in text, name
    # Table 5's "synthesis.b4:0" row: the block's own parameter, the 8 x 4 x 4 constant input.
    rows = [line.split() for line in text.splitlines()]
    assert any(r[0] == '128' and r[-1] == 'synthesis.b4:0' for r in rows if r)
    assert text.count('Total') == 2


# ----------------------------------------------------------------------------
# Layers against direct computations.


def _naive_modconv(x, weight, styles, demodulate, padding):
    """Per-sample convolution with an explicitly modulated (and demodulated) float64 weight."""
    out = []
    for n in range(x.shape[0]):
        w = weight.double() * styles[n].double().reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        out.append(F.conv2d(x[n:n + 1].double(), w, padding=padding))
    return torch.cat(out)


@pytest.mark.parametrize('demodulate', [True, False])
@pytest.mark.parametrize('fused', [True, False])
def test_modulated_conv2d_matches_per_sample_reference(demodulate, fused):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 6, 6)
    weight = torch.randn(4, 5, 3, 3)
    styles = torch.randn(3, 5)
    noise = torch.randn(3, 1, 6, 6)
    got = networks.modulated_conv2d(x, weight, styles, noise=noise, padding=1, demodulate=demodulate,
                                    fused_modconv=fused)
    want = _naive_modconv(x, weight, styles, demodulate, padding=1) + noise.double()
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


def test_modulated_conv2d_upsampling_paths_agree():
    from torch_utils.ops import conv2d_resample, upfirdn2d
    torch.manual_seed(1)
    x = torch.randn(2, 4, 5, 5)
    weight = torch.randn(3, 4, 3, 3)
    styles = torch.randn(2, 4)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    fused = networks.modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=f, flip_weight=False,
                                      fused_modconv=True)
    split = networks.modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=f, flip_weight=False,
                                      fused_modconv=False)
    # Reference: the resampling convolution of each sample with its own demodulated weight.
    ref = []
    for n in range(2):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        ref.append(conv2d_resample.conv2d_resample(x[n:n + 1], w, f=f, up=2, padding=1, flip_weight=False))
    ref = torch.cat(ref)
    assert fused.shape == (2, 3, 10, 10)
    torch.testing.assert_close(fused, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(split, ref, rtol=1e-4, atol=1e-4)


def test_synthesis_layer_and_torgb_match_formulas():
    torch.manual_seed(2)
    layer = networks.SynthesisLayer(4, 3, w_dim=6, resolution=8, conv_clamp=0.5)
    with torch.no_grad():
        layer.noise_strength.fill_(0.3)
        layer.bias.normal_()
    x = torch.randn(2, 4, 8, 8)
    w = torch.randn(2, 6)
    got = layer(x, w, noise_mode='const', gain=2.0)
    styles = w.double() @ (layer.affine.weight.double() / math.sqrt(6)).t() + layer.affine.bias.double()
    y = _naive_modconv(x, layer.weight, styles, True, 1) + layer.noise_const.double() * 0.3
    y = F.leaky_relu(y + layer.bias.double().reshape(1, -1, 1, 1), 0.2) * math.sqrt(2) * 2.0
    torch.testing.assert_close(got.double(), y.clamp(-1.0, 1.0), rtol=1e-4, atol=1e-4)
    assert (got.abs() == 1.0).any()  # the clamp (conv_clamp * gain) is active

    torgb = networks.ToRGBLayer(4, 3, w_dim=6, conv_clamp=256)
    with torch.no_grad():
        torgb.bias.normal_()
    got = torgb(x, w)
    styles = (w.double() @ (torgb.affine.weight.double() / math.sqrt(6)).t() + torgb.affine.bias.double()) / 2.0
    want = _naive_modconv(x, torgb.weight, styles, False, 0) + torgb.bias.double().reshape(1, -1, 1, 1)
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


def test_mapping_network_matches_numpy():
    torch.manual_seed(3)
    mapping = networks.MappingNetwork(z_dim=5, c_dim=3, w_dim=4, num_ws=6, num_layers=3, lr_multiplier=0.01)
    z = torch.randn(7, 5)
    c = one_hot([0, 1, 2, 0, 1, 2, 0], 3)
    got = mapping(z, c).detach().numpy()
    assert got.shape == (7, 6, 4)

    def fc(x, layer, lr, act):
        w = layer.weight.detach().double().numpy() * lr / math.sqrt(x.shape[1])
        y = x @ w.T + layer.bias.detach().double().numpy() * lr
        return np.where(y >= 0, y, 0.2 * y) * math.sqrt(2) if act else y

    def norm(x):
        return x / np.sqrt((x ** 2).mean(axis=1, keepdims=True) + 1e-8)
    x = norm(z.double().numpy())
    y = norm(fc(c.double().numpy(), mapping.embed, 1.0, False))
    h = np.concatenate([x, y], axis=1)
    for i in range(3):
        h = fc(h, getattr(mapping, f'fc{i}'), 0.01, True)
    for k in range(6):
        np.testing.assert_allclose(got[:, k], h, rtol=1e-4, atol=1e-5)


def test_minibatch_std_matches_numpy():
    torch.manual_seed(4)
    x = torch.randn(8, 6, 3, 3)
    layer = networks.MinibatchStdLayer(group_size=4, num_channels=2)
    got = layer(x).numpy()
    assert got.shape == (8, 8, 3, 3)
    np.testing.assert_array_equal(got[:, :6], x.numpy())
    xn = x.double().numpy()
    slices = 8 // 4
    for n in range(8):
        members = xn[n % slices::slices]  # stylegan2-ada's interleaved groups
        assert members.shape[0] == 4
        std = np.sqrt(members.var(axis=0) + 1e-8)  # [C, H, W]
        for f in range(2):
            want = std[f * 3:(f + 1) * 3].mean()
            np.testing.assert_allclose(got[n, 6 + f], want, rtol=1e-5)
    with pytest.raises(ValueError, match='not divisible by the group size'):
        layer(torch.randn(6, 6, 3, 3))
    # A group size above the batch size uses the whole batch.
    assert networks.MinibatchStdLayer(group_size=32)(torch.randn(3, 2, 4, 4)).shape == (3, 3, 4, 4)


def test_conv2d_layer_and_fc_equalised_learning_rate():
    torch.manual_seed(5)
    conv = networks.Conv2dLayer(3, 4, kernel_size=3, activation='lrelu')
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 3, 5, 5)
    want = F.conv2d(x.double(), conv.weight.double() / math.sqrt(27), conv.bias.double(), padding=1)
    want = F.leaky_relu(want, 0.2) * math.sqrt(2)
    torch.testing.assert_close(conv(x).double(), want, rtol=1e-5, atol=1e-5)
    fc = networks.FullyConnectedLayer(6, 2, lr_multiplier=0.1, bias_init=1)
    assert torch.allclose(fc.bias, torch.ones(2))
    x = torch.randn(4, 6)
    want = x.double() @ (fc.weight.double() * 0.1 / math.sqrt(6)).t() + 0.1
    torch.testing.assert_close(fc(x).double(), want, rtol=1e-5, atol=1e-6)
    # Weights are stored at 1/lr_multiplier scale so that the effective initial weights are N(0, 1/in).
    big = networks.FullyConnectedLayer(100, 400, lr_multiplier=0.01)
    assert abs(float(big.weight.detach().std()) * 0.01 - 1.0) < 0.05


# ----------------------------------------------------------------------------
# Whole networks.


@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
@pytest.mark.parametrize('res', [8, 32])
def test_shapes_and_num_ws(architecture, res):
    G = small_G(res=res, architecture=architecture)
    D = small_D(res=res, architecture=architecture)
    assert G.num_ws == 2 * int(math.log2(res)) - 2
    z = torch.randn(4, 8)
    ws = G.mapping(z, None)
    assert ws.shape == (4, G.num_ws, 8)
    img = G(z, None)
    assert img.shape == (4, 3, res, res) and img.dtype == torch.float32
    logits = D(img, None)
    assert logits.shape == (4, 1) and logits.dtype == torch.float32
    has_torgb = [hasattr(getattr(G.synthesis, f'b{r}'), 'torgb') for r in G.synthesis.block_resolutions]
    assert has_torgb == ([True] * len(has_torgb) if architecture == 'skip' else [False] * (len(has_torgb) - 1) + [True])


def test_channel_counts_follow_channel_base_and_max():
    G = small_G(res=32, channel_base=256, channel_max=32)
    assert [getattr(G.synthesis, f'b{r}').conv1.weight.shape[0] for r in (4, 8, 16, 32)] == [32, 32, 16, 8]
    D = small_D(res=32, channel_base=256, channel_max=32)
    assert [getattr(D, f'b{r}').conv1.weight.shape[0] for r in (32, 16, 8)] == [16, 32, 32]


def test_determinism_for_a_fixed_seed():
    G1, G2 = small_G(seed=11), small_G(seed=11)
    for (n1, t1), (n2, t2) in zip(G1.state_dict().items(), G2.state_dict().items()):
        assert n1 == n2 and torch.equal(t1, t2)
    z = torch.randn(3, 8)
    torch.manual_seed(5)
    a = G1(z, None)
    torch.manual_seed(5)
    b = G2(z, None)
    assert torch.equal(a, b)
    assert torch.equal(G1(z, None, noise_mode='const'), G2(z, None, noise_mode='const'))
    assert not torch.equal(small_G(seed=12)(z, None, noise_mode='const'), a)


def test_truncation_psi_zero_gives_the_w_avg_image():
    G = small_G().eval()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    z = torch.randn(4, 8)
    img = G(z, None, truncation_psi=0, noise_mode='const')
    ws_avg = G.mapping.w_avg.reshape(1, 1, -1).repeat(4, G.num_ws, 1)
    torch.testing.assert_close(img, G.synthesis(ws_avg, noise_mode='const'))
    assert (img - img[:1]).abs().max() < 1e-5  # every latent gives the same image
    # psi and cutoff: the first `cutoff` ws are pulled towards w_avg, the others untouched.
    ws = G.mapping(z, None)
    ws_t = G.mapping(z, None, truncation_psi=0.3, truncation_cutoff=2)
    torch.testing.assert_close(ws_t[:, :2], G.mapping.w_avg + 0.3 * (ws[:, :2] - G.mapping.w_avg))
    torch.testing.assert_close(ws_t[:, 2:], ws[:, 2:])
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=0.3),
                               G.mapping.w_avg + 0.3 * (ws - G.mapping.w_avg))


def test_w_avg_tracking_only_when_asked():
    G = small_G()
    z = torch.randn(16, 8)
    before = G.mapping.w_avg.clone()
    G.mapping(z, None)
    assert torch.equal(G.mapping.w_avg, before)
    G(z, None, update_emas=True)
    w = G.mapping(z, None)[:, 0]
    torch.testing.assert_close(G.mapping.w_avg, w.mean(dim=0) * (1 - 0.995) + before * 0.995)


def test_noise_modes():
    G = small_G().eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith('noise_strength'):
                p.fill_(0.5)
    const_a = G(z, None, noise_mode='const')
    const_b = G(z, None, noise_mode='const')
    assert torch.equal(const_a, const_b)
    random_a = G(z, None, noise_mode='random')
    random_b = G(z, None)  # stylegan2-ada's default is random noise
    assert (random_a - random_b).abs().max() > 1e-4
    none = G(z, None, noise_mode='none')
    assert (none - const_a).abs().max() > 1e-4
    # 'none' is the same as zero noise strength; 'const' is the same as zeroed noise_const buffers.
    G0 = copy.deepcopy(G)
    with torch.no_grad():
        for name, p in G0.named_parameters():
            if name.endswith('noise_strength'):
                p.zero_()
    torch.testing.assert_close(G0(z, None, noise_mode='random'), none)
    with torch.no_grad():
        for name, b in G.named_buffers():
            if name.endswith('noise_const'):
                b.zero_()
    torch.testing.assert_close(G(z, None, noise_mode='const'), none)
    with pytest.raises(ValueError, match="noise_mode must be one of 'random', 'const', 'none'"):
        G(z, None, noise_mode='fixed')


def test_style_mixing_uses_per_layer_ws():
    G = small_G(res=16).eval()
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    ws1, ws2 = G.mapping(z1, None), G.mapping(z2, None)
    assert torch.equal(G(z1, None, noise_mode='const'), G.synthesis(ws1, noise_mode='const'))
    cutoff = 2  # b4 uses ws[:, 0] (conv1) and ws[:, 1] (torgb); b8 starts at ws[:, 1]
    mixed = torch.cat([ws1[:, :cutoff], ws2[:, cutoff:]], dim=1)
    store, handles = capture(G.synthesis, ['b4', 'b8'])
    G.synthesis(ws1, noise_mode='const')
    ref = {k: v.clone() for k, v in store.items()}
    img_mixed = G.synthesis(mixed, noise_mode='const')
    for h in handles:
        h.remove()
    assert torch.equal(store['b4'], ref['b4'])            # layers before the cutoff see only ws1
    assert (store['b8'] - ref['b8']).abs().max() > 1e-4   # later layers see ws2
    assert (img_mixed - G.synthesis(ws2, noise_mode='const')).abs().max() > 1e-4


def test_conditional_generator_and_projection_discriminator():
    G = small_G(c_dim=3).eval()
    D = small_D(c_dim=3, mapping_kwargs=dict(num_layers=2)).eval()
    z = torch.randn(4, 8)
    c_a, c_b = one_hot([0, 0, 0, 0], 3), one_hot([1, 1, 1, 1], 3)
    img = G(z, c_a, noise_mode='const')
    assert img.shape == (4, 3, 16, 16)
    assert (img - G(z, c_b, noise_mode='const')).abs().max() > 1e-4
    assert D.b4.out.out_features == D.b4.cmap_dim == 16  # cmap_dim defaults to the 4x4 channel count
    store, handles = capture(D, ['b4.out', 'mapping'])
    logits = D(img, c_b)
    for h in handles:
        h.remove()
    want = (store['b4.out'] * store['mapping']).sum(dim=1, keepdim=True) / math.sqrt(16)
    torch.testing.assert_close(logits, want)
    torch.testing.assert_close(store['mapping'], D.mapping(None, c_b))
    with pytest.raises(AssertionError, match='c'):
        D(img, torch.zeros(4, 2))


@pytest.mark.parametrize('g_arch,d_arch', [('skip', 'resnet'), ('resnet', 'skip'), ('orig', 'orig')])
def test_gradients_reach_every_parameter(g_arch, d_arch):
    G = small_G(c_dim=2, architecture=g_arch)
    D = small_D(c_dim=2, architecture=d_arch, mapping_kwargs=dict(num_layers=1))
    c = one_hot([0, 1, 1, 0], 2)
    img = G(torch.randn(4, 8), c)
    loss = F.softplus(-D(img, c)).sum() + F.softplus(D(torch.randn_like(img), c)).sum()
    loss.backward()
    for net in (G, D):
        for name, p in net.named_parameters():
            assert p.grad is not None, f'{type(net).__name__}.{name} got no gradient'
            assert p.grad.abs().max() > 0, f'{type(net).__name__}.{name} got a zero gradient'
            assert torch.isfinite(p.grad).all()


def test_fused_and_non_fused_networks_agree():
    G = small_G().eval()
    ws = G.mapping(torch.randn(3, 8), None)
    a = G.synthesis(ws, noise_mode='const', fused_modconv=True)
    b = G.synthesis(ws, noise_mode='const', fused_modconv=False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    G.train()  # the training default (non-fused) gives the same images too
    torch.testing.assert_close(G.synthesis(ws, noise_mode='const'), a, rtol=1e-4, atol=1e-4)


def _relative_error(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize('dtype_name', ['bfloat16', 'float16'])
def test_reduced_precision_close_to_float32(dtype_name):
    dtype = getattr(torch, dtype_name)
    G = small_G(res=16, num_fp16_res=2, conv_clamp=256, reduced_dtype=dtype_name).eval()
    D = small_D(res=16, num_fp16_res=2, conv_clamp=256, reduced_dtype=dtype_name).eval()
    ws = G.mapping(torch.randn(4, 8), None)
    store, handles = capture(G.synthesis, ['b8', 'b16', 'b4'])
    img = G.synthesis(ws, noise_mode='const')
    for h in handles:
        h.remove()
    assert store['b16'].dtype == dtype and store['b8'].dtype == dtype and store['b4'].dtype == torch.float32
    assert img.dtype == torch.float32
    ref = G.synthesis(ws, noise_mode='const', force_fp32=True)
    img, ref = img.detach(), ref.detach()
    assert _relative_error(img, ref) < 0.05
    assert np.corrcoef(img.flatten().numpy(), ref.flatten().numpy())[0, 1] > 0.999
    store, handles = capture(D, ['b16', 'b8'])
    logits = D(ref, None)
    for h in handles:
        h.remove()
    assert store['b16'].dtype == dtype and store['b8'].dtype == dtype
    ref_logits = D(ref, None, force_fp32=True).detach()
    logits = logits.detach()
    assert logits.dtype == torch.float32
    assert _relative_error(logits, ref_logits) < 0.05


def test_auto_reduced_precision_runs_float32_on_cpu():
    G = small_G(res=16, num_fp16_res=2, conv_clamp=256)
    D = small_D(res=16, num_fp16_res=2, conv_clamp=256)
    assert G.synthesis.b16.use_fp16 and not G.synthesis.b4.use_fp16
    store, handles = capture(G.synthesis, ['b16'])
    img = G(torch.randn(2, 8), None)
    for h in handles:
        h.remove()
    assert store['b16'].dtype == torch.float32
    assert torch.isfinite(D(img, None)).all()


def test_channels_last_gives_the_same_result():
    G = small_G(res=16, num_fp16_res=2).eval()
    G_cl = small_G(res=16, num_fp16_res=2, fp16_channels_last=True).eval()
    G_cl.load_state_dict(G.state_dict())
    ws = G.mapping(torch.randn(3, 8), None)
    store, handles = capture(G_cl.synthesis, ['b16.conv1'])
    img_cl = G_cl.synthesis(ws, noise_mode='const')
    for h in handles:
        h.remove()
    assert store['b16.conv1'].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(img_cl, G.synthesis(ws, noise_mode='const'), rtol=1e-4, atol=1e-5)
    D = small_D(res=16, num_fp16_res=2)
    D_cl = small_D(res=16, num_fp16_res=2, block_kwargs=dict(fp16_channels_last=True))
    D_cl.load_state_dict(D.state_dict())
    torch.testing.assert_close(D_cl(img_cl, None), D(img_cl, None), rtol=1e-4, atol=1e-5)


def test_freeze_layers_turns_the_first_layers_into_buffers():
    D = small_D(res=16, block_kwargs=dict(freeze_layers=2))
    params = dict(D.named_parameters())
    buffers = dict(D.named_buffers())
    assert 'b16.fromrgb.weight' in buffers and 'b16.conv0.weight' in buffers
    assert 'b16.conv1.weight' in params and 'b8.conv0.weight' in params


# ----------------------------------------------------------------------------
# Names, persistence, errors.


def _layer_keys(prefix, names):
    return {f'{prefix}.{n}' for n in names}


SYN_LAYER = ['weight', 'bias', 'noise_strength', 'noise_const', 'resample_filter', 'affine.weight', 'affine.bias']
TORGB = ['weight', 'bias', 'affine.weight', 'affine.bias']
CONV = ['weight', 'bias', 'resample_filter']


def test_state_dict_names_match_stylegan2_ada():
    G = small_G(c_dim=2, res=8)
    want = {'mapping.w_avg', 'mapping.embed.weight', 'mapping.embed.bias', 'mapping.fc0.weight', 'mapping.fc0.bias',
            'mapping.fc1.weight', 'mapping.fc1.bias', 'synthesis.b4.const', 'synthesis.b4.resample_filter',
            'synthesis.b8.resample_filter'}
    want |= _layer_keys('synthesis.b4.conv1', SYN_LAYER) | _layer_keys('synthesis.b4.torgb', TORGB)
    want |= _layer_keys('synthesis.b8.conv0', SYN_LAYER) | _layer_keys('synthesis.b8.conv1', SYN_LAYER)
    want |= _layer_keys('synthesis.b8.torgb', TORGB)
    assert set(G.state_dict()) == want
    D = small_D(c_dim=2, res=8, mapping_kwargs=dict(num_layers=2))
    want = {'b8.resample_filter', 'b8.skip.weight', 'b8.skip.resample_filter'}
    want |= _layer_keys('b8.fromrgb', CONV) | _layer_keys('b8.conv0', CONV) | _layer_keys('b8.conv1', CONV)
    want |= _layer_keys('b4.conv', CONV) | {'b4.fc.weight', 'b4.fc.bias', 'b4.out.weight', 'b4.out.bias'}
    want |= {'mapping.embed.weight', 'mapping.embed.bias', 'mapping.fc0.weight', 'mapping.fc0.bias',
             'mapping.fc1.weight', 'mapping.fc1.bias'}
    assert set(D.state_dict()) == want


def test_persistence_roundtrip():
    G = small_G(c_dim=2, num_fp16_res=1, conv_clamp=256, reduced_dtype='bfloat16')
    D = small_D(c_dim=2, architecture='skip')
    for net in (G, D):
        config = json.loads(json.dumps(persistence.get_config(net)))
        assert config['class_name'] in ('training.networks.Generator', 'training.networks.Discriminator')
        clone = persistence.build(config)
        clone.load_state_dict(net.state_dict())
    G2 = persistence.build(json.loads(json.dumps(persistence.get_config(G))))
    G2.load_state_dict(G.state_dict())
    z, c = torch.randn(2, 8), one_hot([0, 1], 2)
    torch.testing.assert_close(G2(z, c, noise_mode='const'), G(z, c, noise_mode='const'))


def test_errors():
    with pytest.raises(ValueError, match='img_resolution must be a power of two'):
        small_G(res=24)
    with pytest.raises(ValueError, match="architecture must be one of 'orig', 'skip', 'resnet'"):
        small_G(architecture='linear')
    with pytest.raises(ValueError, match="reduced_dtype must be one of 'auto', 'float16', 'bfloat16'"):
        small_D(reduced_dtype='half')
    with pytest.raises(ValueError, match='needs z_dim > 0 or c_dim > 0'):
        networks.MappingNetwork(z_dim=0, c_dim=0, w_dim=4, num_ws=2)
    G = small_G()
    with pytest.raises(AssertionError, match='z'):
        G(torch.randn(2, 7), None)
    with pytest.raises(AssertionError, match='ws'):
        G.synthesis(torch.randn(2, G.num_ws + 1, 8))
    with pytest.raises(AssertionError, match='img'):
        small_D()(torch.randn(2, 3, 8, 8), None)
    with pytest.raises(ValueError, match='not divisible by the group size'):
        small_D()(torch.randn(6, 3, 16, 16), None)
    D = small_D(mapping_kwargs={})
    assert not hasattr(D, 'mapping')


@pytest.mark.cuda
def test_float16_on_cuda_close_to_float32():
    G = small_G(res=32, num_fp16_res=2, conv_clamp=256).cuda().eval()
    D = small_D(res=32, num_fp16_res=2, conv_clamp=256).cuda().eval()
    ws = G.mapping(torch.randn(4, 8, device='cuda'), None)
    store, handles = capture(G.synthesis, ['b32'])
    img = G.synthesis(ws, noise_mode='const')
    for h in handles:
        h.remove()
    assert store['b32'].dtype == torch.float16
    ref = G.synthesis(ws, noise_mode='const', force_fp32=True)
    assert _relative_error(img, ref) < 0.02
    assert _relative_error(D(ref, None), D(ref, None, force_fp32=True)) < 0.02
    # The CUDA output agrees with the CPU float32 output of the same weights.
    G_cpu = copy.deepcopy(G).cpu()
    torch.testing.assert_close(G_cpu.synthesis(ws.cpu(), noise_mode='const', force_fp32=True), ref.cpu(),
                               rtol=1e-3, atol=1e-3)
