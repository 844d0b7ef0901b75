// CUDA kernels of upfirdn2d (see upfirdn2d.h for what is computed).
//
// Neither kernel materialises the zero-inserted or padded image: for an output sample o along an
// axis, the padded positions it reads are o * down + e(m) for the taps m, and only those that land
// on an input sample i (position pad0 + i * up) contribute. Those are the i with
//     i * up in [base, base + k - 1],  base = o * down - pad0,
// and the tap that meets input i is m = i * up - base (correlation, flip) or base + k - 1 - i * up
// (convolution). So each output loops over about ceil(k / up) taps per axis, never over zeros.
//
// * `tiled` (contiguous NCHW): a block computes a tile of outputs of one image plane; it first copies
//   the input window the tile needs into shared memory (coalesced, zeros outside the image) together
//   with the gain-scaled filter, then every thread sums its taps from shared memory.
// * `gather` (channels_last, or when a tile's window does not fit in shared memory): one thread per
//   output sample, in the output's storage order (channel fastest for channels_last, so neighbouring
//   threads read neighbouring addresses), reading x through its strides.
// Arithmetic runs in float for half and bfloat16 (double for double).

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "upfirdn2d.h"

namespace ganmc_upfirdn2d {
namespace {

constexpr int kBlockX = 32;
constexpr int kBlockY = 8;
constexpr int kGatherThreads = 256;
constexpr int kMaxGridYZ = 65535;

// Floor and ceiling of a / b for b > 0 and any sign of a.
__host__ __device__ __forceinline__ int floor_div(int a, int b) {
    const int q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}
__host__ __device__ __forceinline__ int ceil_div(int a, int b) { return -floor_div(-a, b); }

// Tap index of input sample i for an output whose window starts at `base`.
__device__ __forceinline__ int tap(int i, int up, int base, int k, bool flip) {
    return flip ? i * up - base : base + k - 1 - i * up;
}

// Inputs one tile of `tile` outputs reads along an axis (an upper bound, the same for every tile).
__host__ __forceinline__ int window(int tile, int down, int up, int k) { return ((tile - 1) * down + k - 1) / up + 1; }

struct TileShape {
    int tile_w, tile_h;      // outputs per tile
    int win_w, win_h;        // input window per tile
};

template <typename scalar_t>
__global__ void upfirdn2d_tiled(scalar_t* __restrict__ out, const scalar_t* __restrict__ x,
                                const float* __restrict__ f, Args a, TileShape ts, int64_t planes) {
    using T = at::opmath_type<scalar_t>;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* sx = reinterpret_cast<T*>(smem_raw);
    T* sf = sx + ts.win_h * ts.win_w;
    const int tid = threadIdx.y * blockDim.x + threadIdx.x;
    const int nthreads = blockDim.x * blockDim.y;
    const T gain = static_cast<T>(a.gain);
    for (int j = tid; j < a.fh * a.fw; j += nthreads) sf[j] = static_cast<T>(f[j]) * gain;

    const int ox0 = blockIdx.x * ts.tile_w;
    const int oy0 = blockIdx.y * ts.tile_h;
    const int ix0 = ceil_div(ox0 * a.downx - a.padx0, a.upx);   // first input column of the window
    const int iy0 = ceil_div(oy0 * a.downy - a.pady0, a.upy);
    const int64_t in_plane = static_cast<int64_t>(a.in_h) * a.in_w;
    const int64_t out_plane = static_cast<int64_t>(a.out_h) * a.out_w;

    for (int64_t p = blockIdx.z; p < planes; p += gridDim.z) {
        __syncthreads();   // the previous plane's reads of sx are done (and sf is written)
        const scalar_t* xp = x + p * in_plane;
        for (int r = threadIdx.y; r < ts.win_h; r += blockDim.y) {
            const int iy = iy0 + r;
            const bool row_in = iy >= 0 && iy < a.in_h;
            for (int c = threadIdx.x; c < ts.win_w; c += blockDim.x) {
                const int ix = ix0 + c;
                sx[r * ts.win_w + c] = (row_in && ix >= 0 && ix < a.in_w)
                    ? static_cast<T>(xp[static_cast<int64_t>(iy) * a.in_w + ix]) : T(0);
            }
        }
        __syncthreads();

        scalar_t* op = out + p * out_plane;
        for (int ly = threadIdx.y; ly < ts.tile_h; ly += blockDim.y) {
            const int oy = oy0 + ly;
            if (oy >= a.out_h) break;
            const int by = oy * a.downy - a.pady0;
            const int iy_first = ceil_div(by, a.upy);
            const int iy_last = floor_div(by + a.fh - 1, a.upy);
            for (int lx = threadIdx.x; lx < ts.tile_w; lx += blockDim.x) {
                const int ox = ox0 + lx;
                if (ox >= a.out_w) break;
                const int bx = ox * a.downx - a.padx0;
                const int ix_first = ceil_div(bx, a.upx);
                const int ix_last = floor_div(bx + a.fw - 1, a.upx);
                T acc = T(0);
                for (int iy = iy_first; iy <= iy_last; ++iy) {
                    const T* srow = sx + (iy - iy0) * ts.win_w - ix0;
                    const T* frow = sf + tap(iy, a.upy, by, a.fh, a.flip) * a.fw;
                    for (int ix = ix_first; ix <= ix_last; ++ix) {
                        acc += frow[tap(ix, a.upx, bx, a.fw, a.flip)] * srow[ix];
                    }
                }
                op[static_cast<int64_t>(oy) * a.out_w + ox] = static_cast<scalar_t>(acc);
            }
        }
    }
}

struct Strides {
    int64_t n, c, h, w;   // x's strides, in elements
    int64_t channels;
};

template <typename scalar_t, bool kChannelsLast>
__global__ void upfirdn2d_gather(scalar_t* __restrict__ out, const scalar_t* __restrict__ x,
                                 const float* __restrict__ f, Args a, Strides s, int64_t total) {
    using T = at::opmath_type<scalar_t>;
    const T gain = static_cast<T>(a.gain);
    const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += step) {
        int64_t t = idx;
        int64_t n, c;
        int ox, oy;
        if (kChannelsLast) {
            c = t % s.channels; t /= s.channels;
            ox = static_cast<int>(t % a.out_w); t /= a.out_w;
            oy = static_cast<int>(t % a.out_h); n = t / a.out_h;
        } else {
            ox = static_cast<int>(t % a.out_w); t /= a.out_w;
            oy = static_cast<int>(t % a.out_h); t /= a.out_h;
            c = t % s.channels; n = t / s.channels;
        }
        const scalar_t* xp = x + n * s.n + c * s.c;
        const int by = oy * a.downy - a.pady0;
        const int bx = ox * a.downx - a.padx0;
        const int iy_begin = max(ceil_div(by, a.upy), 0);
        const int iy_end = min(floor_div(by + a.fh - 1, a.upy), a.in_h - 1);
        const int ix_begin = max(ceil_div(bx, a.upx), 0);
        const int ix_end = min(floor_div(bx + a.fw - 1, a.upx), a.in_w - 1);
        T acc = T(0);
        for (int iy = iy_begin; iy <= iy_end; ++iy) {
            const float* frow = f + tap(iy, a.upy, by, a.fh, a.flip) * a.fw;
            const scalar_t* xrow = xp + iy * s.h;
            for (int ix = ix_begin; ix <= ix_end; ++ix) {
                acc += static_cast<T>(__ldg(frow + tap(ix, a.upx, bx, a.fw, a.flip))) * static_cast<T>(xrow[ix * s.w]);
            }
        }
        out[idx] = static_cast<scalar_t>(acc * gain);
    }
}

// The largest tile (from 64 x 32 outputs down to 8 x 8) whose window and filter fit in `budget` bytes;
// tile_w == 0 when none does.
TileShape choose_tile(const Args& a, size_t elem, size_t budget) {
    TileShape ts{64, 32, 0, 0};
    while (true) {
        ts.win_w = window(ts.tile_w, a.downx, a.upx, a.fw);
        ts.win_h = window(ts.tile_h, a.downy, a.upy, a.fh);
        const size_t bytes = (static_cast<size_t>(ts.win_w) * ts.win_h + static_cast<size_t>(a.fw) * a.fh) * elem;
        if (bytes <= budget) return ts;
        if (ts.tile_w >= ts.tile_h && ts.tile_w > 8) {
            ts.tile_w /= 2;
        } else if (ts.tile_h > 8) {
            ts.tile_h /= 2;
        } else {
            return TileShape{0, 0, 0, 0};
        }
    }
}

template <typename scalar_t>
void launch_typed(at::Tensor& out, const at::Tensor& x, const at::Tensor& f, const Args& a) {
    using T = at::opmath_type<scalar_t>;
    const auto stream = c10::cuda::getCurrentCUDAStream();
    const int64_t batch = x.size(0), channels = x.size(1);
    const int64_t planes = batch * channels;
    const bool channels_last = !x.is_contiguous();   // the binding admits contiguous or channels_last only

    if (!channels_last) {
        constexpr size_t kSharedBudget = 48 * 1024;   // the default dynamic shared memory limit
        const TileShape ts = choose_tile(a, sizeof(T), kSharedBudget);
        const int64_t tiles_y = (a.out_h + ts.tile_h - 1) / std::max(ts.tile_h, 1);
        if (ts.tile_w > 0 && tiles_y <= kMaxGridYZ) {
            const dim3 block(kBlockX, kBlockY);
            const dim3 grid((a.out_w + ts.tile_w - 1) / ts.tile_w, static_cast<unsigned>(tiles_y),
                            static_cast<unsigned>(std::min<int64_t>(planes, kMaxGridYZ)));
            const size_t shared = (static_cast<size_t>(ts.win_w) * ts.win_h + static_cast<size_t>(a.fw) * a.fh) * sizeof(T);
            upfirdn2d_tiled<scalar_t><<<grid, block, shared, stream>>>(
                out.mutable_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), f.const_data_ptr<float>(), a, ts, planes);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
            return;
        }
    }

    const Strides s{x.stride(0), x.stride(1), x.stride(2), x.stride(3), channels};
    const int64_t total = out.numel();
    int sms = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, x.get_device()));
    const int blocks = static_cast<int>(std::min<int64_t>((total + kGatherThreads - 1) / kGatherThreads,
                                                          static_cast<int64_t>(sms) * 32));
    if (channels_last) {
        upfirdn2d_gather<scalar_t, true><<<blocks, kGatherThreads, 0, stream>>>(
            out.mutable_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), f.const_data_ptr<float>(), a, s, total);
    } else {
        upfirdn2d_gather<scalar_t, false><<<blocks, kGatherThreads, 0, stream>>>(
            out.mutable_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), f.const_data_ptr<float>(), a, s, total);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

void launch(at::Tensor& out, const at::Tensor& x, const at::Tensor& f, const Args& args) {
    const c10::cuda::OptionalCUDAGuard device_guard(x.device());
    if (out.numel() == 0) return;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "upfirdn2d", [&] {
        launch_typed<scalar_t>(out, x, f, args);
    });
}

}  // namespace ganmc_upfirdn2d
