// Convolution and transposed convolution (forward, backward data, backward weights), with cached primitives;
// 3-d convolution and transposed convolution share every function, with one more spatial axis (NCDHW activations,
// OIDHW weights).
// Weights cross as plain OIHW float32 arrays: wrapped zero-copy, reordered (and converted to bf16) into the
// primitive's preferred layout with a cached reorder; activations stay in the layouts the primitives choose.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "ops.h"
#include "tensor_store.h"

namespace emseg {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

struct FreeDeleter {
  void operator()(void *p) const { std::free(p); }
};
using OwnedBuf = std::unique_ptr<void, FreeDeleter>;
OwnedBuf ownedAlloc(size_t n) {
  void *p = std::aligned_alloc(64, (n + 63) & ~size_t(63));
  if (!p) throw std::bad_alloc();
  return OwnedBuf(p);
}

struct Geom {
  dims src, wt, dst, bias, strides, dil, padl, padr;
};

int64_t convOut(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pl, int64_t pr) {
  int64_t num = in + pl + pr - ((k - 1) * d + 1);
  return num < 0 ? 0 : num / s + 1;
}
int64_t deconvOut(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pl, int64_t pr) {
  return (in - 1) * s + (k - 1) * d + 1 - pl - pr;
}

// srcDims: the (de)convolution's input [N, Cin, (D,) H, W]; ws: weights [Cout, Cin, (kd,) kh, kw]; stride and dil
// have one entry per spatial axis, pad all the begins then all the ends ([top, left, bottom, right] in 2-d).
Geom makeGeom(bool deconv, const dims &srcDims, const std::vector<int64_t> &ws, const std::vector<int64_t> &stride,
              const std::vector<int64_t> &pad, const std::vector<int64_t> &dil) {
  const size_t sp = stride.size();
  if (srcDims.size() != sp + 2 || ws.size() != sp + 2 || pad.size() != 2 * sp || dil.size() != sp)
    throw ArgError("input, weights and params disagree on the number of spatial axes");
  if (ws[1] != srcDims[1])
    throw ArgError("weights have " + std::to_string(ws[1]) + " input channels but the input has " +
                   std::to_string(srcDims[1]));
  Geom g;
  g.src = srcDims;
  g.wt = ws;
  g.bias = {ws[0]};
  g.dst = {srcDims[0], ws[0]};
  for (size_t a = 0; a < sp; a++) {
    g.strides.push_back(stride[a]);
    g.dil.push_back(dil[a] - 1);  // oneDNN counts the gaps between taps
    g.padl.push_back(pad[a]);
    g.padr.push_back(pad[sp + a]);
    const int64_t out = (deconv ? deconvOut : convOut)(srcDims[2 + a], ws[2 + a], stride[a], dil[a], pad[a], pad[sp + a]);
    if (out < 1)
      throw ArgError("the output would be empty (" + std::to_string(out) + " along spatial axis " +
                     std::to_string(a) + "): kernel/padding/stride do not fit the input " + shapeString(srcDims));
    g.dst.push_back(out);
  }
  return g;
}

// The plain weight layout of a rank: OIHW, or OIDHW for 3-d convolutions.
ftag plainWeights(const dims &wt) { return wt.size() == 5 ? ftag::oidhw : ftag::oihw; }

template <bool D>
struct T;
template <>
struct T<false> {
  using Fwd = dnnl::convolution_forward;
  using BwdD = dnnl::convolution_backward_data;
  using BwdW = dnnl::convolution_backward_weights;
  static constexpr algorithm alg = algorithm::convolution_direct;
};
template <>
struct T<true> {
  using Fwd = dnnl::deconvolution_forward;
  using BwdD = dnnl::deconvolution_backward_data;
  using BwdW = dnnl::deconvolution_backward_weights;
  static constexpr algorithm alg = algorithm::deconvolution_direct;
};

memory::desc anyDesc(const dims &d, dt t) { return memory::desc(d, t, ftag::any); }
// Activation descs: by layout policy (0: oneDNN's choice, 1: nChw16c when C >= 8, 2: nhwc when C >= 8; the
// nCdhw16c / ndhwc twins for 3-d).
memory::desc actDesc(const dims &d, dt t) {
  if (g_layoutPolicy == 0 || d[1] < 8) return anyDesc(d, t);
  if (d.size() == 5) return memory::desc(d, t, g_layoutPolicy == 1 ? ftag::nCdhw16c : ftag::ndhwc);
  return memory::desc(d, t, g_layoutPolicy == 1 ? ftag::nChw16c : ftag::nhwc);
}

// Weights: user OIHW f32 -> the primitive's layout (cached reorder into an entry-owned buffer).
struct WeightPrep {
  memory::desc user, want;
  bool reorder = false;
  dnnl::reorder prim;
  OwnedBuf buf;
  void init(const dims &wt, const memory::desc &wantMd) {
    user = memory::desc(wt, dt::f32, plainWeights(wt));
    want = wantMd;
    reorder = !(want == user);
    if (reorder) {
      prim = dnnl::reorder(dnnl::reorder::primitive_desc(eng(), user, eng(), want));
      buf = ownedAlloc(want.get_size());
    }
  }
  memory get(float *data) {
    memory um(user, eng(), data);
    if (!reorder) return um;
    memory wm(want, eng(), buf.get());
    run(prim, {{DNNL_ARG_FROM, um}, {DNNL_ARG_TO, wm}});
    return wm;
  }
};

struct FwdEntry {
  dnnl::primitive prim;
  int srcL, dstL;
  memory::desc biasMd;
  WeightPrep w;
};

struct BwdDEntry {
  dnnl::primitive prim;
  int diffDstL, diffSrcL;
  WeightPrep w;
};

struct BwdWEntry {
  dnnl::primitive prim;
  int srcL, diffDstL;
  memory::desc userW, diffW, biasMd;
  bool reorder = false;
  dnnl::reorder toUser;
};

// The attributes of a primitive that applies ReLU to its output (a post-op), or none.
dnnl::primitive_attr fusedRelu(bool relu) {
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops po;
    po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  return attr;
}

template <bool D>
typename T<D>::Fwd::primitive_desc makeFwdPd(const Geom &g, dt t, bool bias, bool relu, prop_kind pk) {
  dnnl::primitive_attr attr = fusedRelu(relu);
  memory::desc bmd = bias ? memory::desc(g.bias, dt::f32, ftag::x) : memory::desc();
  typename T<D>::Fwd::desc d(pk, T<D>::alg, actDesc(g.src, t), anyDesc(g.wt, t), bmd, actDesc(g.dst, t), g.strides,
                             g.dil, g.padl, g.padr);
  try {
    return typename T<D>::Fwd::primitive_desc(d, attr, eng());
  } catch (const dnnl::error &) {
    if (!bias || t == dt::f32) throw;
    // Some bf16 implementations want a bf16 bias; callers then see biasMd != f32 and convert.
    memory::desc bmd16(g.bias, t, ftag::x);
    typename T<D>::Fwd::desc d2(pk, T<D>::alg, actDesc(g.src, t), anyDesc(g.wt, t), bmd16, actDesc(g.dst, t),
                                g.strides, g.dil, g.padl, g.padr);
    return typename T<D>::Fwd::primitive_desc(d2, attr, eng());
  }
}

// Forcing nChw16c (layout policy 1, used for training) must never cost an optimised kernel: where it leaves only
// oneDNN's reference implementation (e.g. dilated convolutions whose channel counts are not multiples of 16, which
// run ~1000x slower), the primitive is built with oneDNN's own layout choice instead.
template <typename MakePd>
auto withoutReference(MakePd make) {
  auto pd = make();
  if (g_layoutPolicy == 0 || std::string(pd.impl_info_str()).rfind("ref", 0) != 0) return pd;
  const int policy = g_layoutPolicy;
  g_layoutPolicy = 0;
  try {
    pd = make();
  } catch (...) {
    g_layoutPolicy = policy;
    throw;
  }
  g_layoutPolicy = policy;
  return pd;
}

template <bool D>
void keyGeom(Key &k, const Geom &g) {
  k << int64_t(D) << int64_t(g_layoutPolicy) << int64_t(g.src.size()) << g.src << g.wt << g.strides << g.dil << g.padl
    << g.padr;
}

std::unordered_map<std::string, std::unique_ptr<FwdEntry>> g_fwd;
std::unordered_map<std::string, std::unique_ptr<BwdDEntry>> g_bwdD;
std::unordered_map<std::string, std::unique_ptr<BwdWEntry>> g_bwdW;

struct ConvArgs {
  std::vector<int64_t> ws, stride, pad, dil;
};
// sp: the number of spatial axes (2 or 3).
ConvArgs parseParams(const Napi::CallbackInfo &info, size_t wsIdx, size_t pIdx, size_t sp) {
  ConvArgs a;
  a.ws = argInts(info, wsIdx, "wShape", sp + 2, 1);
  a.stride = argInts(info, pIdx, "stride", sp, 1);
  a.pad = argInts(info, pIdx + 1, "padding", 2 * sp, 0);
  a.dil = argInts(info, pIdx + 2, "dilation", sp, 1);
  return a;
}

int64_t product(const std::vector<int64_t> &v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

// The f32 bias as the primitive wants it (some bf16 implementations take a bf16 bias: converted into tmp).
memory biasMemory(const dims &bias, float *data, const memory::desc &want, TempBuf &tmp) {
  memory::desc f32b(bias, dt::f32, ftag::x);
  memory bm(f32b, eng(), data);
  if (want == f32b) return bm;
  tmp.alloc(want.get_size());
  memory cm(want, eng(), tmp.ptr);
  run(cachedReorder(f32b, want), {{DNNL_ARG_FROM, bm}, {DNNL_ARG_TO, cm}});
  return cm;
}

// A transposed convolution whose kernel equals its stride, without padding or dilation (the U-Net's 2x2
// up-convolution), writes each input pixel's kh x kw output block from that pixel alone: it is a 1x1 convolution to
// kh*kw*Cout channels, then a depth-to-space shuffle. oneDNN runs the first as a brgemm (GEMM) convolution and the
// second as one strided reorder, several times faster than its transposed-convolution kernels (measured:
// docs/BENCHMARKS.md, "Prediction"). Forward passes outside training only: a training step keeps the deconvolution
// primitives its backward passes are built against.
struct ShuffleEntry {
  dnnl::primitive conv;
  int srcL = -1, yL = -1;
  memory::desc zMd, biasMd, zView, yView;
  dnnl::reorder shuffle;
  WeightPrep w;
  std::vector<float> wBuf, bBuf;  // the weights and bias rearranged for the 1x1 convolution, refilled every call
};
std::unordered_map<std::string, std::unique_ptr<ShuffleEntry>> g_shuffle;

bool shuffleApplies(const Geom &g) {
  if (g.src.size() != 4 || g_layoutPolicy == 1) return false;
  for (size_t a = 0; a < 2; a++) {
    if (g.strides[a] != g.wt[2 + a] || g.dil[a] != 0 || g.padl[a] != 0 || g.padr[a] != 0) return false;
  }
  return true;
}

// The 1x1 convolution [N, Cin, H, W] -> z [N, kh*kw*Cout, H, W] (nhwc, channel (i, j, co)); null where oneDNN has
// only its reference kernel for it (the transposed convolution is then no slower).
std::unique_ptr<ShuffleEntry> makeShuffle(const Geom &g, dt t, bool bias, bool relu) {
  const int64_t N = g.src[0], Cin = g.src[1], H = g.src[2], W = g.src[3];
  const int64_t Co = g.wt[0], kh = g.wt[2], kw = g.wt[3], K = kh * kw * Co;
  auto e = std::make_unique<ShuffleEntry>();
  e->zMd = memory::desc({N, K, H, W}, t, ftag::nhwc);
  dnnl::primitive_attr attr = fusedRelu(relu);
  auto make = [&](dt biasType) {
    memory::desc bmd = bias ? memory::desc({K}, biasType, ftag::x) : memory::desc();
    dnnl::convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct, actDesc(g.src, t),
                                      anyDesc({K, Cin, 1, 1}, t), bmd, e->zMd, {1, 1}, {0, 0}, {0, 0}, {0, 0});
    return dnnl::convolution_forward::primitive_desc(d, attr, eng());
  };
  dnnl::convolution_forward::primitive_desc pd;
  try {
    pd = make(dt::f32);
  } catch (const dnnl::error &) {
    if (!bias || t == dt::f32) throw;
    pd = make(t);
  }
  if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) return nullptr;
  e->conv = dnnl::convolution_forward(pd);
  e->srcL = internLayout(pd.src_desc());
  e->biasMd = bias ? pd.bias_desc() : memory::desc();
  e->w.init({K, Cin, 1, 1}, pd.weights_desc());
  e->wBuf.resize(size_t(K * Cin));
  e->bBuf.resize(size_t(K));
  // Both sides as 6-d views (n, co, h, i, w, j): z's channel is (i * kw + j) * Co + co; y is nhwc of
  // [N, Co, H * kh, W * kw], so output pixel (h * kh + i, w * kw + j).
  const dims view = {N, Co, H, kh, W, kw};
  e->zView = memory::desc(view, t, dims{H * W * K, 1, W * K, kw * Co, K, Co});
  e->yView = memory::desc(view, t, dims{H * kh * W * kw * Co, 1, kh * W * kw * Co, W * kw * Co, kw * Co, Co});
  e->shuffle = dnnl::reorder(dnnl::reorder::primitive_desc(eng(), e->zView, eng(), e->yView));
  e->yL = internLayout(memory::desc({N, Co, H * kh, W * kw}, t, ftag::nhwc));
  return e;
}

