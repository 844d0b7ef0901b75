"""The paper's other architecture families (training/networks_paper.py) and the --arch registry
(training/architectures.py): shapes per family and resolution, the tables' layer plans, conditioning,
packing, maxout and spectral normalisation against independent computations, gradients, determinism,
persistence and one-line errors."""

import json

import numpy as np
import pytest
import torch

import dnnlib
from torch_utils import persistence
from training import architectures
from training import networks_paper as NP

# Small configurations (fast on 2 CPU cores) of every family: (G kwargs, D kwargs).
SMALL = {
    'dcgan32': (dict(class_name='training.networks_paper.DCGANGenerator', z_dim=16, img_resolution=32,
                     img_channels=3, channel_base=256, channel_max=32),
                dict(class_name='training.networks_paper.DCGANDiscriminator', img_resolution=32, img_channels=3,
                     channel_base=256, channel_max=32, spectral_norm=True)),
    'dcgan64': (dict(class_name='training.networks_paper.DCGANGenerator', z_dim=16, img_resolution=64,
                     img_channels=1, channel_base=256, channel_max=32),
                dict(class_name='training.networks_paper.DCGANDiscriminator', img_resolution=64, img_channels=1,
                     channel_base=256, channel_max=32)),
    'cnn': (dict(class_name='training.networks_paper.CNNGenerator', z_dim=16, img_channels=3, width=8),
            dict(class_name='training.networks_paper.CNNDiscriminator', img_channels=3, width=8)),
    'resnet32-skip': (dict(class_name='training.networks_paper.ResNetGenerator', z_dim=16, img_resolution=32,
                           img_channels=3, channel_max=16),
                      dict(class_name='training.networks_paper.ResNetDiscriminator', img_resolution=32, img_channels=3,
                           architecture='skip', channel_max=16, spectral_norm=True)),
    'resnet64-resnet': (dict(class_name='training.networks_paper.ResNetGenerator', z_dim=16, img_resolution=64,
                             img_channels=3, channel_base=512, channel_max=16),
                        dict(class_name='training.networks_paper.ResNetDiscriminator', img_resolution=64,
                             img_channels=3, architecture='resnet', channel_base=512, channel_max=16)),
    'stacked28-veegan': (dict(class_name='training.networks_paper.StackedMNISTGenerator', z_dim=16, img_resolution=28,
                              channels=[32, 16, 8, 4]),
                         dict(class_name='training.networks_paper.StackedMNISTDiscriminator', img_resolution=28,
                              channels=[4, 8, 16, 32])),
    'stacked32-unrolled': (dict(class_name='training.networks_paper.StackedMNISTGenerator', z_dim=16,
                                img_resolution=32, channels=[16, 8, 4, 2], kernel_size=3, final_conv=True),
                           dict(class_name='training.networks_paper.StackedMNISTDiscriminator', img_resolution=32,
                                channels=[2, 4, 8], kernel_size=3, first_bn=True, lrelu_slope=0.3)),
    'mlp': (dict(class_name='training.networks_paper.MLPGenerator', hidden_features=32),
            dict(class_name='training.networks_paper.MLPDiscriminator', hidden_features=16, activation='relu')),
    'mlp-maxout': (dict(class_name='training.networks_paper.MLPGenerator', hidden_features=32),
                   dict(class_name='training.networks_paper.MLPDiscriminator', hidden_features=16)),
}


def build(kwargs, seed=0, **overrides):
    torch.manual_seed(seed)
    return dnnlib.util.construct_class_by_name(**dict(kwargs, **overrides))


def sample_shape(G, n):
    if G.img_resolution is None:
        return (n, G.data_dim)
    return (n, G.img_channels, G.img_resolution, G.img_resolution)


def one_hot(labels, c_dim):
    return torch.nn.functional.one_hot(torch.as_tensor(labels), c_dim).to(torch.float32)


# ----------------------------------------------------------------------------
# Shapes, ranges, interface.


