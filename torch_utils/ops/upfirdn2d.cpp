// Python binding of upfirdn2d: checks every argument (one message per problem, naming the argument),
// allocates the output in x's memory format and launches the CUDA kernel (upfirdn2d.cu).
//
//   upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain) -> Tensor
//
// is the kernel contract documented at the top of upfirdn2d.py.

#include <torch/extension.h>

#include <cstdint>
#include <limits>

#include "upfirdn2d.h"

namespace ganmc_upfirdn2d {
namespace {

// Positions along one axis must stay far from int32 overflow inside the kernel.
constexpr int64_t kMaxExtent = int64_t(1) << 30;

int64_t output_size(int64_t in, int64_t up, int64_t pad0, int64_t pad1, int64_t k, int64_t down) {
    const int64_t span = in * up + pad0 + pad1 - k;
    return span < 0 ? 0 : span / down + 1;
}

torch::Tensor upfirdn2d(const torch::Tensor& x, const torch::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                        int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip_filter,
                        double gain) {
    // x: a batch of images.
    TORCH_CHECK(x.is_cuda(), "upfirdn2d: x must be a CUDA tensor, got one on ", x.device());
    TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must be 4-D [N, C, H, W], got shape ", x.sizes());
    const auto dtype = x.scalar_type();
    TORCH_CHECK(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16 || dtype == at::kDouble,
                "upfirdn2d: x must be float32, float16, bfloat16 or float64, got ", dtype);
    const bool contiguous = x.is_contiguous();
    const bool channels_last = !contiguous && x.is_contiguous(at::MemoryFormat::ChannelsLast);
    TORCH_CHECK(contiguous || channels_last,
                "upfirdn2d: x must be contiguous or channels_last, got strides ", x.strides(), " for shape ", x.sizes(),
                "; pass x.contiguous()");

    // f: the filter.
    TORCH_CHECK(f.device() == x.device(), "upfirdn2d: f must be on x's device ", x.device(), ", got ", f.device());
    TORCH_CHECK(f.scalar_type() == at::kFloat, "upfirdn2d: f must be float32, got ", f.scalar_type());
    TORCH_CHECK(f.dim() == 2, "upfirdn2d: f must be 2-D [fh, fw], got shape ", f.sizes());
    TORCH_CHECK(f.numel() > 0, "upfirdn2d: f must not be empty, got shape ", f.sizes());
    TORCH_CHECK(f.is_contiguous(), "upfirdn2d: f must be contiguous, got strides ", f.strides());

    // Factors and padding.
    TORCH_CHECK(upx >= 1 && upy >= 1, "upfirdn2d: upx and upy must be >= 1, got ", upx, " and ", upy);
    TORCH_CHECK(downx >= 1 && downy >= 1, "upfirdn2d: downx and downy must be >= 1, got ", downx, " and ", downy);
    const int64_t in_h = x.size(2), in_w = x.size(3), fh = f.size(0), fw = f.size(1);
    for (const int64_t v : {upx, upy, downx, downy, padx0, padx1, pady0, pady1, fh, fw, in_h * upy, in_w * upx}) {
        TORCH_CHECK(v < kMaxExtent && v > -kMaxExtent,
                    "upfirdn2d: sizes, factors, padding and filter taps must stay below 2^30, got ", v);
    }
    const int64_t out_h = output_size(in_h, upy, pady0, pady1, fh, downy);
    const int64_t out_w = output_size(in_w, upx, padx0, padx1, fw, downx);
    TORCH_CHECK(out_h >= 1, "upfirdn2d: pady0, pady1 = ", pady0, ", ", pady1, " leave no output rows: height ", in_h,
                " upsampled x", upy, " and padded is shorter than the filter's ", fh, " taps");
    TORCH_CHECK(out_w >= 1, "upfirdn2d: padx0, padx1 = ", padx0, ", ", padx1, " leave no output columns: width ", in_w,
                " upsampled x", upx, " and padded is shorter than the filter's ", fw, " taps");

    Args a;
    a.upx = static_cast<int>(upx);
    a.upy = static_cast<int>(upy);
    a.downx = static_cast<int>(downx);
    a.downy = static_cast<int>(downy);
    a.padx0 = static_cast<int>(padx0);
    a.padx1 = static_cast<int>(padx1);
    a.pady0 = static_cast<int>(pady0);
    a.pady1 = static_cast<int>(pady1);
    a.flip = flip_filter;
    a.gain = gain;
    a.in_h = static_cast<int>(in_h);
    a.in_w = static_cast<int>(in_w);
    a.out_h = static_cast<int>(out_h);
    a.out_w = static_cast<int>(out_w);
    a.fh = static_cast<int>(fh);
    a.fw = static_cast<int>(fw);

    const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    auto out = at::empty({x.size(0), x.size(1), out_h, out_w}, x.options().memory_format(format));
    launch(out, x, f, a);
    return out;
}

}  // namespace
}  // namespace ganmc_upfirdn2d

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("upfirdn2d", &ganmc_upfirdn2d::upfirdn2d,
          "Upsample, pad, FIR-filter and downsample a batch of images (CUDA)",
          pybind11::arg("x"), pybind11::arg("f"), pybind11::arg("upx"), pybind11::arg("upy"), pybind11::arg("downx"),
          pybind11::arg("downy"), pybind11::arg("padx0"), pybind11::arg("padx1"), pybind11::arg("pady0"),
          pybind11::arg("pady1"), pybind11::arg("flip_filter"), pybind11::arg("gain"));
}
