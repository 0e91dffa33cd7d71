// Max pooling (pooling_v2: dilation support). Training keeps oneDNN's argmax workspace as a native tensor that
// remembers its forward primitive descriptor, so the backward pass uses the matching hint and layouts.
// 3-d max pooling (NCDHW) shares every function, with one more spatial axis; its dilated case runs in oneDNN
// (the hand-written dilated path below is 2-d only).
#include "ops.h"
#include "tensor_store.h"

namespace emseg {

// pool_dilated.cc: the hand-written path for dilated pooling (oneDNN 2.6 has only a slow reference kernel for it).
bool dilatedPoolApplies(const std::vector<int64_t> &dil, dt type);
Napi::Value dilatedMaxPool(const Napi::CallbackInfo &info, NTensor &x, const std::vector<int64_t> &k,
                           const std::vector<int64_t> &s, const std::vector<int64_t> &pad,
                           const std::vector<int64_t> &dil, bool training);
Napi::Value dilatedMaxPoolBackward(const Napi::CallbackInfo &info, NTensor &dy, NTensor &ws,
                                   const std::vector<int64_t> &xShape, const std::vector<int64_t> &k,
                                   const std::vector<int64_t> &s, const std::vector<int64_t> &pad,
                                   const std::vector<int64_t> &dil);

namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

struct PoolFwd {
  dnnl::pooling_v2_forward::primitive_desc pd;
  dnnl::primitive prim;
  int dstL = -1, wsL = -1;
  dims src, dst, kernel, strides, dil, padl, padr;
  std::unique_ptr<std::pair<dnnl::primitive, std::pair<int, int>>> bwd;  // primitive, (diffDstL, diffSrcL)
};

std::unordered_map<std::string, std::shared_ptr<PoolFwd>> g_fwd;

struct PoolParams {
  std::vector<int64_t> kernel, stride, pad, dil;
};
// sp: the number of spatial axes (2 or 3); padding is all the begins, then all the ends.
PoolParams parse(const Napi::CallbackInfo &info, size_t i, size_t sp) {
  PoolParams p;
  p.kernel = argInts(info, i, "kernel", sp, 1);
  p.stride = argInts(info, i + 1, "stride", sp, 1);
  p.pad = argInts(info, i + 2, "padding", 2 * sp, 0);
  p.dil = argInts(info, i + 3, "dilation", sp, 1);
  return p;
}

int64_t outDim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pl, int64_t pr) {
  int64_t num = in + pl + pr - ((k - 1) * d + 1);
  return num < 0 ? 0 : num / s + 1;
}

// The params in oneDNN's terms (gaps between taps; begin / end paddings), as the forward entry keeps them.
struct DnnlPool {
  dims kernel, strides, dil, padl, padr;
};
DnnlPool toDnnl(const PoolParams &p) {
  const size_t sp = p.kernel.size();
  DnnlPool d;
  d.kernel = p.kernel;
  d.strides = p.stride;
  for (size_t a = 0; a < sp; a++) {
    d.dil.push_back(p.dil[a] - 1);
    d.padl.push_back(p.pad[a]);
    d.padr.push_back(p.pad[sp + a]);
  }
  return d;
}