@pytest.mark.parametrize('family', list(SMALL))
@pytest.mark.parametrize('c_dim', [0, 4])
def test_shapes_and_interface(family, c_dim):
    G_kwargs, D_kwargs = SMALL[family]
    G = build(G_kwargs, c_dim=c_dim)
    D = build(D_kwargs, c_dim=c_dim)
    assert G.c_dim == c_dim and D.c_dim == c_dim
    for attr in ('z_dim', 'img_resolution', 'img_channels'):
        assert hasattr(G, attr)
    n = 6
    z = torch.randn([n, G.z_dim])
    c = one_hot([0, 1, 2, 3, 0, 1], 4) if c_dim else torch.zeros([n, 0])
    x = G(z, c)
    assert x.shape == sample_shape(G, n) and x.dtype == torch.float32
    if G.img_resolution is not None:
        assert x.abs().max() <= 1  # tanh output
    # The keyword arguments callers pass to a StyleGAN2 G are accepted (and change nothing here).
    G.eval()
    assert torch.equal(G(z, c), G(z, c, truncation_psi=1, noise_mode='const', update_emas=True, force_fp32=True))
    logits = D(x, c)
    assert logits.shape == (n, 1) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert D(x, c, update_emas=False).shape == (n, 1)


def test_image_generator_resolutions_and_channels():
    for res in (8, 16, 32, 64):
        G = build(SMALL['dcgan32'][0], img_resolution=res, img_channels=1)
        D = build(SMALL['dcgan32'][1], img_resolution=res, img_channels=1)
        assert D(G(torch.randn(2, 16), None), None).shape == (2, 1)
        assert G(torch.randn(2, 16), None).shape == (2, 1, res, res)
    for res in (16, 32, 128):
        G = build(SMALL['resnet32-skip'][0], img_resolution=res)
        D = build(SMALL['resnet32-skip'][1], img_resolution=res)
        img = G(torch.randn(2, 16), None)
        assert img.shape == (2, 3, res, res) and D(img, None).shape == (2, 1)


