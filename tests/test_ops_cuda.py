"""The CUDA kernels of bias_act and upfirdn2d (torch_utils/ops/*.cu, *.cpp, *.h).

CUDA-marked tests (skipped without a GPU): the kernels against the reference ops, which the CPU tests
check against independent computations, for values, first and second derivatives, over random shapes,
every activation, up/down factors 1/2/4, odd filters, padding (negative too) and both filter
orientations, in float64/float32/float16/bfloat16, contiguous and channels_last; gradcheck and
gradgradcheck of the kernels in float64 (finite differences: independent of the reference); the
argument checks of the C++ bindings; the single fallback warning when the build is disabled.

CPU tests: the sources ship with the package (pyproject package-data) and every header a source
includes is part of the build digest; and, opt-in with GANMC_NVCC_CHECK=1 because it takes minutes on
a small CPU machine, nvcc compiles each .cu for sm_80 and sm_90 and the host compiler accepts each .cpp
(skipped when nvcc is absent).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import SOURCE_DIR
from torch_utils.ops import bias_act as B
from torch_utils.ops import upfirdn2d as U

REPO_ROOT = Path(__file__).resolve().parents[1]
PLUGINS = {'bias_act': B._plugin, 'upfirdn2d': U._plugin}
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
LAYOUTS = ['contiguous', 'channels_last']
# Largest error allowed, relative to 1 + the largest magnitude of the expected tensor, per order of
# derivative: the reference computes in the tensor's dtype and rounds after every step; the kernels
# compute in float32 (float64) and round once.
TOL = {
    torch.float64: (1e-10, 1e-10, 1e-10),
    torch.float32: (2e-5, 5e-5, 1e-4),
    torch.float16: (1e-2, 2e-2, 4e-2),
    torch.bfloat16: (4e-2, 8e-2, 1.6e-1),
}


def _assert_close(actual, expected, dtype, order, what):
    assert actual is not None and expected is not None, f'{what}: a derivative is missing'
    assert actual.shape == expected.shape, f'{what}: shape {list(actual.shape)} != {list(expected.shape)}'
    a, e = actual.double(), expected.double()
    scale = e.abs().max().item() if e.numel() else 0.0
    err = (a - e).abs().max().item() if e.numel() else 0.0
    tol = TOL[dtype][order]
    assert err <= tol * (1 + scale), f'{what}: max error {err:.3g} > {tol:.1g} * (1 + {scale:.3g})'


def _layout(x, layout):
    return x.contiguous(memory_format=torch.channels_last) if layout == 'channels_last' and x.ndim == 4 else x


def _is_channels_last(t):
    return t.is_contiguous(memory_format=torch.channels_last)

# ----------------------------------------------------------------------------
# bias_act


def _clamp_in_a_gap(values: torch.Tensor) -> tuple[float, float]:
    """(bound, half gap): a clamp bound halfway across the widest gap between |values| (30th to 90th
    percentile), so that no element's pre-clamp value sits near the bound."""
    v = values.abs().flatten().double().sort().values.cpu()
    lo, hi = int(len(v) * 0.3), max(int(len(v) * 0.9), int(len(v) * 0.3) + 1)
    if hi >= len(v):
        return float(v[-1]) + 1, 1.0
    gaps = v[lo + 1:hi + 1] - v[lo:hi]
    i = int(gaps.argmax()) + lo
    return float(v[i] + v[i + 1]) / 2, float(v[i + 1] - v[i]) / 2


