// CUDA kernels of the fused bias + activation op (see bias_act.h for the contract).
//
// One element-wise kernel, specialised per activation at compile time, walks every tensor in storage
// order; the caller guarantees that all of them share x's sizes and strides, so the same offset
// addresses the same logical element in each (contiguous and channels_last alike). The channel of an
// offset, for the bias, is (offset / stride_of_dim) % size_of_dim, which holds for any dense layout.
// Arithmetic runs in float for half and bfloat16 inputs (double for double).

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "bias_act.h"

namespace ganmc_bias_act {
namespace {

// SELU constants (Klambauer et al. 2017), as in bias_act.py.
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSoftplusThreshold = 20.0;   // torch.nn.functional.softplus's default

// Precision-matched maths (float overloads for float, double for double).
__device__ __forceinline__ float m_exp(float v) { return expf(v); }
__device__ __forceinline__ double m_exp(double v) { return exp(v); }
__device__ __forceinline__ float m_expm1(float v) { return expm1f(v); }
__device__ __forceinline__ double m_expm1(double v) { return expm1(v); }
__device__ __forceinline__ float m_log1p(float v) { return log1pf(v); }
__device__ __forceinline__ double m_log1p(double v) { return log1p(v); }
__device__ __forceinline__ float m_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double m_tanh(double v) { return tanh(v); }

template <typename T>
__device__ __forceinline__ T sigmoid(T z) {
    return T(1) / (T(1) + m_exp(-z));
}

// act(z).
template <int ACT, typename T>
__device__ __forceinline__ T act_value(T z, T alpha) {
    if (ACT == kRelu) return z > T(0) ? z : T(0);
    if (ACT == kLrelu) return z > T(0) ? z : z * alpha;
    if (ACT == kTanh) return m_tanh(z);
    if (ACT == kSigmoid) return sigmoid(z);
    if (ACT == kElu) return z > T(0) ? z : m_expm1(z);
    if (ACT == kSelu) return z > T(0) ? T(kSeluScale) * z : T(kSeluScale * kSeluAlpha) * m_expm1(z);
    if (ACT == kSoftplus) return z > T(kSoftplusThreshold) ? z : m_log1p(m_exp(z));
    if (ACT == kSwish) return z * sigmoid(z);
    return z;  // kLinear
}

// act'(z).
template <int ACT, typename T>
__device__ __forceinline__ T act_d1_from_z(T z, T alpha) {
    if (ACT == kRelu) return z > T(0) ? T(1) : T(0);
    if (ACT == kLrelu) return z > T(0) ? T(1) : alpha;
    if (ACT == kTanh) { const T t = m_tanh(z); return T(1) - t * t; }
    if (ACT == kSigmoid) { const T s = sigmoid(z); return s * (T(1) - s); }
    if (ACT == kElu) return z > T(0) ? T(1) : m_exp(z);
    if (ACT == kSelu) return z > T(0) ? T(kSeluScale) : T(kSeluScale * kSeluAlpha) * m_exp(z);
    if (ACT == kSoftplus) return sigmoid(z);
    if (ACT == kSwish) { const T s = sigmoid(z); return s * (T(1) + z * (T(1) - s)); }
    return T(1);  // kLinear
}

// act''(z).
template <int ACT, typename T>
__device__ __forceinline__ T act_d2_from_z(T z) {
    if (ACT == kTanh) { const T t = m_tanh(z); return T(-2) * t * (T(1) - t * t); }
    if (ACT == kSigmoid) { const T s = sigmoid(z); return s * (T(1) - s) * (T(1) - T(2) * s); }
    if (ACT == kElu) return z > T(0) ? T(0) : m_exp(z);
    if (ACT == kSelu) return z > T(0) ? T(0) : T(kSeluScale * kSeluAlpha) * m_exp(z);
    if (ACT == kSoftplus) { const T s = sigmoid(z); return s * (T(1) - s); }
    if (ACT == kSwish) { const T s = sigmoid(z); return s * (T(1) - s) * (T(2) + z * (T(1) - T(2) * s)); }
    return T(0);  // piecewise linear: linear, relu, lrelu
}

// D = gain * act'(z), written through the forward output y = gain * act(z) (gain != 0; for lrelu
// a non-negative slope, so that the sign of y tells the side of z).
template <int ACT, typename T>
__device__ __forceinline__ T act_d1_from_y(T y, T alpha, T gain) {
    if (ACT == kRelu || ACT == kLrelu) {
        const T side = gain > T(0) ? y : -y;
        const T slope = ACT == kLrelu ? alpha : T(0);
        return (side > T(0) ? T(1) : slope) * gain;
    }
    const T a = gain == T(1) ? y : y * (T(1) / gain);   // act(z)
    if (ACT == kTanh) return (T(1) - a * a) * gain;
    if (ACT == kSigmoid) return a * (T(1) - a) * gain;
    if (ACT == kElu) return (a > T(0) ? T(1) : a + T(1)) * gain;
    if (ACT == kSelu) return (a > T(0) ? T(kSeluScale) : a + T(kSeluScale * kSeluAlpha)) * gain;
    if (ACT == kSoftplus) return -m_expm1(-a) * gain;   // sigmoid(z) = 1 - exp(-softplus(z))
    return gain;  // kLinear (swish never takes this path: the binding rejects it)
}

// dD/dy for the same parametrisation: (dD/da) / gain, with D = gain * f(a).
template <int ACT, typename T>
__device__ __forceinline__ T act_d2_from_y(T y, T gain) {
    const T a = gain == T(1) ? y : y * (T(1) / gain);
    if (ACT == kTanh) return T(-2) * a;
    if (ACT == kSigmoid) return T(1) - T(2) * a;
    if (ACT == kElu || ACT == kSelu) return a <= T(0) ? T(1) : T(0);
    if (ACT == kSoftplus) return m_exp(-a);
    return T(0);
}

template <typename T>
struct KernelArgs {
    T alpha, gain, clamp;
    int grad;
    bool has_bias, from_z, has_clamp;
};

template <typename scalar_t, typename index_t, int ACT>
__global__ void bias_act_kernel(scalar_t* __restrict__ out, const scalar_t* __restrict__ x,
                                const scalar_t* __restrict__ b, const scalar_t* __restrict__ xref,
                                const scalar_t* __restrict__ yref, const scalar_t* __restrict__ dy,
                                index_t n, index_t bias_stride, index_t bias_size,
                                KernelArgs<at::opmath_type<scalar_t>> a) {
    using T = at::opmath_type<scalar_t>;
    const index_t step = static_cast<index_t>(blockDim.x) * gridDim.x;
    for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        const T bias = a.has_bias ? static_cast<T>(b[(i / bias_stride) % bias_size]) : T(0);
        const T v = static_cast<T>(x[i]);
        T r;
        if (a.grad == 0) {
            r = act_value<ACT>(v + bias, a.alpha) * a.gain;
            if (a.has_clamp) r = r > a.clamp ? a.clamp : (r < -a.clamp ? -a.clamp : r);   // NaN stays NaN
        } else {
            if (a.grad == 1) {
                const T d = a.from_z ? act_d1_from_z<ACT>(static_cast<T>(xref[i]) + bias, a.alpha) * a.gain
                                     : act_d1_from_y<ACT>(static_cast<T>(yref[i]), a.alpha, a.gain);
                r = v * d;
            } else {
                const T dd = a.from_z ? act_d2_from_z<ACT>(static_cast<T>(xref[i]) + bias) * a.gain
                                      : act_d2_from_y<ACT>(static_cast<T>(yref[i]), a.gain);
                r = v * static_cast<T>(dy[i]) * dd;
            }
            if (a.has_clamp) {
                // The clamp passes the gradient only strictly inside (-clamp, clamp); NaN outputs block it.
                const T y = static_cast<T>(yref[i]);
                if (!(y > -a.clamp && y < a.clamp)) r = T(0);
            }
        }
        out[i] = static_cast<scalar_t>(r);
    }
}

template <typename scalar_t, typename index_t, int ACT>
void launch_typed(at::Tensor& out, const at::Tensor& x, const at::Tensor& b, const at::Tensor& xref,
                  const at::Tensor& yref, const at::Tensor& dy, const Args& args) {
    using T = at::opmath_type<scalar_t>;
    KernelArgs<T> ka;
    ka.alpha = static_cast<T>(args.alpha);
    ka.gain = static_cast<T>(args.gain);
    ka.clamp = static_cast<T>(args.clamp);
    ka.grad = args.grad;
    ka.has_bias = args.has_bias;
    ka.from_z = args.from_z;
    ka.has_clamp = args.clamp >= 0;
    const auto ptr = [](const at::Tensor& t) -> const scalar_t* {
        return t.numel() > 0 ? t.const_data_ptr<scalar_t>() : nullptr;
    };
    const int64_t n = x.numel();
    constexpr int threads = 256;
    int sms = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, x.get_device()));
    const int64_t wanted = (n + threads - 1) / threads;
    const int blocks = static_cast<int>(std::min<int64_t>(wanted, static_cast<int64_t>(sms) * 16));
    bias_act_kernel<scalar_t, index_t, ACT><<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        out.mutable_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), ptr(b), ptr(xref), ptr(yref), ptr(dy),
        static_cast<index_t>(n), static_cast<index_t>(args.bias_stride), static_cast<index_t>(args.bias_size), ka);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, typename index_t>