def _shapes_of(module, inputs, names):
    shapes = {}
    hooks = [dict(module.named_modules())[name].register_forward_hook(
        lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape))) for name in names]
    try:
        module(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return shapes


def test_table2_small_cnn_layer_plan():
    # Seed 000 Table 2 at batch 32 (z of dimension 128, width 128).
    G = build(dict(class_name='training.networks_paper.CNNGenerator'))
    D = build(dict(class_name='training.networks_paper.CNNDiscriminator'))
    z = torch.randn(32, 128)
    assert _shapes_of(G, [z, None], ['fc', 'conv0', 'conv1', 'torgb']) == {
        'fc': (32, 512 * 16), 'conv0': (32, 256, 8, 8), 'conv1': (32, 128, 16, 16), 'torgb': (32, 3, 32, 32)}
    img = torch.randn(32, 3, 32, 32)
    assert _shapes_of(D, [img, None], ['conv0', 'conv1', 'conv2', 'fc']) == {
        'conv0': (32, 128, 16, 16), 'conv1': (32, 256, 8, 8), 'conv2': (32, 512, 4, 4), 'fc': (32, 1)}
    # Kernel sizes: 5x5 everywhere.
    assert G.conv0.weight.shape[2:] == (5, 5) and D.conv2.weight.shape[2:] == (5, 5)


def test_table3_resnet_layer_plan():
    Gk, Dk = architectures.build_arch_kwargs('resnet-t3', 32, 3)
    G, D = build(Gk), build(Dk)
    z = torch.randn(4, 128)
    assert _shapes_of(G, [z, None], ['b8', 'b16', 'b32', 'torgb']) == {
        'b8': (4, 128, 8, 8), 'b16': (4, 128, 16, 16), 'b32': (4, 128, 32, 32), 'torgb': (4, 3, 32, 32)}
    img = torch.randn(4, 3, 32, 32)
    assert _shapes_of(D, [img, None], ['b32', 'b16', 'p0', 'p1', 'fc']) == {
        'b32': (4, 128, 16, 16), 'b16': (4, 128, 8, 8), 'p0': (4, 128, 8, 8), 'p1': (4, 128, 8, 8), 'fc': (4, 1)}
    # Each residual block has two 3x3 convolutions.
    assert D.p0.conv0.weight.shape[2:] == (3, 3) and D.p0.conv1.weight.shape[2:] == (3, 3)


def test_sngan_standard_cnn_channel_plan():
    Gk, Dk = architectures.build_arch_kwargs('dcgan', 32, 3)
    G, D = build(Gk), build(Dk)
    # SNGAN standard CNN: G 4x4x512 -> 256 -> 128 -> 64 -> 3; D 64, 64, 128, 128, 256, 256, 512 -> dense.
    assert G.fc.out_features == 512 * 16
    assert [getattr(G, f'b{r}').conv.out_channels for r in (8, 16, 32)] == [256, 128, 64]
    assert G.torgb.weight.shape == (3, 64, 3, 3)
    d_widths = []
    for r in (32, 16, 8):
        d_widths += [getattr(D, f'b{r}').conv0.out_channels, getattr(D, f'b{r}').conv1.out_channels]
    assert d_widths + [D.conv.out_channels] == [64, 64, 128, 128, 256, 256, 512]
    assert D.b32.conv1.stride == (2, 2) and D.b32.conv1.kernel_size == (4, 4)
    # 64x64: DCGAN's generator widths 1024 -> 512 -> 256 -> 128 -> 64.
    G64 = build(architectures.build_arch_kwargs('dcgan', 64, 3)[0])
    assert G64.fc.out_features == 1024 * 16
    assert [getattr(G64, f'b{r}').conv.out_channels for r in (8, 16, 32, 64)] == [512, 256, 128, 64]


def _conv_params(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def test_stacked_mnist_parameter_counts():
    # VEEGAN / PacGAN DCGAN at 28x28 (TensorFlow DCGAN, z 100, gf = df = 64), counted layer by layer.
    Gk, Dk = architectures.build_arch_kwargs('dcgan-stacked', 28, 3)
    G, D = build(Gk), build(Dk)
    g_expected = (100 * 512 * 4 + 512 * 4 + 2 * 512                       # dense to 2x2x512, BN
                  + _conv_params(5, 512, 256) + 2 * 256 + _conv_params(5, 256, 128) + 2 * 128
                  + _conv_params(5, 128, 64) + 2 * 64 + _conv_params(5, 64, 3))
    d_expected = (_conv_params(5, 3, 64) + _conv_params(5, 64, 128) + 2 * 128 + _conv_params(5, 128, 256) + 2 * 256
                  + _conv_params(5, 256, 512) + 2 * 512 + 2 * 2 * 512 + 1)
    assert sum(p.numel() for p in G.parameters()) == g_expected
    assert sum(p.numel() for p in D.parameters()) == d_expected
    assert _shapes_of(G, [torch.randn(2, 100), None], ['up0', 'up1', 'up2', 'up3']) == {
        'up0': (2, 256, 4, 4), 'up1': (2, 128, 7, 7), 'up2': (2, 64, 14, 14), 'up3': (2, 3, 28, 28)}
    # PacGAN's "D = 1/4 G" (Unrolled GAN setup): D widths 2, 4, 8 with 3x3 kernels and BN on every layer.
    Gk, Dk = architectures.build_arch_kwargs('dcgan-stacked', 28, 3, setup='unrolled', d_capacity=0.25)
    G, D = build(Gk), build(Dk)
    assert [getattr(D, f'conv{i}').out_channels for i in range(3)] == [2, 4, 8]
    d_expected = (_conv_params(3, 3, 2) + 4 + _conv_params(3, 2, 4) + 8 + _conv_params(3, 4, 8) + 16 + 4 * 4 * 8 + 1)
    assert sum(p.numel() for p in D.parameters()) == d_expected
    assert _shapes_of(G, [torch.randn(2, 100), None], ['up0', 'up1', 'up2', 'torgb']) == {
        'up0': (2, 32, 7, 7), 'up1': (2, 16, 14, 14), 'up2': (2, 8, 28, 28), 'torgb': (2, 3, 28, 28)}


def test_pacgan_mlp_layer_plan():
    Gk, Dk = architectures.build_arch_kwargs('mlp-maxout', None, None)
    G, D = build(Gk), build(Dk)
    assert [getattr(G, f'fc{i}').out_features for i in range(4)] == [400] * 4
    assert all(isinstance(getattr(G, f'norm{i}'), torch.nn.BatchNorm1d) for i in range(4))
    assert [getattr(D, f'fc{i}').out_features for i in range(3)] == [200 * 5] * 3
    assert G.img_resolution is None and G.img_channels is None and G.data_dim == 2


# ----------------------------------------------------------------------------
# Independent computations.


def test_maxout_discriminator_matches_numpy():
    D = build(SMALL['mlp-maxout'][1], num_layers=2, hidden_features=3, maxout_pieces=4)
    x = torch.randn(5, 2)
    got = D(x, None).detach().numpy()
    h = x.numpy().astype(np.float64)
    for i in range(2):
        fc = getattr(D, f'fc{i}')
        a = h @ fc.weight.detach().numpy().T + fc.bias.detach().numpy()
        h = np.stack([a[:, u * 4:(u + 1) * 4].max(axis=1) for u in range(3)], axis=1)  # max over each unit's pieces
    want = h @ D.out.weight.detach().numpy().T + D.out.bias.detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_packing_concatenates_consecutive_samples():
    D2 = build(SMALL['mlp'][1], pack=2)
    D1 = build(SMALL['mlp'][1], data_dim=4)
    D1.load_state_dict(D2.state_dict())
    x = torch.randn(6, 2)
    got = D2(x, None)
    assert got.shape == (3, 1)
    want = D1(torch.cat([x[0::2], x[1::2]], dim=1), None)
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match='divisible by pack=2'):
        D2(torch.randn(5, 2), None)
    # Images are packed along channels (PacGAN's stacked-MNIST code).
    Dimg = build(SMALL['stacked28-veegan'][1], pack=2)
    assert Dimg.conv0.in_channels == 6 and Dimg(torch.randn(4, 3, 28, 28), None).shape == (2, 1)


def test_projection_conditioning_matches_formula():
    # D(x, c) = fc(h) + <proj(c), h> with h the features entering the final dense layer.
    for family, head in (('dcgan32', 'fc'), ('resnet32-skip', 'fc'), ('mlp-maxout', 'out'), ('stacked28-veegan', 'fc')):
        G = build(SMALL[family][0], c_dim=3).eval()
        D = build(SMALL[family][1], c_dim=3).eval()
        with torch.no_grad():
            torch.nn.init.normal_(D.proj.weight)  # unit-scale embedding so that the term is visible
            x = G(torch.randn(4, G.z_dim), one_hot([0, 1, 2, 0], 3))
            c = torch.rand(4, 3)
            captured = {}
            hook = getattr(D, head).register_forward_hook(lambda _m, inp, out: captured.update(h=inp[0], out=out))
            got = D(x, c).double()
            hook.remove()
            h = captured['h'].double()
            want = captured['out'].double() + (c.double() @ D.proj.weight.double().t() * h).sum(dim=1, keepdim=True)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6 * float(want.abs().max()))
            assert (got - captured['out'].double()).abs().max() > 1e-3 * float(got.abs().max())
            # The generator's output depends on the label too.
            z = torch.randn(4, G.z_dim)
            assert (G(z, one_hot([0] * 4, 3)) - G(z, one_hot([1] * 4, 3))).abs().max() > 1e-6