def _bias_act_case(gen, act, layout, dtype):
    """Random shape, dim, bias, gain, alpha and clamp for one comparison; x and b exactly representable in
    `dtype`. A clamp is used only where no pre-clamp value lies within 8 rounding steps of the bound (else
    the two implementations may round an element to different sides of it: a legitimate difference)."""
    r = lambda lo, hi: int(torch.randint(lo, hi + 1, [1], generator=gen))  # noqa: E731
    low = dtype in (torch.float16, torch.bfloat16)     # smaller tensors: wider gaps for the clamp bound
    if layout == 'channels_last' or r(0, 2) > 0:
        shape, dim = [r(1, 2 if low else 4), r(1, 16 if low else 40), r(1, 6 if low else 9), r(1, 6 if low else 9)], 1
    else:
        shape = [r(1, 6) for _ in range(r(1, 3))]
        dim = r(0, len(shape) - 1)
    gain = None if r(0, 1) else float(torch.empty([1]).uniform_(-2, 2, generator=gen))
    alpha = float(torch.empty([1]).uniform_(-0.3, 0.5, generator=gen)) if act == 'lrelu' and r(0, 1) else None
    use_bias = r(0, 3) > 0
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2).to(dtype).double()
    b = torch.randn([shape[dim]], generator=gen, dtype=torch.float64).to(dtype).double() if use_bias else None
    clamp = None
    if r(0, 1):
        unclamped = B.bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, impl='ref')
        bound, half_gap = _clamp_in_a_gap(unclamped)
        if half_gap >= 8 * torch.finfo(dtype).eps * bound:
            clamp = bound
    return x, b, dict(dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def _values_and_derivatives(x, b, kwargs, impl, gen_seed):
    """y, (dL/dx, dL/db) for L = sum(y * w), and the second derivatives of sum(dL/dx * s) w.r.t. x, b, w."""
    x = x.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True) if b is not None else None
    y = B.bias_act(x, b, impl=impl, **kwargs)
    gen = torch.Generator().manual_seed(gen_seed)
    w = torch.randn(y.shape, generator=gen).to(y).requires_grad_(True)
    leaves = [x] + ([b] if b is not None else [])
    first = torch.autograd.grad((y * w).sum(), leaves, create_graph=True)
    s = torch.randn(first[0].shape, generator=gen).to(first[0])
    second = torch.autograd.grad((first[0] * s).sum(), leaves + [w], allow_unused=True)
    second = [torch.zeros_like(leaf) if g is None else g for g, leaf in zip(second, leaves + [w])]
    return y.detach(), [g.detach() for g in first], second


@pytest.mark.cuda
@pytest.mark.parametrize('layout', LAYOUTS)
@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('act', list(B.activation_funcs))
def test_bias_act_cuda_equals_ref(act, dtype, layout):
    gen = torch.Generator().manual_seed(1000 + list(B.activation_funcs).index(act))
    for trial in range(4):
        x, b, kwargs = _bias_act_case(gen, act, layout, dtype)
        x = _layout(x.to('cuda', dtype), layout)
        b = b.to('cuda', dtype) if b is not None else None
        what = f'{act} {dtype} {layout} shape {list(x.shape)} {kwargs} bias={b is not None} (trial {trial})'
        y_c, first_c, second_c = _values_and_derivatives(x, b, kwargs, 'cuda', trial)
        y_r, first_r, second_r = _values_and_derivatives(x, b, kwargs, 'ref', trial)
        assert y_c.dtype == dtype and y_c.shape == x.shape, what
        if layout == 'channels_last':
            assert _is_channels_last(y_c), f'{what}: output lost channels_last'
        _assert_close(y_c, y_r, dtype, 0, f'{what}: output')
        for name, g_c, g_r in zip(('dx', 'db'), first_c, first_r):
            _assert_close(g_c, g_r, dtype, 1, f'{what}: {name}')
        for name, g_c, g_r in zip(('d2/dx', 'd2/db', 'd2/dw') if b is not None else ('d2/dx', 'd2/dw'),
                                  second_c, second_r):
            _assert_close(g_c, g_r, dtype, 2, f'{what}: {name}')


@pytest.mark.cuda
@pytest.mark.parametrize('act', list(B.activation_funcs))
def test_bias_act_cuda_gradcheck_float64(act):
    gen = torch.Generator().manual_seed(7)
    x = (torch.randn([2, 3, 4, 5], generator=gen, dtype=torch.float64) * 2).cuda().requires_grad_(True)
    b = torch.randn([3], generator=gen, dtype=torch.float64).cuda().requires_grad_(True)
    for kwargs in (dict(), dict(gain=-0.7), dict(alpha=-0.1, gain=1.3), dict(gain=0.0)):
        fn = lambda x, b: B.bias_act(x, b, act=act, impl='cuda', **kwargs)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, b))
        assert torch.autograd.gradgradcheck(fn, (x, b))


@pytest.mark.cuda
def test_bias_act_cuda_third_order_raises():
    x = torch.randn([2, 3], device='cuda', dtype=torch.float64, requires_grad=True)
    y = B.bias_act(x, act='tanh', impl='cuda')
    g, = torch.autograd.grad(y.sum(), x, create_graph=True)
    gg, = torch.autograd.grad(g.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match='third order'):
        gg.sum().backward()