// The shuffle path of a transposed convolution (shuffleApplies), or an empty value where oneDNN offers no
// optimised 1x1 convolution for it.
Napi::Value deconvByShuffle(const Napi::CallbackInfo &info, NTensor &x, const Geom &g, const F32Arg &w,
                            const F32Arg &b, bool relu) {
  dt t = x.dtype();
  Key k;
  k << g.src << g.wt << int64_t(t) << int64_t(b.data != nullptr) << int64_t(relu);
  auto found = g_shuffle.find(k.s);
  if (found == g_shuffle.end()) {
    found = g_shuffle.emplace(k.s, makeShuffle(g, t, b.data != nullptr, relu)).first;
    g_cacheEntries++;
  }
  ShuffleEntry *e = found->second.get();
  if (!e) return Napi::Value();
  const int64_t Cin = g.src[1], Co = g.wt[0], taps = g.wt[2] * g.wt[3];
  for (int64_t co = 0; co < Co; co++)
    for (int64_t ci = 0; ci < Cin; ci++)
      for (int64_t ij = 0; ij < taps; ij++) e->wBuf[size_t((ij * Co + co) * Cin + ci)] = w.data[(co * Cin + ci) * taps + ij];
  TempBuf srcTmp, biasTmp, z;
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, inLayout(x, e->srcL, srcTmp)},
                                          {DNNL_ARG_WEIGHTS, e->w.get(e->wBuf.data())}};
  if (b.data) {
    for (int64_t ij = 0; ij < taps; ij++) std::copy(b.data, b.data + Co, e->bBuf.begin() + ij * Co);
    args[DNNL_ARG_BIAS] = biasMemory({taps * Co}, e->bBuf.data(), e->biasMd, biasTmp);
  }
  z.alloc(e->zMd.get_size());
  args[DNNL_ARG_DST] = memory(e->zMd, eng(), z.ptr);
  run(e->conv, args);
  TensorPtr y = newTensor(layoutDesc(e->yL), e->yL, g.dst);
  run(e->shuffle, {{DNNL_ARG_FROM, memory(e->zView, eng(), z.ptr)}, {DNNL_ARG_TO, memory(e->yView, eng(), y->ptr)}});
  return registerTensor(info.Env(), std::move(y));
}

