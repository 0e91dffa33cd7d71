// Shape ops: crop and crop3d (reorder from a sub-memory view), channel concat of 4-d or 5-d tensors (oneDNN concat)
// and its split, nearest upsampling (oneDNN resampling). Outputs keep the input's format tag where possible.
#include "ops.h"
#include "tensor_store.h"

namespace emseg {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

// Reorder src (md sm, pointer sp) into dst (md dm, pointer dp).
void reorderInto(const memory::desc &sm, void *sp, const memory::desc &dm, void *dp) {
  memory a(sm, eng(), sp), b(dm, eng(), dp);
  run(cachedReorder(sm, dm), {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}});
}

std::string shapeStr(const dims &d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); i++) s += (i ? "x" : "") + std::to_string(d[i]);
  return s + "]";
}

struct Resample {
  dnnl::primitive prim;
  int outL = -1;
};
std::unordered_map<std::string, std::unique_ptr<Resample>> g_resample;

struct ConcatEntry {
  dnnl::concat::primitive_desc pd;
  dnnl::primitive prim;
  int outL = -1;
  bool viaPlain = false;
};
std::unordered_map<std::string, std::unique_ptr<ConcatEntry>> g_concat;

}  // namespace

// crop(x, top, left, h, w) -> y = x[:, :, top:top+h, left:left+w]
EMSEG_FN(crop) {
  NTensor &x = argTensor(info, 0, "x");
  int64_t top = argInt(info, 1, "top", 0, x.h - 1);
  int64_t left = argInt(info, 2, "left", 0, x.w - 1);
  int64_t h = argInt(info, 3, "h", 1, x.h - top);
  int64_t w = argInt(info, 4, "w", 1, x.w - left);
  dims d = {x.n, x.c, h, w};
  memory::desc sub = x.md.submemory_desc(d, {0, 0, top, left});
  memory::desc out(d, x.dtype(), tagOf(x.md));
  TensorPtr y = newTensor(out, internLayout(out), d);
  reorderInto(sub, x.ptr, out, y->ptr);
  return registerTensor(info.Env(), std::move(y));
}

// cropBackward(dy, xShape, top, left) -> dx (zeros with dy written into the window)
EMSEG_FN(cropBackward) {
  NTensor &dy = argTensor(info, 0, "dy");
  auto xs = argInts(info, 1, "xShape", 4, 1);
  int64_t top = argInt(info, 2, "top", 0, 1 << 30);
  int64_t left = argInt(info, 3, "left", 0, 1 << 30);
  if (xs[0] != dy.n || xs[1] != dy.c) throw ArgError("dy and xShape differ in batch or channels");
  if (top + dy.h > xs[2] || left + dy.w > xs[3]) throw ArgError("the crop window does not fit in xShape");
  dims d = {xs[0], xs[1], xs[2], xs[3]};
  memory::desc out(d, dy.dtype(), tagOf(dy.md));
  TensorPtr dx = newTensor(out, internLayout(out), d);
  std::memset(dx->ptr, 0, dx->bytes);
  memory::desc sub = out.submemory_desc(dimsOf(dy), {0, 0, top, left});
  reorderInto(dy.md, dy.ptr, sub, dx->ptr);
  return registerTensor(info.Env(), std::move(dx));
}

// crop3d(x, front, top, left, d, h, w) -> y = x[:, :, front:front+d, top:top+h, left:left+w]
EMSEG_FN(crop3d) {
  NTensor &x = argTensor(info, 0, "x", true, 5);
  int64_t front = argInt(info, 1, "front", 0, x.depth - 1);
  int64_t top = argInt(info, 2, "top", 0, x.h - 1);
  int64_t left = argInt(info, 3, "left", 0, x.w - 1);
  int64_t d = argInt(info, 4, "d", 1, x.depth - front);
  int64_t h = argInt(info, 5, "h", 1, x.h - top);
  int64_t w = argInt(info, 6, "w", 1, x.w - left);
  dims od = {x.n, x.c, d, h, w};
  memory::desc sub = x.md.submemory_desc(od, {0, 0, front, top, left});
  memory::desc out(od, x.dtype(), tagOf(x.md));
  TensorPtr y = newTensor(out, internLayout(out), od);
  reorderInto(sub, x.ptr, out, y->ptr);
  return registerTensor(info.Env(), std::move(y));
}