@pytest.mark.cuda
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_bias_act_cuda_large_tensor_bias_indexing(dtype):
    # Many blocks, grid-stride loop and a bias along a middle dimension of a channels_last tensor.
    x = torch.randn([8, 96, 33, 65], device='cuda').to(dtype).contiguous(memory_format=torch.channels_last)
    b = torch.randn([96], device='cuda').to(dtype)
    y_c = B.bias_act(x, b, act='lrelu', clamp=256, impl='cuda')
    y_r = B.bias_act(x, b, act='lrelu', clamp=256, impl='ref')
    _assert_close(y_c, y_r, dtype, 0, 'large lrelu')

# ----------------------------------------------------------------------------
# upfirdn2d


def _random_filter(gen, kind):
    if kind == 'odd2d':
        return torch.rand([3, 5], generator=gen, dtype=torch.float64) + 0.1
    taps = {'1tap': 1, '3tap': 3, '4tap': 4, '5tap': 5, '12tap': 12}[kind]
    return U.setup_filter(torch.rand([taps], generator=gen, dtype=torch.float64) + 0.1, separable=True)


def _upfirdn2d_case(gen):
    r = lambda lo, hi: int(torch.randint(lo, hi + 1, [1], generator=gen))  # noqa: E731
    pick = lambda seq: seq[r(0, len(seq) - 1)]  # noqa: E731
    kind = pick(['odd2d', '1tap', '3tap', '4tap', '5tap', '12tap'])
    f = _random_filter(gen, kind).float()
    fw = fh = f.shape[-1]
    if f.ndim == 2:
        fh = f.shape[0]
    up = [pick([1, 2, 4]), pick([1, 2, 4])] if r(0, 2) == 0 else pick([1, 2, 4])
    down = [pick([1, 2, 4]), pick([1, 2, 4])] if r(0, 2) == 0 else pick([1, 2, 4])
    ux, uy = (up, up) if isinstance(up, int) else up
    while True:
        shape = [r(1, 3), r(1, 6), r(2, 17), r(2, 17)]
        pad = [r(-2, 6) for _ in range(4)]
        if shape[3] * ux + pad[0] + pad[1] >= fw and shape[2] * uy + pad[2] + pad[3] >= fh:
            break
    return shape, f, dict(up=up, down=down, padding=pad, flip_filter=bool(r(0, 1)),
                          gain=float(torch.empty([1]).uniform_(0.5, 4, generator=gen)))