def test_spectral_norm_normalises_the_largest_singular_value():
    D = build(SMALL['dcgan32'][1], spectral_norm=True).train()
    x = torch.randn(2, 3, 32, 32)
    for _ in range(30):  # power iterations run in training-mode forward passes
        D(x, None)
    D.eval()
    for name, module in D.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            w = module.weight.detach().reshape(module.weight.shape[0], -1)
            sigma = torch.linalg.matrix_norm(w.double(), ord=2).item()
            assert abs(sigma - 1) < 2e-2, (name, sigma)
    D_plain = build(SMALL['dcgan32'][1], spectral_norm=False)
    assert not any('parametrizations' in name for name, _ in D_plain.named_parameters())


# ----------------------------------------------------------------------------
# Gradients, determinism, persistence.


@pytest.mark.parametrize('family', list(SMALL))
def test_gradients_reach_every_parameter(family):
    G = build(SMALL[family][0], c_dim=3)
    D = build(SMALL[family][1], c_dim=3)
    n = 4
    c = one_hot([0, 1, 2, 1], 3)
    fake = G(torch.randn(n, G.z_dim), c)
    real = torch.rand(fake.shape) * 2 - 1
    loss = D(fake, c).square().sum() + D(real, c).sum()
    loss.backward()
    for module in (G, D):
        for name, p in module.named_parameters():
            assert p.grad is not None, f'{type(module).__name__}.{name} got no gradient'
            assert p.grad.abs().max() > 0, f'{type(module).__name__}.{name} got a zero gradient'


