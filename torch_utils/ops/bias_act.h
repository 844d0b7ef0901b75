// Fused bias + activation + gain + clamp: the interface between the C++ binding (bias_act.cpp,
// argument checks) and the CUDA kernels (bias_act.cu). The maths each mode computes is defined by
// the reference kernel `_ref_kernel` in bias_act.py; the comments below restate it.

#pragma once

#include <ATen/ATen.h>

namespace ganmc_bias_act {

// Activation codes: the `cuda_idx` column of `activation_funcs` in bias_act.py.
enum Activation : int {
    kLinear = 1,
    kRelu = 2,
    kLrelu = 3,
    kTanh = 4,
    kSigmoid = 5,
    kElu = 6,
    kSelu = 7,
    kSoftplus = 8,
    kSwish = 9,
};

// One launch. Every tensor that is given has the sizes, dtype and memory layout (strides) of `x`;
// the kernel walks them in storage order. `b` (if given) has x.size(dim) elements.
//   grad == 0: y = clamp(gain * act(x + b))
//   grad == 1: y = x * D, with D = gain * act'(z) * [|yref| < clamp], z = xref + b
//              (from_z) or written through the forward output yref (otherwise)
//   grad == 2: y = x * dy * dD/dz (from_z) or x * dy * dD/dyref (otherwise), times the same mask
struct Args {
    int grad = 0;              // 0, 1 or 2
    int act = kLinear;         // an Activation
    double alpha = 0.0;        // slope of lrelu for z < 0
    double gain = 1.0;         // output scale
    double clamp = -1.0;       // clamp bound; < 0 = none
    bool has_bias = false;
    bool from_z = false;       // xref given: derivatives through z = xref + b
    int64_t bias_stride = 1;   // storage stride of x along `dim`
    int64_t bias_size = 1;     // x.size(dim)
};

// Launches the kernel on the current CUDA stream of x's device. `out` is allocated like `x`.
void launch(at::Tensor& out, const at::Tensor& x, const at::Tensor& b, const at::Tensor& xref,
            const at::Tensor& yref, const at::Tensor& dy, const Args& args);

}  // namespace ganmc_bias_act
