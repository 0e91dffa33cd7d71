// Sigmoid (oneDNN eltwise_logistic) and the per-element sigmoid binary cross-entropy (native loop, fp32 math, the loss
// summed in double): each channel an independent binary target (affinities). Semantics equal the reference backend:
// bce(z, t) = max(z, 0) - z*t + log(1 + exp(-|z|)); loss = sum(w * bce) / sum(w), dlogits = w * (sigmoid(z) - t) /
// sum(w); weight 0 = ignored (mask); everything 0 when sum(w) == 0.
#include <cmath>

#include "ops.h"
#include "tensor_store.h"

namespace emseg {
namespace {
std::unordered_map<int64_t, std::pair<dnnl::primitive, int>> g_sigmoid;

// Plain f32 copy of a tensor's values (tmp holds them when a reorder is needed).
const float *plainValues(const NTensor &x, TempBuf &tmp) {
  memory::desc plain = plainDesc(dimsOf(x), dt::f32);
  if (x.md == plain) return static_cast<const float *>(x.ptr);
  tmp.alloc(plain.get_size());
  memory sm = x.mem(), dm(plain, eng(), tmp.ptr);
  run(cachedReorder(x.md, plain), {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}});
  return static_cast<const float *>(tmp.ptr);
}
}  // namespace

// sigmoid(x) -> y (any rank)
EMSEG_FN(sigmoid) {
  NTensor &x = argTensor(info, 0, "x", true, 0);
  auto it = g_sigmoid.find(x.layout);
  if (it == g_sigmoid.end()) {
    dnnl::eltwise_forward::primitive_desc pd(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_logistic, x.md, 0.f,
                                    0.f),
        eng());
    it = g_sigmoid.emplace(x.layout, std::make_pair(dnnl::primitive(dnnl::eltwise_forward(pd)),
                                                    internLayout(pd.dst_desc())))
             .first;
    g_cacheEntries++;
  }
  int outL = it->second.second;
  TensorPtr y = newTensor(layoutDesc(outL), outL, dimsOf(x));
  run(it->second.first, {{DNNL_ARG_SRC, x.mem()}, {DNNL_ARG_DST, y->mem()}});
  return registerTensor(info.Env(), std::move(y));
}

// sigmoidCrossEntropy(logits, targets: Float32Array, weights: Float32Array | null) -> [loss, weightSum, dlogits]
EMSEG_FN(sigmoidCrossEntropy) {
  NTensor &x = argTensor(info, 0, "logits", true, 0);
  dims d = dimsOf(x);
  int64_t E = 1;
  for (int64_t v : d) E *= v;
  F32Arg ta = argF32(info, 1, "targets", E, false);
  F32Arg wa = argF32(info, 2, "weights", E, true);
  const float *t = ta.data, *weights = wa.data;
  double weightSum = 0;
  for (int64_t i = 0; i < E; i++) {
    if (!(t[i] >= 0.f && t[i] <= 1.f)) throw ArgError("target at element " + std::to_string(i) + " is outside [0, 1]");
    float w = weights ? weights[i] : 1.f;
    if (!(w >= 0) || !std::isfinite(w))
      throw ArgError("weight at element " + std::to_string(i) + " must be finite and >= 0");
    weightSum += w;
  }
  TempBuf inTmp, outTmp;
  const float *z = plainValues(x, inTmp);
  memory::desc plain = plainDesc(d, dt::f32);
  const bool direct = x.md == plain;
  TensorPtr dz = newTensor(x.md, x.layout, d);
  float *g = static_cast<float *>(dz->ptr);
  if (!direct) {
    outTmp.alloc(plain.get_size());
    g = static_cast<float *>(outTmp.ptr);
  }
  double lossSum = 0;
  const float inv = weightSum == 0 ? 0.f : float(1.0 / weightSum);
#pragma omp parallel for reduction(+ : lossSum) schedule(static)
  for (int64_t i = 0; i < E; i++) {
    const float w = weights ? weights[i] : 1.f;
    if (w == 0.f || weightSum == 0) {
      g[i] = 0.f;
      continue;
    }
    const float zi = z[i];
    lossSum += double(w) * double(std::fmax(zi, 0.f) - zi * t[i] + std::log1p(std::exp(-std::fabs(zi))));
    const float p = 1.f / (1.f + std::exp(-zi));
    g[i] = w * inv * (p - t[i]);
  }
  if (!direct) {
    memory sm(plain, eng(), outTmp.ptr), dm = dz->mem();
    run(cachedReorder(plain, x.md), {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}});
  }
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, weightSum == 0 ? 0.0 : lossSum / weightSum);
  out.Set(1u, weightSum);
  out.Set(2u, registerTensor(env, std::move(dz)));
  return out;
}

}  // namespace emseg