@pytest.mark.parametrize('family', ['dcgan32', 'resnet32-skip', 'mlp-maxout', 'stacked32-unrolled'])
def test_determinism_for_a_fixed_seed(family):
    outputs = []
    for _ in range(2):
        G = build(SMALL[family][0], seed=123)
        D = build(SMALL[family][1], seed=123)
        torch.manual_seed(7)
        z = torch.randn(4, G.z_dim)
        x = G(z, None)
        outputs.append((x, D(x, None)))
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])
    G_other = build(SMALL[family][0], seed=124)
    assert not torch.equal(G_other(z, None), outputs[0][0])


@pytest.mark.parametrize('family', list(SMALL))
def test_persistence_roundtrip(family):
    G = build(SMALL[family][0], c_dim=2)
    D = build(SMALL[family][1], c_dim=2)
    for net in (G, D):
        config = persistence.get_config(net)
        json.dumps(config)
        clone = persistence.build(json.loads(json.dumps(config)))
        clone.load_state_dict(net.state_dict())
        net.eval()
        clone.eval()
        if net is G:
            z = torch.randn(4, G.z_dim)
            c = one_hot([0, 1, 0, 1], 2)
            torch.testing.assert_close(clone(z, c), net(z, c))
        else:
            x = G(torch.randn(4, G.z_dim), one_hot([0, 1, 0, 1], 2)).detach()
            torch.testing.assert_close(clone(x, one_hot([0, 1, 0, 1], 2)), net(x, one_hot([0, 1, 0, 1], 2)))


# ----------------------------------------------------------------------------
# Errors.