// crop3dBackward(dy, xShape, front, top, left) -> dx (zeros with dy written into the window)
EMSEG_FN(crop3dBackward) {
  NTensor &dy = argTensor(info, 0, "dy", true, 5);
  auto xs = argInts(info, 1, "xShape", 5, 1);
  int64_t front = argInt(info, 2, "front", 0, 1 << 30);
  int64_t top = argInt(info, 3, "top", 0, 1 << 30);
  int64_t left = argInt(info, 4, "left", 0, 1 << 30);
  if (xs[0] != dy.n || xs[1] != dy.c) throw ArgError("dy and xShape differ in batch or channels");
  if (front + dy.depth > xs[2] || top + dy.h > xs[3] || left + dy.w > xs[4])
    throw ArgError("the crop window does not fit in xShape");
  dims d = {xs[0], xs[1], xs[2], xs[3], xs[4]};
  memory::desc out(d, dy.dtype(), tagOf(dy.md));
  TensorPtr dx = newTensor(out, internLayout(out), d);
  std::memset(dx->ptr, 0, dx->bytes);
  memory::desc sub = out.submemory_desc(dimsOf(dy), {0, 0, front, top, left});
  reorderInto(dy.md, dy.ptr, sub, dx->ptr);
  return registerTensor(info.Env(), std::move(dx));
}