void launch_act(at::Tensor& out, const at::Tensor& x, const at::Tensor& b, const at::Tensor& xref,
                const at::Tensor& yref, const at::Tensor& dy, const Args& args) {
    switch (args.act) {
        case kLinear: return launch_typed<scalar_t, index_t, kLinear>(out, x, b, xref, yref, dy, args);
        case kRelu: return launch_typed<scalar_t, index_t, kRelu>(out, x, b, xref, yref, dy, args);
        case kLrelu: return launch_typed<scalar_t, index_t, kLrelu>(out, x, b, xref, yref, dy, args);
        case kTanh: return launch_typed<scalar_t, index_t, kTanh>(out, x, b, xref, yref, dy, args);
        case kSigmoid: return launch_typed<scalar_t, index_t, kSigmoid>(out, x, b, xref, yref, dy, args);
        case kElu: return launch_typed<scalar_t, index_t, kElu>(out, x, b, xref, yref, dy, args);
        case kSelu: return launch_typed<scalar_t, index_t, kSelu>(out, x, b, xref, yref, dy, args);
        case kSoftplus: return launch_typed<scalar_t, index_t, kSoftplus>(out, x, b, xref, yref, dy, args);
        case kSwish: return launch_typed<scalar_t, index_t, kSwish>(out, x, b, xref, yref, dy, args);
        default: TORCH_CHECK(false, "bias_act: act must be an activation code 1..9, got ", args.act);
    }
}

}  // namespace

void launch(at::Tensor& out, const at::Tensor& x, const at::Tensor& b, const at::Tensor& xref,
            const at::Tensor& yref, const at::Tensor& dy, const Args& args) {
    const c10::cuda::OptionalCUDAGuard device_guard(x.device());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "bias_act", [&] {
        if (x.numel() <= std::numeric_limits<int32_t>::max()) {
            launch_act<scalar_t, uint32_t>(out, x, b, xref, yref, dy, args);
        } else {
            launch_act<scalar_t, uint64_t>(out, x, b, xref, yref, dy, args);
        }
    });
}

}  // namespace ganmc_bias_act
