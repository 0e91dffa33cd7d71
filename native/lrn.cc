// Local response normalisation (oneDNN definitions: across channels alpha/size, within channel alpha/size^2).
#include "ops.h"
#include "tensor_store.h"

namespace emseg {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

struct LrnFwd {
  dnnl::lrn_forward::primitive_desc pd;
  dnnl::primitive prim;
  int dstL = -1, wsL = -1;  // wsL < 0: this implementation needs no workspace
};
struct LrnBwd {
  dnnl::primitive prim;
  int diffL = -1;
  std::shared_ptr<LrnFwd> fwd;  // the training forward (hint), re-run when no workspace is passed in
};

std::unordered_map<std::string, std::shared_ptr<LrnFwd>> g_fwd;
std::unordered_map<std::string, std::unique_ptr<LrnBwd>> g_bwd;

struct LrnP {
  bool across;
  int64_t size;
  double alpha, beta, k;
};
LrnP parse(const Napi::CallbackInfo &info, size_t i) {
  LrnP p;
  p.across = argBool(info, i, "across");
  p.size = argInt(info, i + 1, "size", 1, 1 << 16);
  p.alpha = argNumber(info, i + 2, "alpha");
  p.beta = argNumber(info, i + 3, "beta");
  p.k = argNumber(info, i + 4, "k");
  return p;
}
Key keyOf(int layout, const LrnP &p, bool training) {
  Key k;
  k << int64_t(layout) << int64_t(p.across) << p.size << p.alpha << p.beta << p.k << int64_t(training);
  return k;
}

std::shared_ptr<LrnFwd> getFwd(const NTensor &x, const LrnP &p, bool training) {
  auto &e = g_fwd[keyOf(x.layout, p, training).s];
  if (!e) {
    auto ne = std::make_shared<LrnFwd>();
    dnnl::lrn_forward::desc d(training ? prop_kind::forward_training : prop_kind::forward_inference,
                              p.across ? algorithm::lrn_across_channels : algorithm::lrn_within_channel, x.md,
                              p.size, float(p.alpha), float(p.beta), float(p.k));
    ne->pd = dnnl::lrn_forward::primitive_desc(d, eng());
    ne->prim = dnnl::lrn_forward(ne->pd);
    ne->dstL = internLayout(ne->pd.dst_desc());
    if (training && ne->pd.workspace_desc().get_size() > 0) ne->wsL = internLayout(ne->pd.workspace_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  return e;
}

}  // namespace

// lrn(x, across, size, alpha, beta, k, training) -> [y, workspace | null]
EMSEG_FN(lrn) {
  NTensor &x = argTensor(info, 0, "x");
  LrnP p = parse(info, 1);
  bool training = argBool(info, 6, "training");
  auto e = getFwd(x, p, training);
  TensorPtr y = newTensor(layoutDesc(e->dstL), e->dstL, dimsOf(x));
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, x.mem()}, {DNNL_ARG_DST, y->mem()}};
  TensorPtr ws;
  if (e->wsL >= 0) {
    ws = newTensor(layoutDesc(e->wsL), e->wsL, dimsOf(x));
    ws->workspace = true;
    ws->wsKind = 2;
    args[DNNL_ARG_WORKSPACE] = ws->mem();
  }
  run(e->prim, args);
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, registerTensor(env, std::move(y)));
  out.Set(1u, ws ? registerTensor(env, std::move(ws)) : env.Null());
  return out;
}

// lrnBackward(x, dy, workspace | null, across, size, alpha, beta, k) -> dx
EMSEG_FN(lrnBackward) {
  NTensor &x = argTensor(info, 0, "x");
  NTensor &dy = argTensor(info, 1, "dy");
  NTensor *ws = nullptr;
  if (info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined()) {
    ws = &argTensor(info, 2, "workspace", false);
    if (!ws->workspace || ws->wsKind != 2) throw ArgError("workspace: expected the workspace returned by lrn()");
  }
  LrnP p = parse(info, 3);
  if (dimsOf(dy) != dimsOf(x)) throw ArgError("dy and x shapes differ");
  if (dy.dtype() != x.dtype()) throw ArgError("dy and x precisions differ");
  auto &e = g_bwd[keyOf(x.layout, p, true).s];
  if (!e) {
    auto ne = std::make_unique<LrnBwd>();
    ne->fwd = getFwd(x, p, true);
    dnnl::lrn_backward::desc d(p.across ? algorithm::lrn_across_channels : algorithm::lrn_within_channel, x.md,
                               x.md, p.size, float(p.alpha), float(p.beta), float(p.k));
    dnnl::lrn_backward::primitive_desc pd(d, eng(), ne->fwd->pd);
    ne->prim = dnnl::lrn_backward(pd);
    ne->diffL = internLayout(pd.diff_src_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  TempBuf ddTmp, wsTmp, yTmp;
  memory ddst = inLayout(dy, x.layout, ddTmp);
  TensorPtr dx = newTensor(layoutDesc(e->diffL), e->diffL, dimsOf(x));
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, x.mem()}, {DNNL_ARG_DIFF_DST, ddst},
                                          {DNNL_ARG_DIFF_SRC, dx->mem()}};
  if (e->fwd->wsL >= 0) {
    const memory::desc &wsd = layoutDesc(e->fwd->wsL);
    if (ws && ws->layout == e->fwd->wsL) {
      args[DNNL_ARG_WORKSPACE] = ws->mem();
    } else {
      // No (matching) workspace: recompute it with a training forward pass.
      wsTmp.alloc(wsd.get_size());
      yTmp.alloc(layoutDesc(e->fwd->dstL).get_size());
      memory wsm(wsd, eng(), wsTmp.ptr);
      run(e->fwd->prim, {{DNNL_ARG_SRC, x.mem()},
                         {DNNL_ARG_DST, memory(layoutDesc(e->fwd->dstL), eng(), yTmp.ptr)},
                         {DNNL_ARG_WORKSPACE, wsm}});
      args[DNNL_ARG_WORKSPACE] = wsm;
    }
  }
  run(e->prim, args);
  return registerTensor(info.Env(), std::move(dx));
}

}  // namespace emseg