// concat([x0, x1, ...]) -> channel concatenation (4-d or 5-d inputs, all of one rank)
EMSEG_FN(concat) {
  if (info.Length() < 1 || !info[0].IsArray()) throw ArgError("xs: expected an array of tensor handles");
  Napi::Array arr = info[0].As<Napi::Array>();
  uint32_t k = arr.Length();
  if (k == 0) throw ArgError("xs: needs at least one tensor");
  std::vector<NTensor *> xs(k);
  int64_t C = 0;
  for (uint32_t i = 0; i < k; i++) {
    xs[i] = &tensorFromValue(arr.Get(i), ("xs[" + std::to_string(i) + "]").c_str(), true, 0);
    const NTensor &a = *xs[i];
    if (a.n != xs[0]->n || a.depth != xs[0]->depth || a.h != xs[0]->h || a.w != xs[0]->w)
      throw ArgError("concat: input " + std::to_string(i) + " " + shapeStr(dimsOf(a)) + " differs from input 0 " +
                     shapeStr(dimsOf(*xs[0])) + " outside the channel axis");
    if (a.dtype() != xs[0]->dtype()) throw ArgError("concat: inputs have different precisions");
    C += a.c;
  }
  dims d = dimsOf(*xs[0]);
  d[1] = C;
  dt t = xs[0]->dtype();
  // Cached per input layouts: the primitive, and whether inputs go through nchw first (when oneDNN cannot concat
  // the given layouts directly, e.g. channel offsets inside nChw16c blocks).
  Key key;
  for (auto *a : xs) key << int64_t(a->layout);
  auto &e = g_concat[key.s];
  if (!e) {
    auto ne = std::make_unique<ConcatEntry>();
    std::vector<memory::desc> mds;
    for (auto *a : xs) mds.push_back(a->md);
    try {
      ne->pd = dnnl::concat::primitive_desc(1, mds, eng());
    } catch (const dnnl::error &) {
      ne->viaPlain = true;
      for (auto &m : mds) m = plainDesc(dims(m.data.dims, m.data.dims + m.data.ndims), t);
      ne->pd = dnnl::concat::primitive_desc(plainDesc(d, t), 1, mds, eng());
    }
    ne->prim = dnnl::concat(ne->pd);
    ne->outL = internLayout(ne->pd.dst_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  std::vector<TempBuf> tmps(k);
  std::unordered_map<int, memory> args;
  for (uint32_t i = 0; i < k; i++) {
    if (e->viaPlain && !(xs[i]->md == e->pd.src_desc(int(i)))) {
      memory::desc pmd = e->pd.src_desc(int(i));
      tmps[i].alloc(pmd.get_size());
      reorderInto(xs[i]->md, xs[i]->ptr, pmd, tmps[i].ptr);
      args[DNNL_ARG_MULTIPLE_SRC + int(i)] = memory(pmd, eng(), tmps[i].ptr);
    } else {
      args[DNNL_ARG_MULTIPLE_SRC + int(i)] = xs[i]->mem();
    }
  }
  TensorPtr y = newTensor(layoutDesc(e->outL), e->outL, d);
  args[DNNL_ARG_DST] = y->mem();
  run(e->prim, args);
  return registerTensor(info.Env(), std::move(y));
}

// concatBackward(dy, channels[]) -> [dx0, dx1, ...]
EMSEG_FN(concatBackward) {
  NTensor &dy = argTensor(info, 0, "dy", true, 0);
  if (info.Length() < 2 || !info[1].IsArray()) throw ArgError("channels: expected an array of integers");
  uint32_t k = info[1].As<Napi::Array>().Length();
  if (k == 0) throw ArgError("channels: needs at least one entry");
  auto ch = argInts(info, 1, "channels", k, 1);
  int64_t total = 0;
  for (auto c : ch) total += c;
  if (total != dy.c)
    throw ArgError("channel counts sum to " + std::to_string(total) + " but dy has " + std::to_string(dy.c));
  dt t = dy.dtype();
  ftag outTag = tagOf(dy.md);
  // Channel offsets into a blocked layout are only addressable at block boundaries: go through nchw then.
  memory::desc srcMd = dy.md;
  void *srcPtr = dy.ptr;
  TempBuf plain;
  const bool plainTag = outTag == ftag::nchw || outTag == ftag::nhwc || outTag == ftag::ncdhw || outTag == ftag::ndhwc;
  if (!plainTag || !(dy.md == memory::desc(dimsOf(dy), t, outTag))) {
    srcMd = plainDesc(dimsOf(dy), t);
    plain.alloc(srcMd.get_size());
    reorderInto(dy.md, dy.ptr, srcMd, plain.ptr);
    srcPtr = plain.ptr;
  }
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, k);
  std::vector<TensorPtr> pieces;
  int64_t c0 = 0;
  for (uint32_t i = 0; i < k; i++) {
    dims pdims = dimsOf(dy);
    pdims[1] = ch[i];
    dims offsets(pdims.size(), 0);
    offsets[1] = c0;
    memory::desc sub = srcMd.submemory_desc(pdims, offsets);
    memory::desc pmd(pdims, t, outTag);
    TensorPtr p = newTensor(pmd, internLayout(pmd), pdims);
    reorderInto(sub, srcPtr, pmd, p->ptr);
    pieces.push_back(std::move(p));
    c0 += ch[i];
  }
  for (uint32_t i = 0; i < k; i++) out.Set(i, registerTensor(env, std::move(pieces[i])));
  return out;
}

// upsampleNearest(x, factor) -> y [N, C, H*f, W*f]
EMSEG_FN(upsampleNearest) {
  NTensor &x = argTensor(info, 0, "x");
  int64_t f = argInt(info, 1, "factor", 1, 1 << 16);
  dims od = {x.n, x.c, x.h * f, x.w * f};
  Key key;
  key << int64_t(1) << int64_t(x.layout) << f;
  auto &e = g_resample[key.s];
  if (!e) {
    std::vector<float> fac = {float(f), float(f)};
    dnnl::resampling_forward::desc d(prop_kind::forward_training, algorithm::resampling_nearest, fac, x.md,
                                     memory::desc(od, x.dtype(), ftag::any));
    dnnl::resampling_forward::primitive_desc pd(d, eng());
    auto ne = std::make_unique<Resample>();
    ne->prim = dnnl::resampling_forward(pd);
    ne->outL = internLayout(pd.dst_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  TensorPtr y = newTensor(layoutDesc(e->outL), e->outL, od);
  run(e->prim, {{DNNL_ARG_SRC, x.mem()}, {DNNL_ARG_DST, y->mem()}});
  return registerTensor(info.Env(), std::move(y));
}

// upsampleNearestBackward(dy, factor) -> dx (sums over each f x f block)
EMSEG_FN(upsampleNearestBackward) {
  NTensor &dy = argTensor(info, 0, "dy");
  int64_t f = argInt(info, 1, "factor", 1, 1 << 16);
  if (dy.h % f != 0 || dy.w % f != 0) throw ArgError("dy's spatial size is not a multiple of the factor");
  dims sd = {dy.n, dy.c, dy.h / f, dy.w / f};
  Key key;
  key << int64_t(2) << int64_t(dy.layout) << f;
  auto &e = g_resample[key.s];
  if (!e) {
    std::vector<float> fac = {float(f), float(f)};
    memory::desc srcMd(sd, dy.dtype(), tagOf(dy.md));
    dnnl::resampling_forward::primitive_desc hint(
        dnnl::resampling_forward::desc(prop_kind::forward_training, algorithm::resampling_nearest, fac, srcMd, dy.md),
        eng());
    dnnl::resampling_backward::desc d(algorithm::resampling_nearest, fac, memory::desc(sd, dy.dtype(), ftag::any),
                                      dy.md);
    dnnl::resampling_backward::primitive_desc pd(d, eng(), hint);
    auto ne = std::make_unique<Resample>();
    ne->prim = dnnl::resampling_backward(pd);
    ne->outL = internLayout(pd.diff_src_desc());
    g_cacheEntries++;
    e = std::move(ne);
  }
  TensorPtr dx = newTensor(layoutDesc(e->outL), e->outL, sd);
  run(e->prim, {{DNNL_ARG_DIFF_DST, dy.mem()}, {DNNL_ARG_DIFF_SRC, dx->mem()}});
  return registerTensor(info.Env(), std::move(dx));
}

}  // namespace emseg