// (x, w, wShape, b|null, stride, padding, dilation, relu) -> y
template <bool D>
Napi::Value fwd(const Napi::CallbackInfo &info, size_t sp) {
  NTensor &x = argTensor(info, 0, "x", true, int(sp) + 2);
  ConvArgs a = parseParams(info, 2, 4, sp);
  bool relu = argBool(info, 7, "relu");
  F32Arg w = argF32(info, 1, "w", product(a.ws), false);
  F32Arg b = argF32(info, 3, "b", a.ws[0], true);
  Geom g = makeGeom(D, dimsOf(x), a.ws, a.stride, a.pad, a.dil);
  if constexpr (D) {
    if (shuffleApplies(g)) {
      Napi::Value y = deconvByShuffle(info, x, g, w, b, relu);
      if (!y.IsEmpty()) return y;
    }
  }
  dt t = x.dtype();
  Key k;
  keyGeom<D>(k, g);
  k << int64_t(t) << int64_t(b.data != nullptr) << int64_t(relu);
  auto &e = g_fwd[k.s];
  if (!e) {
    auto pd = withoutReference([&] { return makeFwdPd<D>(g, t, b.data != nullptr, relu, prop_kind::forward_inference); });
    auto ne = std::make_unique<FwdEntry>();
    ne->prim = typename T<D>::Fwd(pd);
    ne->srcL = internLayout(pd.src_desc());
    ne->dstL = internLayout(pd.dst_desc());
    ne->biasMd = b.data ? pd.bias_desc() : memory::desc();
    ne->w.init(g.wt, pd.weights_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  TempBuf srcTmp, biasTmp;
  memory src = inLayout(x, e->srcL, srcTmp);
  memory wm = e->w.get(w.data);
  TensorPtr y = newTensor(layoutDesc(e->dstL), e->dstL, g.dst);
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, y->mem()}};
  if (b.data) args[DNNL_ARG_BIAS] = biasMemory(g.bias, b.data, e->biasMd, biasTmp);
  run(e->prim, args);
  return registerTensor(info.Env(), std::move(y));
}

