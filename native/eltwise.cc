// ReLU (forward, and backward from y via eltwise_relu_use_dst_for_bwd), add, and seeded inverted dropout.
// ReLU and add take tensors of any rank (4-d and 5-d: 3-d convolutions fuse their ReLU too); dropout is 4-d.
#include "ops.h"
#include "tensor_store.h"

namespace emseg {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

struct Simple {
  dnnl::primitive prim;
  int outL = -1;
};
std::unordered_map<std::string, std::unique_ptr<Simple>> g_cache;

// A binary primitive on two tensors of layout `layout` (dst in the same layout).
Simple &binaryPrim(algorithm alg, int layout) {
  Key k;
  k << int64_t(1) << int64_t(alg) << int64_t(layout);
  auto &e = g_cache[k.s];
  if (!e) {
    const memory::desc &md = layoutDesc(layout);
    dnnl::binary::primitive_desc pd(dnnl::binary::desc(alg, md, md, md), eng());
    auto ne = std::make_unique<Simple>();
    ne->prim = dnnl::binary(pd);
    ne->outL = internLayout(pd.dst_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  return *e;
}

void checkSame(const NTensor &a, const NTensor &b, const char *what) {
  if (dimsOf(a) != dimsOf(b)) throw ArgError(std::string(what) + ": shapes differ");
  if (a.dtype() != b.dtype()) throw ArgError(std::string(what) + ": precisions differ");
}

// out = a (op) b, b reordered into a's layout when needed.
Napi::Value binaryOp(Napi::Env env, algorithm alg, const NTensor &a, const NTensor &b) {
  Simple &e = binaryPrim(alg, a.layout);
  TempBuf tmp;
  memory bm = inLayout(b, a.layout, tmp);
  TensorPtr y = newTensor(layoutDesc(e.outL), e.outL, dimsOf(a));
  run(e.prim, {{DNNL_ARG_SRC_0, a.mem()}, {DNNL_ARG_SRC_1, bm}, {DNNL_ARG_DST, y->mem()}});
  return registerTensor(env, std::move(y));
}

inline uint32_t imul(uint32_t a, uint32_t b) { return a * b; }

}  // namespace

// relu(x) -> y
EMSEG_FN(relu) {
  NTensor &x = argTensor(info, 0, "x", true, 0);  // any rank: elementwise
  Key k;
  k << int64_t(2) << int64_t(x.layout);
  auto &e = g_cache[k.s];
  if (!e) {
    dnnl::eltwise_forward::desc d(prop_kind::forward_training, algorithm::eltwise_relu_use_dst_for_bwd, x.md, 0.f,
                                  0.f);
    dnnl::eltwise_forward::primitive_desc pd(d, eng());
    auto ne = std::make_unique<Simple>();
    ne->prim = dnnl::eltwise_forward(pd);
    ne->outL = internLayout(pd.dst_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  TensorPtr y = newTensor(layoutDesc(e->outL), e->outL, dimsOf(x));
  run(e->prim, {{DNNL_ARG_SRC, x.mem()}, {DNNL_ARG_DST, y->mem()}});
  return registerTensor(info.Env(), std::move(y));
}

// reluBackward(y, dy) -> dx (dx = dy where y > 0)
EMSEG_FN(reluBackward) {
  NTensor &y = argTensor(info, 0, "y", true, 0);
  NTensor &dy = argTensor(info, 1, "dy", true, 0);
  checkSame(y, dy, "reluBackward");
  Key k;
  k << int64_t(3) << int64_t(y.layout);
  auto &e = g_cache[k.s];
  if (!e) {
    dnnl::eltwise_forward::primitive_desc hint(
        dnnl::eltwise_forward::desc(prop_kind::forward_training, algorithm::eltwise_relu_use_dst_for_bwd, y.md, 0.f,
                                    0.f),
        eng());
    dnnl::eltwise_backward::desc d(algorithm::eltwise_relu_use_dst_for_bwd, y.md, y.md, 0.f, 0.f);
    dnnl::eltwise_backward::primitive_desc pd(d, eng(), hint);
    auto ne = std::make_unique<Simple>();
    ne->prim = dnnl::eltwise_backward(pd);
    ne->outL = internLayout(pd.diff_src_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  TempBuf tmp;
  memory ddst = inLayout(dy, y.layout, tmp);
  TensorPtr dx = newTensor(layoutDesc(e->outL), e->outL, dimsOf(y));
  run(e->prim, {{DNNL_ARG_DST, y.mem()}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_SRC, dx->mem()}});
  return registerTensor(info.Env(), std::move(dx));
}

// add(a, b) -> a + b (in a's layout)
EMSEG_FN(add) {
  NTensor &a = argTensor(info, 0, "a", true, 0);
  NTensor &b = argTensor(info, 1, "b", true, 0);
  checkSame(a, b, "add");
  return binaryOp(info.Env(), algorithm::binary_add, a, b);
}

// dropout(x, rate, seed: uint32) -> [y, mask]. The mask is drawn exactly as the reference backend does it:
// element i in NCHW order is kept iff mulberry32(seed)'s i-th draw >= rate; mask = kept ? 1 / (1 - rate) : 0.
EMSEG_FN(dropout) {
  NTensor &x = argTensor(info, 0, "x");
  double rate = argNumber(info, 1, "rate");
  if (!(rate >= 0 && rate < 1)) throw ArgError("rate must be in [0, 1)");
  uint32_t s = uint32_t(argInt(info, 2, "seed", 0, 0xffffffffLL));
  dims d = dimsOf(x);
  size_t n = size_t(x.n * x.c * x.h * x.w);
  memory::desc plain = plainDesc(d, dt::f32);
  TempBuf plainBuf;
  float *m;
  TensorPtr mask = newTensor(x.md, x.layout, d);
  bool direct = x.md == plain;
  if (direct) {
    m = static_cast<float *>(mask->ptr);
  } else {
    plainBuf.alloc(n * sizeof(float));
    m = static_cast<float *>(plainBuf.ptr);
  }
  const float scale = float(1.0 / (1.0 - rate));
  for (size_t i = 0; i < n; i++) {
    s += 0x6d2b79f5u;
    uint32_t t = s;
    t = imul(t ^ (t >> 15), t | 1u);
    t ^= t + imul(t ^ (t >> 7), t | 61u);
    double u = double(t ^ (t >> 14)) / 4294967296.0;
    m[i] = u >= rate ? scale : 0.f;
  }
  if (!direct) {
    memory pm(plain, eng(), plainBuf.ptr);
    memory mm = mask->mem();
    run(cachedReorder(plain, x.md), {{DNNL_ARG_FROM, pm}, {DNNL_ARG_TO, mm}});
  }
  Simple &e = binaryPrim(algorithm::binary_mul, x.layout);
  TensorPtr y = newTensor(layoutDesc(e.outL), e.outL, d);
  run(e.prim, {{DNNL_ARG_SRC_0, x.mem()}, {DNNL_ARG_SRC_1, mask->mem()}, {DNNL_ARG_DST, y->mem()}});
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, registerTensor(env, std::move(y)));
  out.Set(1u, registerTensor(env, std::move(mask)));
  return out;
}

// dropoutBackward(dy, mask) -> dy * mask (in the mask's layout)
EMSEG_FN(dropoutBackward) {
  NTensor &dy = argTensor(info, 0, "dy");
  NTensor &mask = argTensor(info, 1, "mask");
  checkSame(dy, mask, "dropoutBackward");
  return binaryOp(info.Env(), algorithm::binary_mul, mask, dy);
}

}  // namespace emseg