def test_constructor_errors_are_one_line():
    cases = [
        (lambda: NP.CNNGenerator(img_resolution=64), 'defined for 32x32 images only'),
        (lambda: NP.CNNDiscriminator(img_resolution=16), 'defined for 32x32 images only'),
        (lambda: NP.DCGANGenerator(img_resolution=48), 'power of two >= 8'),
        (lambda: NP.ResNetDiscriminator(img_resolution=8), 'power of two >= 16'),
        (lambda: NP.ResNetDiscriminator(architecture='orig'), "'resnet' or 'skip'"),
        (lambda: NP.MLPDiscriminator(c_dim=3, pack=2), 'cannot be combined with conditioning'),
        (lambda: NP.MLPDiscriminator(activation='tanh'), "'maxout', 'relu' or 'lrelu'"),
        (lambda: NP.StackedMNISTGenerator(img_resolution=64), '28 or 32'),
        (lambda: NP.MLPGenerator(z_dim=0), 'z_dim must be a positive integer'),
        (lambda: NP.DCGANGenerator(c_dim=-1), 'c_dim must be an integer >= 0'),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            make()
        assert '\n' not in str(info.value)


def test_call_errors():
    G = build(SMALL['dcgan32'][0])
    with pytest.raises(ValueError, match='truncation_psi must be 1'):
        G(torch.randn(2, 16), None, truncation_psi=0.5)
    with pytest.raises(ValueError, match='noise_mode'):
        G(torch.randn(2, 16), None, noise_mode='bogus')
    with pytest.raises(AssertionError, match='z'):
        G(torch.randn(2, 15), None)
    D = build(SMALL['dcgan32'][1], c_dim=3)
    with pytest.raises(AssertionError, match='c'):
        D(torch.randn(2, 3, 32, 32), torch.zeros(2, 4))
    with pytest.raises(AssertionError, match='img'):
        D(torch.randn(2, 3, 16, 16), torch.zeros(2, 3))


# ----------------------------------------------------------------------------
# The --arch registry.


def test_registry_lists_and_refuses_unknown_names():
    names = architectures.list_archs()
    assert {'stylegan2', 'style-linear', 'dcgan', 'resnet', 'cnn', 'resnet-t3', 'dcgan-stacked', 'mlp',
            'mlp-maxout'} <= set(names)
    with pytest.raises(ValueError, match='unknown architecture .bogus.; valid: stylegan2, ') as info:
        architectures.build_arch_kwargs('bogus', 32, 3)
    for name in names:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="has no option 'channel_bse'; valid: "):
        architectures.build_arch_kwargs('dcgan', 32, 3, channel_bse=2)
    text = architectures.describe_archs()
    assert len(text.splitlines()) == len(names)


def test_registry_refuses_impossible_combinations():
    cases = [
        (('cnn', 64, 3), {}, "'cnn' is defined for resolution 32"),
        (('resnet-t3', 16, 3), {}, "'resnet-t3' is defined for resolution 32"),
        (('dcgan', 48, 3), {}, 'power of two'),
        (('resnet', 8, 3), {}, 'power of two from 16'),
        (('dcgan-stacked', 64, 3), {}, '28 or 32'),
        (('mlp', 32, 3), {}, 'pass resolution=None'),
        (('stylegan2', None, 3), {}, 'power of two'),
        (('dcgan', 32, 0), {}, 'img_channels'),
        (('dcgan-stacked', 28, 3), dict(setup='other'), 'setup must be one of veegan, unrolled'),
        (('dcgan-stacked', 28, 3), dict(d_capacity=0), 'd_capacity must be a number > 0'),
        (('mlp-maxout', None, None, 3), dict(pack=2), 'cannot be combined with conditioning'),
        (('stylegan2', 32, 3), dict(d_architecture='linear'), 'd_architecture must be'),
        (('stylegan2', 32, 3), dict(reduced_dtype='half'), 'reduced_dtype must be'),
        (('stylegan2', 32, 3), dict(map_layers=0), 'map_layers must be an integer >= 1'),
        (('dcgan', 32, 3, -1), {}, 'c_dim must be an integer >= 0'),
    ]
    for args, knobs, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            architectures.build_arch_kwargs(*args, **knobs)
        assert '\n' not in str(info.value)


def test_registry_validates_registrations():
    def builder(resolution, img_channels, c_dim):
        return {}, {}

    def check(resolution, img_channels):
        pass

    with pytest.raises(ValueError, match='already registered'):
        architectures.register_arch('dcgan', builder, 'x', {}, check)
    with pytest.raises(ValueError, match='lower-case'):
        architectures.register_arch('Bad_Name', builder, 'x', {}, check)
    with pytest.raises(ValueError, match='reserved'):
        architectures.register_arch('new-one', builder, 'x', {'resolution': 1}, check)
    with pytest.raises(ValueError, match='JSON-able'):
        architectures.register_arch('new-two', builder, 'x', {'k': object()}, check)
    with pytest.raises(ValueError, match='one non-empty line'):
        architectures.register_arch('new-three', builder, 'two\nlines', {}, check)
    assert 'new-one' not in architectures.list_archs()