// (dy, w, wShape, xShape, stride, padding, dilation) -> dx
template <bool D>
Napi::Value bwdData(const Napi::CallbackInfo &info, size_t sp) {
  NTensor &dy = argTensor(info, 0, "dy", true, int(sp) + 2);
  ConvArgs a = parseParams(info, 2, 4, sp);
  dims xs = argInts(info, 3, "xShape", sp + 2, 1);
  F32Arg w = argF32(info, 1, "w", product(a.ws), false);
  Geom g = makeGeom(D, xs, a.ws, a.stride, a.pad, a.dil);
  if (dimsOf(dy) != g.dst)
    throw ArgError("dy has shape " + shapeString(dimsOf(dy)) + " but the forward output for xShape is " +
                   shapeString(g.dst));
  dt t = dy.dtype();
  // oneDNN 2.6 has no optimised bf16 backward-data kernel for dilated convolutions (its reference kernel is
  // orders of magnitude slower), and dense training of patch classifiers is all dilated convolutions: that case
  // computes in f32 and converts the result.
  bool dilated = false;
  for (int64_t d : g.dil) dilated |= d > 0;
  const dt ct = (t == dt::bf16 && dilated) ? dt::f32 : t;
  Key k;
  keyGeom<D>(k, g);
  k << int64_t(t);
  auto &e = g_bwdD[k.s];
  if (!e) {
    auto pd = withoutReference([&] {
      auto hint = makeFwdPd<D>(g, ct, false, false, prop_kind::forward_training);
      typename T<D>::BwdD::desc d(T<D>::alg, actDesc(g.src, ct), anyDesc(g.wt, ct), actDesc(g.dst, ct), g.strides,
                                  g.dil, g.padl, g.padr);
      return typename T<D>::BwdD::primitive_desc(d, eng(), hint);
    });
    auto ne = std::make_unique<BwdDEntry>();
    ne->prim = typename T<D>::BwdD(pd);
    ne->diffDstL = internLayout(pd.diff_dst_desc());
    ne->diffSrcL = internLayout(pd.diff_src_desc());
    ne->w.init(g.wt, pd.weights_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  TempBuf tmp;
  memory ddst = inLayout(dy, e->diffDstL, tmp);
  memory wm = e->w.get(w.data);
  TensorPtr dx = newTensor(layoutDesc(e->diffSrcL), e->diffSrcL, g.src);
  run(e->prim, {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, dx->mem()}});
  if (ct != t) {
    const int outL = internLayout(memory::desc(g.src, t, tagOf(dx->md)));
    TensorPtr converted = newTensor(layoutDesc(outL), outL, g.src);
    memory from = dx->mem(), to = converted->mem();
    cachedReorder(dx->md, converted->md).execute(strm(), from, to);
    strm().wait();
    dx = std::move(converted);
  }
  return registerTensor(info.Env(), std::move(dx));
}

// (x, dy, wShape, stride, padding, dilation, withBias) -> [dw: Float32Array (OIHW), db: Float32Array | null]
template <bool D>
Napi::Value bwdWeights(const Napi::CallbackInfo &info, size_t sp) {
  NTensor &x = argTensor(info, 0, "x", true, int(sp) + 2);
  NTensor &dy = argTensor(info, 1, "dy", true, int(sp) + 2);
  ConvArgs a = parseParams(info, 2, 3, sp);
  bool withBias = argBool(info, 6, "withBias");
  Geom g = makeGeom(D, dimsOf(x), a.ws, a.stride, a.pad, a.dil);
  if (dimsOf(dy) != g.dst) throw ArgError("dy's shape does not match the forward output of x with these params");
  if (dy.dtype() != x.dtype()) throw ArgError("x and dy have different precisions");
  dt t = x.dtype();
  Key k;
  keyGeom<D>(k, g);
  k << int64_t(t) << int64_t(withBias);
  auto &e = g_bwdW[k.s];
  if (!e) {
    auto pd = withoutReference([&] {
      auto hint = makeFwdPd<D>(g, t, withBias, false, prop_kind::forward_training);
      memory::desc bmd = withBias ? memory::desc(g.bias, dt::f32, ftag::x) : memory::desc();
      typename T<D>::BwdW::desc d(T<D>::alg, actDesc(g.src, t), anyDesc(g.wt, dt::f32), bmd, actDesc(g.dst, t),
                                  g.strides, g.dil, g.padl, g.padr);
      return typename T<D>::BwdW::primitive_desc(d, eng(), hint);
    });
    auto ne = std::make_unique<BwdWEntry>();
    ne->prim = typename T<D>::BwdW(pd);
    ne->srcL = internLayout(pd.src_desc());
    ne->diffDstL = internLayout(pd.diff_dst_desc());
    ne->userW = memory::desc(g.wt, dt::f32, plainWeights(g.wt));
    ne->diffW = pd.diff_weights_desc();
    ne->biasMd = withBias ? pd.diff_bias_desc() : memory::desc();
    if (withBias && !(ne->biasMd == memory::desc(g.bias, dt::f32, ftag::x)))
      throw std::runtime_error("unexpected diff_bias layout");
    ne->reorder = !(ne->diffW == ne->userW);
    if (ne->reorder) ne->toUser = dnnl::reorder(dnnl::reorder::primitive_desc(eng(), ne->diffW, eng(), ne->userW));
    g_cacheEntries++;
    e = std::move(ne);
  }
  Napi::Env env = info.Env();
  TempBuf srcTmp, ddTmp, dwTmp;
  memory src = inLayout(x, e->srcL, srcTmp);
  memory ddst = inLayout(dy, e->diffDstL, ddTmp);
  auto dw = Napi::Float32Array::New(env, size_t(product(g.wt)));
  memory userDw(e->userW, eng(), dw.Data());
  memory dwm = userDw;
  if (e->reorder) {
    dwTmp.alloc(e->diffW.get_size());
    dwm = memory(e->diffW, eng(), dwTmp.ptr);
  }
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, dwm}};
  Napi::Value dbv = env.Null();
  if (withBias) {
    auto db = Napi::Float32Array::New(env, size_t(g.bias[0]));
    args[DNNL_ARG_DIFF_BIAS] = memory(e->biasMd, eng(), db.Data());
    dbv = db;
  }
  run(e->prim, args);
  if (e->reorder) run(e->toUser, {{DNNL_ARG_FROM, dwm}, {DNNL_ARG_TO, userDw}});
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, dw);
  out.Set(1u, dbv);
  return out;
}

