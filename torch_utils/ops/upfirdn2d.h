// Upsample (zero insertion), pad, FIR-filter, downsample: the interface between the C++ binding
// (upfirdn2d.cpp, argument checks) and the CUDA kernels (upfirdn2d.cu). What is computed is
// defined by `_ref_kernel` in upfirdn2d.py; per axis, with k filter taps and input length n:
//
//   padded[j] = x[(j - pad0) / up]  when (j - pad0) is a multiple of up inside [0, n * up), else 0
//   out[o]    = gain * sum_m f[m] * padded[o * down + (flip ? m : k - 1 - m)],  o < (n*up + pad0 + pad1 - k) / down + 1
//
// and the 2-D op applies both axes at once with the 2-D filter f[my][mx].

#pragma once

#include <ATen/ATen.h>

namespace ganmc_upfirdn2d {

struct Args {
    int upx = 1, upy = 1;
    int downx = 1, downy = 1;
    int padx0 = 0, padx1 = 0, pady0 = 0, pady1 = 0;
    bool flip = false;        // true: correlate (taps in order); false: convolve
    double gain = 1.0;
    int in_h = 0, in_w = 0;
    int out_h = 0, out_w = 0;
    int fh = 1, fw = 1;       // filter height and width
};

// x: [N, C, in_h, in_w] on a CUDA device, contiguous or channels_last; f: float32 [fh, fw], contiguous,
// on x's device; out: [N, C, out_h, out_w] with x's memory format. Runs on the current stream.
void launch(at::Tensor& out, const at::Tensor& x, const at::Tensor& f, const Args& args);

}  // namespace ganmc_upfirdn2d