# Every preset at a small setting: builds JSON-able kwargs that construct and run.
PRESET_CASES = [
    ('stylegan2', 16, 3, dict(channel_base=256, channel_max=16, z_dim=8, w_dim=8)),
    ('stylegan2', 16, 1, dict(channel_base=256, channel_max=16, z_dim=8, w_dim=8, d_architecture='skip',
                              g_architecture='resnet')),
    ('style-linear', 16, 3, dict(channel_base=256, channel_max=16, z_dim=8, w_dim=8, d_channel_base=128,
                                 d_channel_max=16)),
    ('dcgan', 32, 3, dict(channel_base=256, channel_max=32)),
    ('resnet', 32, 3, dict(channel_max=16)),
    ('cnn', 32, 3, dict(width=8)),
    ('resnet-t3', 32, 3, {}),
    ('dcgan-stacked', 32, 3, dict(setup='unrolled', d_capacity=0.5)),
    ('mlp', None, None, {}),
    ('mlp-maxout', None, None, dict(pack=4)),
]


@pytest.mark.parametrize('name,res,channels,knobs', PRESET_CASES)
def test_every_preset_builds_and_runs(name, res, channels, knobs):
    c_dim = 0 if knobs.get('pack', 1) > 1 else 2
    G_kwargs, D_kwargs = architectures.build_arch_kwargs(name, res, channels, c_dim, **knobs)
    assert isinstance(G_kwargs, dnnlib.EasyDict) and 'class_name' in G_kwargs and 'class_name' in D_kwargs
    json.dumps(G_kwargs)
    json.dumps(D_kwargs)
    G = build(G_kwargs)
    D = build(D_kwargs)
    n = 4
    c = one_hot([0, 1, 0, 1], 2) if c_dim else torch.zeros(n, 0)
    x = G(torch.randn(n, G.z_dim), c)
    assert x.shape == sample_shape(G, n)
    pack = knobs.get('pack', 1)
    assert D(x, c).shape == (n // pack, 1)


def test_stylegan2_preset_matches_the_paper_configuration():
    from training import networks
    G_kwargs, D_kwargs = architectures.build_arch_kwargs('stylegan2', 256, 3)
    G_ref, D_ref = networks.paper256_kwargs()
    assert G_kwargs.class_name == G_ref['class_name'] and D_kwargs.class_name == D_ref['class_name']
    for key in ('z_dim', 'w_dim', 'c_dim', 'img_resolution', 'img_channels'):
        assert G_kwargs[key] == G_ref[key]
    assert G_kwargs.mapping_kwargs['num_layers'] == 2
    for key in ('channel_base', 'channel_max', 'num_fp16_res', 'conv_clamp', 'architecture'):
        assert G_kwargs.synthesis_kwargs[key] == G_ref['synthesis_kwargs'][key]
    for key in ('architecture', 'channel_base', 'channel_max', 'num_fp16_res', 'conv_clamp'):
        assert D_kwargs[key] == D_ref[key]
    # stylegan2-ada's 'auto' rule: the channel base doubles from 512x512 up.
    assert architectures.build_arch_kwargs('stylegan2', 512, 3)[0].synthesis_kwargs['channel_base'] == 32768


@pytest.mark.parametrize('cls, kwargs', [
    (NP.DCGANGenerator, dict(z_dim=8)), (NP.DCGANDiscriminator, dict()),
    (NP.ResNetGenerator, dict(z_dim=8)), (NP.ResNetDiscriminator, dict()),
])
def test_channel_base_too_small_for_the_resolution_is_refused(cls, kwargs):
    # 32x32 with channel_base 16 leaves 16 // 32 = 0 channels at the output resolution.
    with pytest.raises(ValueError, match=f'{cls.__name__}: channel_base=16 gives no channels at 32x32'):
        cls(img_resolution=32, channel_base=16, **kwargs)
    cls(img_resolution=32, channel_base=64, channel_max=8, **kwargs)   # 64 // 32 = 2 channels: accepted