// ---- int8 inference (conv2dInt8)
// The input is quantized to u8 with one scale, round(x * srcScale), saturating at 0 and 255 (it is non-negative, as
// after a ReLU; calibration chose srcScale, src/nn/int8.ts). The weights go to s8 with one scale per output channel
// (127 / max |w|), are accumulated in s32 by oneDNN's VNNI kernels and dequantized to f32 by per-channel output
// scales 1 / (srcScale * wScale). oneDNN 2.x adds the bias to the accumulator before the output scales, so the f32
// bias is passed in accumulator units.
// Forward inference only; weights are quantized every call (as the f32 path reorders them), so changed weights are
// never served stale.
constexpr float kS8Max = 127.f;
constexpr const char *kNoInt8Kernel = "oneDNN has no optimised int8 convolution";

struct Int8Entry {
  dnnl::primitive prim;
  memory::desc srcMd, wUser, wWant, biasMd;
  int dstL = -1;
  dnnl::reorder wReorder;
  OwnedBuf wBuf;
  int fromL = -1;  // the input layout srcReorder was built for
  dnnl::reorder srcReorder;
  std::vector<float> bias;
};
std::unordered_map<std::string, std::unique_ptr<Int8Entry>> g_int8;

// One scale per output channel: 127 / max |w| over that channel's weights (1 for an all-zero channel).
std::vector<float> weightScales(const float *w, int64_t co, int64_t per) {
  std::vector<float> s(size_t(co), 1.f);
  for (int64_t o = 0; o < co; o++) {
    float m = 0.f;
    for (int64_t i = 0; i < per; i++) m = std::max(m, std::fabs(w[o * per + i]));
    if (m > 0.f) s[size_t(o)] = kS8Max / m;
  }
  return s;
}

