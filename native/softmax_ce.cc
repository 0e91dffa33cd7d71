// Softmax over channels (oneDNN) and the per-pixel (or per-voxel: 5-d logits) softmax cross-entropy (native loop, fp32 math, the loss summed
// in double). Semantics equal the reference backend: loss = sum(w * ce) / sum(w) over non-ignored pixels (label -1),
// dlogits = w * (p - onehot) / sum(w); everything 0 when sum(w) == 0.
#include <cmath>

#include "ops.h"
#include "tensor_store.h"

namespace emseg {
namespace {
std::unordered_map<int64_t, std::pair<dnnl::primitive, int>> g_softmax;
}

// softmax(x) -> y
EMSEG_FN(softmax) {
  NTensor &x = argTensor(info, 0, "x", true, 0);  // 4-d or 5-d: over axis 1 either way
  auto it = g_softmax.find(x.layout);
  if (it == g_softmax.end()) {
    dnnl::softmax_forward::primitive_desc pd(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, x.md, 1), eng());
    it = g_softmax.emplace(x.layout, std::make_pair(dnnl::primitive(dnnl::softmax_forward(pd)),
                                                    internLayout(pd.dst_desc())))
             .first;
    g_cacheEntries++;
  }
  int outL = it->second.second;
  TensorPtr y = newTensor(layoutDesc(outL), outL, dimsOf(x));
  run(it->second.first, {{DNNL_ARG_SRC, x.mem()}, {DNNL_ARG_DST, y->mem()}});
  return registerTensor(info.Env(), std::move(y));
}

// softmaxCrossEntropy(logits, labels: Int32Array, weights: Float32Array | null) -> [loss, weightSum, dlogits]
EMSEG_FN(softmaxCrossEntropy) {
  NTensor &x = argTensor(info, 0, "logits", true, 0);
  const int64_t N = x.n, C = x.c, plane = (x.depth > 0 ? x.depth : 1) * x.h * x.w, P = N * plane;
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw ArgError("labels: expected an Int32Array");
  auto labArr = info[1].As<Napi::Int32Array>();
  if (int64_t(labArr.ElementLength()) != P)
    throw ArgError("labels: expected N*(D*)H*W = " + std::to_string(P) + " labels, got " +
                   std::to_string(labArr.ElementLength()));
  const int32_t *labels = labArr.Data();
  F32Arg wa = argF32(info, 2, "weights", P, true);
  const float *weights = wa.data;

  double weightSum = 0;
  for (int64_t i = 0; i < P; i++) {
    int32_t l = labels[i];
    if (l < -1 || l >= C)
      throw ArgError("label " + std::to_string(l) + " at pixel " + std::to_string(i) + " is outside [-1, " +
                     std::to_string(C - 1) + "]");
    if (l == -1) continue;
    float w = weights ? weights[i] : 1.f;
    if (!(w >= 0) || !std::isfinite(w))
      throw ArgError("weight at pixel " + std::to_string(i) + " must be finite and >= 0");
    weightSum += w;
  }

  dims d = dimsOf(x);
  memory::desc plain = plainDesc(d, dt::f32);
  const bool direct = x.md == plain;
  TempBuf inTmp, outTmp;
  const float *z = static_cast<const float *>(x.ptr);
  if (!direct) {
    inTmp.alloc(plain.get_size());
    memory sm = x.mem(), dm(plain, eng(), inTmp.ptr);
    run(cachedReorder(x.md, plain), {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}});
    z = static_cast<const float *>(inTmp.ptr);
  }
  TensorPtr dz = newTensor(x.md, x.layout, d);
  float *g = static_cast<float *>(dz->ptr);
  if (!direct) {
    outTmp.alloc(plain.get_size());
    g = static_cast<float *>(outTmp.ptr);
  }

  double lossSum = 0;
  if (weightSum == 0) {
    std::memset(g, 0, size_t(N * C * plane) * sizeof(float));
  } else {
    const float inv = float(1.0 / weightSum);
#pragma omp parallel for reduction(+ : lossSum) schedule(static)
    for (int64_t pix = 0; pix < P; pix++) {
      const int64_t n = pix / plane, q = pix % plane;
      const int64_t base = n * C * plane + q;
      const int32_t l = labels[pix];
      if (l == -1) {
        for (int64_t c = 0; c < C; c++) g[base + c * plane] = 0.f;
        continue;
      }
      const float w = weights ? weights[pix] : 1.f;
      float mx = -INFINITY;
      for (int64_t c = 0; c < C; c++) mx = std::fmax(mx, z[base + c * plane]);
      float sum = 0.f;
      for (int64_t c = 0; c < C; c++) sum += std::exp(z[base + c * plane] - mx);
      const float lse = mx + std::log(sum);
      lossSum += double(w) * double(lse - z[base + int64_t(l) * plane]);
      const float scale = w * inv;
      for (int64_t c = 0; c < C; c++) {
        const float p = std::exp(z[base + c * plane] - lse);
        g[base + c * plane] = scale * (p - (c == l ? 1.f : 0.f));
      }
    }
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