def _upfirdn2d_derivatives(x, f, kwargs, impl, seed):
    x = x.detach().clone().requires_grad_(True)
    y = U.upfirdn2d(x, f, impl=impl, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(y.shape, generator=gen).to(y).requires_grad_(True)
    gx, = torch.autograd.grad((y * w).sum(), x, create_graph=True)
    s = torch.randn(gx.shape, generator=gen).to(gx)
    gw, = torch.autograd.grad((gx * s).sum(), w)       # the gradient of the gradient: the op once more
    return y.detach(), gx.detach(), gw


@pytest.mark.cuda
@pytest.mark.parametrize('layout', LAYOUTS)
@pytest.mark.parametrize('dtype', DTYPES, ids=str)
def test_upfirdn2d_cuda_equals_ref(dtype, layout):
    gen = torch.Generator().manual_seed(2000 + DTYPES.index(dtype))
    for trial in range(24):
        shape, f, kwargs = _upfirdn2d_case(gen)
        x = _layout(torch.randn(shape, generator=gen).to('cuda', dtype), layout)
        f = f.cuda()
        what = f'{dtype} {layout} x {shape} f {list(f.shape)} {kwargs} (trial {trial})'
        y_c, gx_c, gw_c = _upfirdn2d_derivatives(x, f, kwargs, 'cuda', trial)
        y_r, gx_r, gw_r = _upfirdn2d_derivatives(x, f, kwargs, 'ref', trial)
        assert y_c.dtype == dtype, what
        if layout == 'channels_last' and not x.is_contiguous():
            assert _is_channels_last(y_c), f'{what}: output lost channels_last'
        _assert_close(y_c, y_r, dtype, 0, f'{what}: output')
        _assert_close(gx_c, gx_r, dtype, 1, f'{what}: dx')
        _assert_close(gw_c, gw_r, dtype, 2, f'{what}: d2/dw')


@pytest.mark.cuda
@pytest.mark.parametrize('case', [
    dict(up=2, down=1, padding=[2, 1, 2, 1], flip_filter=False),
    dict(up=1, down=2, padding=[1, 1, 1, 1], flip_filter=True),
    dict(up=4, down=2, padding=[-1, 3, 2, -2], flip_filter=False),
    dict(up=[1, 2], down=[4, 1], padding=[3, 0, 1, 2], flip_filter=True),
])
def test_upfirdn2d_cuda_gradcheck_float64(case):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([2, 3, 6, 7], generator=gen, dtype=torch.float64).cuda().requires_grad_(True)
    for f in (U.setup_filter([1, 3, 3, 1]), U.setup_filter([1, 2, 5, 2, 1], separable=True),
              torch.rand([3, 5], generator=gen) + 0.1):
        f = f.cuda()
        fn = lambda x: U.upfirdn2d(x, f, impl='cuda', gain=1.5, **case)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.cuda
@pytest.mark.parametrize('layout', LAYOUTS)
def test_upfirdn2d_cuda_stylegan_wrappers(layout):
    gen = torch.Generator().manual_seed(4)
    f = U.setup_filter([1, 3, 3, 1], device='cuda')
    x = _layout(torch.randn([4, 64, 32, 32], generator=gen).cuda(), layout)
    for fn in (lambda x, impl: U.upsample2d(x, f, impl=impl), lambda x, impl: U.downsample2d(x, f, impl=impl),
               lambda x, impl: U.filter2d(x, f, padding=1, impl=impl)):
        _assert_close(fn(x, 'cuda'), fn(x, 'ref'), torch.float32, 0, 'wrapper')


@pytest.mark.cuda
def test_upfirdn2d_cuda_large_filter_and_many_planes():
    gen = torch.Generator().manual_seed(5)
    # A filter too large for the shared-memory tile: the gather kernel runs for NCHW too.
    f = torch.rand([113, 113], generator=gen).cuda()
    x = torch.randn([1, 2, 20, 20], generator=gen).cuda()
    kwargs = dict(padding=60, flip_filter=False)
    _assert_close(U.upfirdn2d(x, f, impl='cuda', **kwargs), U.upfirdn2d(x, f, impl='ref', **kwargs),
                  torch.float32, 0, 'large filter')
    # More image planes than a grid's z dimension holds (65535): the kernel loops over planes.
    x = torch.randn([2, 40000, 3, 3], generator=gen).cuda()
    f = U.setup_filter([1, 3, 3, 1], device='cuda')
    _assert_close(U.upsample2d(x, f, impl='cuda'), U.upsample2d(x, f, impl='ref'), torch.float32, 0, 'many planes')

# ----------------------------------------------------------------------------
# Argument checks of the C++ bindings: one message naming the argument.


def _loaded(op):
    plugin = PLUGINS[op].load()
    assert plugin is not None, f'the {op} extension did not build (see the CustomOpFallbackWarning)'
    return plugin


@pytest.mark.cuda
def test_bias_act_binding_names_the_bad_argument():
    k = _loaded('bias_act').bias_act
    x = torch.randn([2, 3, 4, 4], device='cuda')
    e = x.new_empty([0])
    b = torch.randn([3], device='cuda')
    args = dict(grad=0, dim=1, act=3, alpha=0.2, gain=1.0, clamp=-1.0)

    def call(x=x, b=b, xref=e, yref=e, dy=e, **over):
        return k(x, b, xref, yref, dy, *({**args, **over}.values()))

    call()   # the good call works
    bad = [
        (dict(x=x.cpu(), b=b.cpu(), xref=e.cpu(), yref=e.cpu(), dy=e.cpu()), 'x must be a CUDA tensor'),
        (dict(x=x.int(), b=b.int()), 'x must be float32, float16, bfloat16 or float64'),
        (dict(x=x[:, :, :, ::2]), 'x must be dense'),
        (dict(grad=3), 'grad must be 0, 1 or 2'),
        (dict(act=10), 'act must be an activation code'),
        (dict(dim=4), 'dim must be in'),
        (dict(b=torch.randn([4], device='cuda')), r'b must have x.size\(1\) = 3 elements'),
        (dict(b=b.double()), "b must have x's dtype"),
        (dict(b=b.cpu()), "b must be on x's device"),
        (dict(b=torch.randn([3, 1], device='cuda')), 'b must be 1-D'),
        (dict(grad=1, yref=torch.randn([2, 3, 4, 5], device='cuda')), "yref must have x's shape"),
        (dict(grad=1, yref=x.contiguous(memory_format=torch.channels_last)), "yref must have x's memory layout"),
        (dict(grad=1, xref=x.half()), "xref must have x's dtype"),
        (dict(grad=1, clamp=1.0, xref=x), 'yref .* is required for grad=1 when clamp'),
        (dict(grad=1), 'xref or yref is required'),
        (dict(grad=1, act=9, yref=x), 'swish .* needs xref'),
        (dict(grad=2, act=4, yref=x), 'dy is required for grad=2'),
    ]
    for over, message in bad:
        with pytest.raises(RuntimeError, match=f'bias_act: {message}'):
            call(**over)


@pytest.mark.cuda
def test_upfirdn2d_binding_names_the_bad_argument():
    k = _loaded('upfirdn2d').upfirdn2d
    x = torch.randn([2, 3, 8, 8], device='cuda')
    f = torch.ones([4, 4], device='cuda') / 16
    args = dict(upx=2, upy=2, downx=1, downy=1, padx0=2, padx1=1, pady0=2, pady1=1, flip_filter=False, gain=4.0)

    def call(x=x, f=f, **over):
        return k(x, f, *({**args, **over}.values()))

    assert call().shape == (2, 3, 16, 16)
    bad = [
        (dict(x=x.cpu(), f=f.cpu()), 'x must be a CUDA tensor'),
        (dict(x=x[0]), r'x must be 4-D \[N, C, H, W\]'),
        (dict(x=x.int()), 'x must be float32, float16, bfloat16 or float64'),
        (dict(x=x[:, :, :, ::2]), 'x must be contiguous or channels_last'),
        (dict(f=f.cpu()), "f must be on x's device"),
        (dict(f=f.double()), 'f must be float32'),
        (dict(f=f[0]), 'f must be 2-D'),
        (dict(f=f.new_empty([0, 4])), 'f must not be empty'),
        (dict(f=torch.ones([4, 8], device='cuda')[:, ::2]), 'f must be contiguous'),
        (dict(upx=0), 'upx and upy must be >= 1'),
        (dict(downy=0), 'downx and downy must be >= 1'),
        (dict(pady0=-10, pady1=-10), 'pady0, pady1 = -10, -10 leave no output rows'),
        (dict(padx0=-14), 'padx0, padx1 = -14, 1 leave no output columns'),
    ]
    for over, message in bad:
        with pytest.raises(RuntimeError, match=f'upfirdn2d: {message}'):
            call(**over)


@pytest.mark.cuda
def test_disabled_build_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setenv(custom_ops.DISABLE_ENV_VAR, '1')
    for op, plugin in PLUGINS.items():
        custom_ops.reset(plugin.module_name)
        plugin.reset()
    try:
        x = torch.randn([2, 3, 8, 8], device='cuda')
        f = U.setup_filter([1, 3, 3, 1], device='cuda')
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            for _ in range(3):
                a = B.bias_act(x, torch.ones([3], device='cuda'), act='lrelu', impl='cuda')
                u = U.upsample2d(x, f, impl='cuda')
        fallbacks = [w for w in caught if issubclass(w.category, custom_ops.CustomOpFallbackWarning)]
        named = sorted(re.search(r'custom op (\S+):', str(w.message)).group(1) for w in fallbacks)
        assert named == ['bias_act_plugin', 'upfirdn2d_plugin'], [str(w.message) for w in fallbacks]
        torch.testing.assert_close(a, B.bias_act(x, torch.ones([3], device='cuda'), act='lrelu', impl='ref'))
        torch.testing.assert_close(u, U.upsample2d(x, f, impl='ref'))
    finally:
        monkeypatch.delenv(custom_ops.DISABLE_ENV_VAR)
        for plugin in PLUGINS.values():
            custom_ops.reset(plugin.module_name)
            plugin.reset()

# ----------------------------------------------------------------------------
# CPU: packaging and compile checks.


def _package_data_patterns() -> list[str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip('tomli')
    with open(REPO_ROOT / 'pyproject.toml', 'rb') as fh:
        config = tomllib.load(fh)
    return config['tool']['setuptools']['package-data']['torch_utils']


@pytest.mark.parametrize('op', sorted(PLUGINS))
def test_kernel_sources_are_packaged_and_digested(op):
    plugin = PLUGINS[op]
    patterns = _package_data_patterns()
    files = plugin.sources + plugin.headers
    assert any(name.endswith('.cu') for name in files) and any(name.endswith('.cpp') for name in files)
    for name in files:
        path = Path(SOURCE_DIR) / name
        assert path.is_file(), f'{path} is missing'
        rel = path.relative_to(REPO_ROOT / 'torch_utils').as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f'{rel} matches no torch_utils package-data pattern'
        # Every local header a source includes must be listed, so that it ships and changes rebuild.
        for included in re.findall(r'#include\s+"([^"]+)"', path.read_text()):
            assert included in plugin.headers, f'{name} includes {included}, which {op}\'s OpPlugin does not list'


def test_importing_the_ops_builds_nothing(tmp_path):
    code = ('import torch_utils.ops.bias_act, torch_utils.ops.upfirdn2d\n'
            'from torch_utils import custom_ops\n'
            'assert not custom_ops._plugins and not custom_ops._failures\n'
            'import os; assert not os.listdir(os.environ["TORCH_EXTENSIONS_DIR"])\n')
    env = {**os.environ, 'TORCH_EXTENSIONS_DIR': str(tmp_path), 'PYTHONPATH': str(REPO_ROOT)}
    subprocess.run([sys.executable, '-c', code], check=True, env=env, cwd=REPO_ROOT, timeout=120)


NVCC_ENV_VAR = 'GANMC_NVCC_CHECK'


def _compile_flags(tmp_path: Path) -> list[str]:
    """The include paths and defines torch.utils.cpp_extension uses, plus a stand-in for the one header
    CPU wheels of torch lack (c10/cuda/impl/cuda_cmake_macros.h, generated for CUDA builds only)."""
    from torch.utils import cpp_extension
    includes = list(cpp_extension.include_paths()) + [sysconfig.get_paths()['include']]
    if not any((Path(p) / 'c10/cuda/impl/cuda_cmake_macros.h').is_file() for p in includes):
        shim = tmp_path / 'shim' / 'c10' / 'cuda' / 'impl'
        shim.mkdir(parents=True)
        (shim / 'cuda_cmake_macros.h').write_text('#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n')
        includes.insert(0, str(tmp_path / 'shim'))
    abi = int(getattr(torch._C, '_GLIBCXX_USE_CXX11_ABI', True))
    return [f'-I{p}' for p in includes] + ['-std=c++17', '-DTORCH_API_INCLUDE_EXTENSION_H',
                                           f'-D_GLIBCXX_USE_CXX11_ABI={abi}']


@pytest.mark.skipif(os.environ.get(NVCC_ENV_VAR, '') in ('', '0'),
                    reason=f'takes minutes on a small CPU machine; opt in with {NVCC_ENV_VAR}=1')
@pytest.mark.parametrize('op', sorted(PLUGINS))
def test_kernels_compile_with_nvcc(op, tmp_path):
    nvcc = shutil.which('nvcc') or (os.path.join(os.environ['CUDA_HOME'], 'bin', 'nvcc')
                                    if os.environ.get('CUDA_HOME') else None)
    if nvcc is None or not os.path.isfile(nvcc):
        pytest.skip('nvcc is not installed')
    from torch.utils import cpp_extension
    plugin = PLUGINS[op]
    flags = _compile_flags(tmp_path) + [f'-DTORCH_EXTENSION_NAME={plugin.module_name}']
    for name in plugin.sources:
        src = os.path.join(SOURCE_DIR, name)
        if name.endswith('.cu'):
            cmd = [nvcc, '-c', src, '-o', str(tmp_path / (name + '.o')), *flags, *cpp_extension.COMMON_NVCC_FLAGS,
                   '-gencode', 'arch=compute_80,code=sm_80', '-gencode', 'arch=compute_90,code=sm_90',
                   '-Xcompiler', '-fPIC']
        else:
            cmd = [os.environ.get('CXX', 'c++'), '-fsyntax-only', src, *flags]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        errors = [line for line in (done.stdout + done.stderr).splitlines() if 'error' in line]
        assert done.returncode == 0, f'{" ".join(cmd[:3])}... failed:\n' + '\n'.join(errors[:20] or [done.stderr[-3000:]])