std::unique_ptr<Int8Entry> makeInt8(const Geom &g, float srcScale, const std::vector<float> &ws, bool bias, bool relu) {
  auto e = std::make_unique<Int8Entry>();
  std::vector<float> out(ws.size());
  for (size_t o = 0; o < ws.size(); o++) out[o] = 1.f / (srcScale * ws[o]);
  dnnl::primitive_attr attr = fusedRelu(relu);
  attr.set_output_scales(1 << 1, out);
  memory::desc bmd = bias ? memory::desc(g.bias, dt::f32, ftag::x) : memory::desc();
  dnnl::convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct, actDesc(g.src, dt::u8),
                                    anyDesc(g.wt, dt::s8), bmd, actDesc(g.dst, dt::f32), g.strides, g.dil, g.padl,
                                    g.padr);
  // No int8 kernel at all, or only oneDNN's reference one (orders of magnitude slower than the float32 kernels):
  // refused with one message, which the backend reports as a capability of this CPU (src/backend/onednn/index.ts).
  const std::string none = std::string(kNoInt8Kernel) + " for " + shapeString(g.src) + " x " + shapeString(g.wt);
  dnnl::convolution_forward::primitive_desc pd;
  try {
    pd = dnnl::convolution_forward::primitive_desc(d, attr, eng());
  } catch (const dnnl::error &) {
    throw ArgError(none);
  }
  if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) throw ArgError(none);
  e->prim = dnnl::convolution_forward(pd);
  e->srcMd = pd.src_desc();
  e->dstL = internLayout(pd.dst_desc());
  e->biasMd = bias ? pd.bias_desc() : memory::desc();
  e->wUser = memory::desc(g.wt, dt::f32, ftag::oihw);
  e->wWant = pd.weights_desc();
  dnnl::primitive_attr wattr;
  wattr.set_output_scales(1 << 0, ws);
  e->wReorder = dnnl::reorder(dnnl::reorder::primitive_desc(eng(), e->wUser, eng(), e->wWant, wattr));
  e->wBuf = ownedAlloc(e->wWant.get_size());
  e->bias.resize(size_t(g.wt[0]));
  return e;
}

