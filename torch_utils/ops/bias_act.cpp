// Python binding of the fused bias + activation op: checks every argument (one message per problem,
// naming the argument), allocates the output like x and launches the CUDA kernel (bias_act.cu).
//
//   bias_act(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp) -> Tensor
//
// is the kernel contract documented at the top of bias_act.py: empty tensors mean "not given".

#include <torch/extension.h>

#include <c10/util/irange.h>

#include <string>

#include "bias_act.h"

namespace ganmc_bias_act {
namespace {

// True when `t` has x's sizes and the same strides along every dimension longer than 1 (the strides
// of length-1 dimensions never address anything, so any value is fine there).
bool same_layout(const at::Tensor& t, const at::Tensor& x) {
    if (t.sizes() != x.sizes()) return false;
    for (const auto d : c10::irange(x.dim())) {
        if (x.size(d) > 1 && t.stride(d) != x.stride(d)) return false;
    }
    return true;
}

void check_like_x(const at::Tensor& t, const char* name, const at::Tensor& x) {
    if (t.numel() == 0) return;
    TORCH_CHECK(t.device() == x.device(), "bias_act: ", name, " must be on x's device ", x.device(), ", got ",
                t.device());
    TORCH_CHECK(t.scalar_type() == x.scalar_type(), "bias_act: ", name, " must have x's dtype ", x.scalar_type(),
                ", got ", t.scalar_type());
    TORCH_CHECK(t.sizes() == x.sizes(), "bias_act: ", name, " must have x's shape ", x.sizes(), ", got ", t.sizes());
    TORCH_CHECK(same_layout(t, x), "bias_act: ", name, " must have x's memory layout (strides ", x.strides(),
                "), got strides ", t.strides(), "; pass .contiguous() or .contiguous(memory_format=...) like x");
}

torch::Tensor bias_act(const torch::Tensor& x, const torch::Tensor& b, const torch::Tensor& xref,
                       const torch::Tensor& yref, const torch::Tensor& dy, int64_t grad, int64_t dim, int64_t act,
                       double alpha, double gain, double clamp) {
    // x: the tensor the kernel maps element by element.
    TORCH_CHECK(x.is_cuda(), "bias_act: x must be a CUDA tensor, got one on ", x.device());
    const auto dtype = x.scalar_type();
    TORCH_CHECK(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16 || dtype == at::kDouble,
                "bias_act: x must be float32, float16, bfloat16 or float64, got ", dtype);
    TORCH_CHECK(x.is_non_overlapping_and_dense(),
                "bias_act: x must be dense (contiguous or channels_last), got shape ", x.sizes(), " with strides ",
                x.strides());
    TORCH_CHECK(x.dim() >= 1, "bias_act: x must have at least one dimension");

    // Scalars.
    TORCH_CHECK(grad >= 0 && grad <= 2, "bias_act: grad must be 0, 1 or 2, got ", grad);
    TORCH_CHECK(act >= kLinear && act <= kSwish, "bias_act: act must be an activation code 1..9, got ", act);
    TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim must be in [0, ", x.dim(), ") for x of shape ", x.sizes(),
                ", got ", dim);

    // b: empty or one value per entry of x along dim.
    if (b.numel() > 0) {
        TORCH_CHECK(b.device() == x.device(), "bias_act: b must be on x's device ", x.device(), ", got ", b.device());
        TORCH_CHECK(b.scalar_type() == dtype, "bias_act: b must have x's dtype ", dtype, ", got ", b.scalar_type());
        TORCH_CHECK(b.dim() == 1, "bias_act: b must be 1-D, got shape ", b.sizes());
        TORCH_CHECK(b.numel() == x.size(dim), "bias_act: b must have x.size(", dim, ") = ", x.size(dim),
                    " elements, got ", b.numel());
        TORCH_CHECK(b.is_contiguous(), "bias_act: b must be contiguous, got stride ", b.strides());
    }

    // The references of the derivatives.
    check_like_x(xref, "xref", x);
    check_like_x(yref, "yref", x);
    check_like_x(dy, "dy", x);
    const bool from_z = xref.numel() > 0;
    const bool has_clamp = clamp >= 0;
    if (grad > 0) {
        TORCH_CHECK(!has_clamp || yref.numel() > 0, "bias_act: yref (the forward output) is required for grad=", grad,
                    " when clamp >= 0");
        TORCH_CHECK(from_z || yref.numel() > 0 || act == kLinear,
                    "bias_act: xref or yref is required for grad=", grad, " with act code ", act);
        TORCH_CHECK(from_z || act != kSwish, "bias_act: swish (act code 9) needs xref for grad=", grad,
                    " (its derivative is not a function of its output)");
        TORCH_CHECK(from_z || act == kLinear || (gain != 0 && (act != kLrelu || alpha >= 0)),
                    "bias_act: xref is required for grad=", grad, " when gain is 0 or lrelu's slope is negative "
                    "(the output then does not determine the derivative)");
    }
    if (grad == 2) {
        TORCH_CHECK(dy.numel() > 0, "bias_act: dy is required for grad=2");
    }

    Args args;
    args.grad = static_cast<int>(grad);
    args.act = static_cast<int>(act);
    args.alpha = alpha;
    args.gain = gain;
    args.clamp = clamp;
    args.has_bias = b.numel() > 0;
    args.from_z = from_z;
    args.bias_size = x.size(dim);
    args.bias_stride = x.size(dim) > 1 ? x.stride(dim) : 1;   // a length-1 dim may carry any stride

    auto out = at::empty_like(x);   // keeps x's strides (dense inputs)
    if (x.numel() > 0) {
        launch(out, x, b, xref, yref, dy, args);
    }
    return out;
}

}  // namespace
}  // namespace ganmc_bias_act

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("bias_act", &ganmc_bias_act::bias_act,
          "Fused bias + activation + gain + clamp and its derivatives (CUDA)",
          pybind11::arg("x"), pybind11::arg("b"), pybind11::arg("xref"), pybind11::arg("yref"), pybind11::arg("dy"),
          pybind11::arg("grad"), pybind11::arg("dim"), pybind11::arg("act"), pybind11::arg("alpha"),
          pybind11::arg("gain"), pybind11::arg("clamp"));
}