std::shared_ptr<PoolFwd> getFwd(const memory::desc &srcMd, int srcL, const dims &src, const PoolParams &p,
                                bool training) {
  const size_t sp = p.kernel.size();
  dims dst = {src[0], src[1]};
  for (size_t a = 0; a < sp; a++) {
    dst.push_back(outDim(src[2 + a], p.kernel[a], p.stride[a], p.dil[a], p.pad[a], p.pad[sp + a]));
    if (dst.back() < 1) throw ArgError("pooling window does not fit the input " + shapeString(src));
  }
  Key k;
  k << int64_t(srcL) << p.kernel << p.stride << p.pad << p.dil << int64_t(training);
  auto &e = g_fwd[k.s];
  if (!e) {
    auto ne = std::make_shared<PoolFwd>();
    ne->src = src;
    ne->dst = dst;
    const DnnlPool dp = toDnnl(p);
    ne->kernel = dp.kernel;
    ne->strides = dp.strides;
    ne->dil = dp.dil;
    ne->padl = dp.padl;
    ne->padr = dp.padr;
    dnnl::pooling_v2_forward::desc d(training ? prop_kind::forward_training : prop_kind::forward_inference,
                                     algorithm::pooling_max, srcMd,
                                     memory::desc(dst, srcMd.data_type(), ftag::any), ne->strides, ne->kernel,
                                     ne->dil, ne->padl, ne->padr);
    ne->pd = dnnl::pooling_v2_forward::primitive_desc(d, eng());
    ne->prim = dnnl::pooling_v2_forward(ne->pd);
    ne->dstL = internLayout(ne->pd.dst_desc());
    if (training) ne->wsL = internLayout(ne->pd.workspace_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  return e;
}

// (x, kernel, stride, padding, dilation, training) -> [y, workspace | null]; sp: 2 or 3 spatial axes.
Napi::Value forward(const Napi::CallbackInfo &info, size_t sp) {
  NTensor &x = argTensor(info, 0, "x", true, int(sp) + 2);
  PoolParams p = parse(info, 1, sp);
  bool training = argBool(info, 5, "training");
  if (sp == 2 && dilatedPoolApplies(p.dil, x.dtype()))
    return dilatedMaxPool(info, x, p.kernel, p.stride, p.pad, p.dil, training);
  auto e = getFwd(x.md, x.layout, dimsOf(x), p, training);
  TensorPtr y = newTensor(layoutDesc(e->dstL), e->dstL, e->dst);
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, x.mem()}, {DNNL_ARG_DST, y->mem()}};
  TensorPtr ws;
  if (training) {
    ws = newTensor(layoutDesc(e->wsL), e->wsL, e->dst);
    ws->workspace = true;
    ws->wsKind = 1;
    ws->origin = e;
    args[DNNL_ARG_WORKSPACE] = ws->mem();
  }
  run(e->prim, args);
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, registerTensor(env, std::move(y)));
  out.Set(1u, ws ? registerTensor(env, std::move(ws)) : env.Null());
  return out;
}

// (dy, workspace, xShape, kernel, stride, padding, dilation) -> dx; sp: 2 or 3 spatial axes.
Napi::Value backward(const Napi::CallbackInfo &info, size_t sp) {
  NTensor &dy = argTensor(info, 0, "dy", true, int(sp) + 2);
  NTensor &ws = argTensor(info, 1, "workspace", false, int(sp) + 2);
  dims xd = argInts(info, 2, "xShape", sp + 2, 1);
  PoolParams p = parse(info, 3, sp);
  if (sp == 2 && ws.workspace && ws.wsKind == 3 && ws.origin)
    return dilatedMaxPoolBackward(info, dy, ws, xd, p.kernel, p.stride, p.pad, p.dil);
  if (!ws.workspace || ws.wsKind != 1 || !ws.origin)
    throw ArgError(std::string("workspace: expected the workspace returned by ") + (sp == 3 ? "maxPool3d" : "maxPool2d") +
                   "(training = true)");
  auto *e = static_cast<PoolFwd *>(ws.origin.get());
  if (xd != e->src) throw ArgError("xShape does not match the forward pass that produced this workspace");
  if (dimsOf(dy) != e->dst) throw ArgError("dy's shape does not match the pooled output");
  const DnnlPool d = toDnnl(p);
  if (d.kernel != e->kernel || d.strides != e->strides || d.dil != e->dil || d.padl != e->padl || d.padr != e->padr)
    throw ArgError("pooling params differ from the forward pass that produced this workspace");
  if (dy.dtype() != e->pd.dst_desc().data_type()) throw ArgError("dy has a different precision than the forward");
  if (!e->bwd) {
    memory::desc srcMd = e->pd.src_desc();
    dnnl::pooling_v2_backward::desc d(algorithm::pooling_max, memory::desc(e->src, srcMd.data_type(), ftag::any),
                                      e->pd.dst_desc(), e->strides, e->kernel, e->dil, e->padl, e->padr);
    dnnl::pooling_v2_backward::primitive_desc pd(d, eng(), e->pd);
    auto nb = std::make_unique<std::pair<dnnl::primitive, std::pair<int, int>>>();
    nb->first = dnnl::pooling_v2_backward(pd);
    nb->second = {internLayout(pd.diff_dst_desc()), internLayout(pd.diff_src_desc())};
    g_cacheEntries++;
    e->bwd = std::move(nb);
  }
  TempBuf tmp;
  memory ddst = inLayout(dy, e->bwd->second.first, tmp);
  int dxL = e->bwd->second.second;
  TensorPtr dx = newTensor(layoutDesc(dxL), dxL, e->src);
  run(e->bwd->first, {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WORKSPACE, ws.mem()}, {DNNL_ARG_DIFF_SRC, dx->mem()}});
  return registerTensor(info.Env(), std::move(dx));
}

}  // namespace

EMSEG_FN(maxPool2d) { return forward(info, 2); }
EMSEG_FN(maxPool2dBackward) { return backward(info, 2); }
EMSEG_FN(maxPool3d) { return forward(info, 3); }
EMSEG_FN(maxPool3dBackward) { return backward(info, 3); }

}  // namespace emseg