// The input as u8 (a reorder with the source scale, rebuilt when the input's layout changes).
memory quantizedSrc(Int8Entry &e, const NTensor &x, float srcScale, TempBuf &tmp) {
  if (e.fromL != x.layout) {
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {srcScale});
    e.srcReorder = dnnl::reorder(dnnl::reorder::primitive_desc(eng(), x.md, eng(), e.srcMd, attr));
    e.fromL = x.layout;
  }
  tmp.alloc(e.srcMd.get_size());
  memory q(e.srcMd, eng(), tmp.ptr);
  memory from = x.mem();
  run(e.srcReorder, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, q}});
  return q;
}

// (x, w, wShape, b|null, stride, padding, dilation, relu, srcScale) -> y (f32)
Napi::Value fwdInt8(const Napi::CallbackInfo &info) {
  NTensor &x = argTensor(info, 0, "x", true, 4);
  if (x.dtype() != dt::f32) throw ArgError("int8 convolution takes a float32 input (not a bfloat16 backend's)");
  ConvArgs a = parseParams(info, 2, 4, 2);
  bool relu = argBool(info, 7, "relu");
  const double s = argNumber(info, 8, "srcScale");
  if (!(s > 0) || !std::isfinite(s)) throw ArgError("srcScale must be a positive finite number");
  const float srcScale = float(s);
  F32Arg w = argF32(info, 1, "w", product(a.ws), false);
  F32Arg b = argF32(info, 3, "b", a.ws[0], true);
  Geom g = makeGeom(false, dimsOf(x), a.ws, a.stride, a.pad, a.dil);
  const int64_t co = g.wt[0], per = product(g.wt) / co;
  std::vector<float> ws = weightScales(w.data, co, per);
  Key k;
  keyGeom<false>(k, g);
  k << int64_t(b.data != nullptr) << int64_t(relu) << double(srcScale);
  k.s.append(reinterpret_cast<const char *>(ws.data()), ws.size() * sizeof(float));
  auto &e = g_int8[k.s];
  if (!e) {
    e = makeInt8(g, srcScale, ws, b.data != nullptr, relu);
    g_cacheEntries++;
  }
  TempBuf srcTmp;
  memory src = quantizedSrc(*e, x, srcScale, srcTmp);
  memory wu(e->wUser, eng(), w.data), wq(e->wWant, eng(), e->wBuf.get());
  run(e->wReorder, {{DNNL_ARG_FROM, wu}, {DNNL_ARG_TO, wq}});
  TensorPtr y = newTensor(layoutDesc(e->dstL), e->dstL, g.dst);
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wq}, {DNNL_ARG_DST, y->mem()}};
  if (b.data) {
    for (int64_t o = 0; o < co; o++) e->bias[size_t(o)] = b.data[o] * srcScale * ws[size_t(o)];
    args[DNNL_ARG_BIAS] = memory(e->biasMd, eng(), e->bias.data());
  }
  run(e->prim, args);
  return registerTensor(info.Env(), std::move(y));
}

}  // namespace

EMSEG_FN(conv2d) { return fwd<false>(info, 2); }
EMSEG_FN(conv2dInt8) { return fwdInt8(info); }
EMSEG_FN(conv2dBackwardData) { return bwdData<false>(info, 2); }
EMSEG_FN(conv2dBackwardWeights) { return bwdWeights<false>(info, 2); }
EMSEG_FN(deconv2d) { return fwd<true>(info, 2); }
EMSEG_FN(deconv2dBackwardData) { return bwdData<true>(info, 2); }
EMSEG_FN(deconv2dBackwardWeights) { return bwdWeights<true>(info, 2); }
EMSEG_FN(conv3d) { return fwd<false>(info, 3); }
EMSEG_FN(conv3dBackwardData) { return bwdData<false>(info, 3); }
EMSEG_FN(conv3dBackwardWeights) { return bwdWeights<false>(info, 3); }
EMSEG_FN(deconv3d) { return fwd<true>(info, 3); }
EMSEG_FN(deconv3dBackwardData) { return bwdData<true>(info, 3); }
EMSEG_FN(deconv3dBackwardWeights) { return bwdWeights<true>(info, 3); }

}  // namespace emseg
