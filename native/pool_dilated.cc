// Dilated max pooling, by hand. oneDNN 2.6 runs dilated pooling only in its reference kernel (~100x slower than
// the convolutions around it), and dense "fast scanning" of patch classifiers is mostly dilated pooling. Here the
// data is kept channels-last (nhwc), so every tap is a contiguous, vectorisable run over channels; the workspace
// holds the winning tap per output element (first maximum in scan order, like oneDNN and the reference).
#include <omp.h>

#include <cmath>

#include "ops.h"
#include "tensor_store.h"

namespace emseg {
namespace {

// Channels are stored in blocks of `cb` contiguous values: nhwc is one block of all channels, nChw16c is
// blocks of 16 (channels padded to a multiple of 16). Element (n, block, y, x, i) of an h x w plane is at
// (((n * blocks + block) * h + y) * w + x) * cb + i, so one kernel serves both layouts without a reorder.
struct Geometry {
  int64_t n, c, ih, iw, oh, ow, kh, kw, sh, sw, pt, pl, dh, dw;
  int64_t cb, blocks;
};

inline float load(const float *p, int64_t i) { return p[i]; }
inline float load(const uint16_t *p, int64_t i) {
  uint32_t bits = uint32_t(p[i]) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline void store(float *p, int64_t i, float v) { p[i] = v; }
inline void store(uint16_t *p, int64_t i, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  p[i] = uint16_t(bits >> 16);  // exact: v is one of the bf16 inputs
}

template <typename T>
void forward(const T *__restrict x, T *__restrict y, int32_t *__restrict ws, const Geometry &g) {
  const int64_t cb = g.cb;
#pragma omp parallel
  {
    std::vector<float> best(cb);
#pragma omp for collapse(3) schedule(static)
    for (int64_t n = 0; n < g.n; n++) {
      for (int64_t blk = 0; blk < g.blocks; blk++) {
        for (int64_t oy = 0; oy < g.oh; oy++) {
          float *__restrict b = best.data();
          const int64_t plane = n * g.blocks + blk;
          for (int64_t ox = 0; ox < g.ow; ox++) {
            const int64_t o = ((plane * g.oh + oy) * g.ow + ox) * cb;
            int32_t *__restrict idx = ws + o;
            for (int64_t c = 0; c < cb; c++) {
              b[c] = -INFINITY;
              idx[c] = -1;
            }
            for (int64_t i = 0; i < g.kh; i++) {
              const int64_t yy = oy * g.sh - g.pt + i * g.dh;
              if (yy < 0 || yy >= g.ih) continue;
              for (int64_t j = 0; j < g.kw; j++) {
                const int64_t xx = ox * g.sw - g.pl + j * g.dw;
                if (xx < 0 || xx >= g.iw) continue;
                const T *__restrict src = x + ((plane * g.ih + yy) * g.iw + xx) * cb;
                const int32_t tap = int32_t(i * g.kw + j);
#pragma omp simd
                for (int64_t c = 0; c < cb; c++) {  // strict '>': the first maximum in scan order wins
                  const float v = load(src, c);
                  const bool gt = v > b[c];
                  b[c] = gt ? v : b[c];
                  idx[c] = gt ? tap : idx[c];
                }
              }
            }
            for (int64_t c = 0; c < cb; c++) store(y, o + c, b[c]);
          }
        }
      }
    }
  }
}

// dx is accumulated in fp32 and written as T. Threads split (image, channel block) pairs, so no two threads ever
// touch one element.
template <typename T>
void backward(const T *__restrict dy, const int32_t *__restrict ws, T *__restrict dx, float *__restrict acc,
              const Geometry &g) {
  const int64_t cb = g.cb;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; n++) {
    for (int64_t blk = 0; blk < g.blocks; blk++) {
      const int64_t plane = n * g.blocks + blk;
      float *__restrict a = acc + plane * g.ih * g.iw * cb;
      std::fill(a, a + g.ih * g.iw * cb, 0.f);
      for (int64_t oy = 0; oy < g.oh; oy++) {
        for (int64_t ox = 0; ox < g.ow; ox++) {
          const int64_t o = ((plane * g.oh + oy) * g.ow + ox) * cb;
          for (int64_t c = 0; c < cb; c++) {
            const int32_t tap = ws[o + c];
            if (tap < 0) continue;
            const int64_t yy = oy * g.sh - g.pt + (tap / g.kw) * g.dh;
            const int64_t xx = ox * g.sw - g.pl + (tap % g.kw) * g.dw;
            a[(yy * g.iw + xx) * cb + c] += load(dy, o + c);
          }
        }
      }
      T *__restrict d = dx + plane * g.ih * g.iw * cb;
      for (int64_t k = 0; k < g.ih * g.iw * cb; k++) {
        if constexpr (std::is_same_v<T, float>) {
          d[k] = a[k];
        } else {
          uint32_t bits;
          std::memcpy(&bits, &a[k], sizeof bits);
          bits += 0x7fff + ((bits >> 16) & 1);  // round to nearest even
          d[k] = uint16_t(bits >> 16);
        }
      }
    }
  }
}

// Keeps nChw16c inputs as they are (what dilated convolutions produce); anything else goes channels-last.
ftag workingTag(const NTensor &x) { return tagOf(x.md) == ftag::nChw16c ? ftag::nChw16c : ftag::nhwc; }
int layoutOf(const dims &d, dt type, ftag tag) { return internLayout(memory::desc(d, type, tag)); }
void setBlocks(Geometry &g, ftag tag) {
  g.cb = tag == ftag::nChw16c ? 16 : g.c;
  g.blocks = (g.c + g.cb - 1) / g.cb;
}

// The workspace remembers the geometry it was made for, so backward can check it was given the right one.
struct DilatedOrigin {
  Geometry g;
};

}  // namespace

bool dilatedPoolApplies(const std::vector<int64_t> &dil, dt type) {
  return (dil[0] > 1 || dil[1] > 1) && (type == dt::f32 || type == dt::bf16);
}

Napi::Value dilatedMaxPool(const Napi::CallbackInfo &info, NTensor &x, const std::vector<int64_t> &k,
                           const std::vector<int64_t> &s, const std::vector<int64_t> &pad,
                           const std::vector<int64_t> &dil, bool training) {
  const int64_t oh = (x.h + pad[0] + pad[2] - ((k[0] - 1) * dil[0] + 1)) / s[0] + 1;
  const int64_t ow = (x.w + pad[1] + pad[3] - ((k[1] - 1) * dil[1] + 1)) / s[1] + 1;
  if (x.h + pad[0] + pad[2] < (k[0] - 1) * dil[0] + 1 || x.w + pad[1] + pad[3] < (k[1] - 1) * dil[1] + 1)
    throw ArgError("pooling window does not fit the input");
  Geometry g{x.n, x.c, x.h, x.w, oh, ow, k[0], k[1], s[0], s[1], pad[0], pad[1], dil[0], dil[1], 0, 0};
  const ftag tag = workingTag(x);
  setBlocks(g, tag);
  const dt type = x.dtype();
  TempBuf tmp;
  memory src = inLayout(x, layoutOf(dimsOf(x), type, tag), tmp);
  const dims yd = {g.n, g.c, g.oh, g.ow};
  const int yL = layoutOf(yd, type, tag);
  TensorPtr y = newTensor(layoutDesc(yL), yL, yd);
  const int wsL = layoutOf(yd, dt::s32, tag);
  TensorPtr ws = newTensor(layoutDesc(wsL), wsL, yd);
  auto *wsp = static_cast<int32_t *>(ws->ptr);
  if (type == dt::f32)
    forward(static_cast<const float *>(src.get_data_handle()), static_cast<float *>(y->ptr), wsp, g);
  else
    forward(static_cast<const uint16_t *>(src.get_data_handle()), static_cast<uint16_t *>(y->ptr), wsp, g);
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, registerTensor(env, std::move(y)));
  if (training) {
    ws->workspace = true;
    ws->wsKind = 3;
    ws->origin = std::make_shared<DilatedOrigin>(DilatedOrigin{g});
    out.Set(1u, registerTensor(env, std::move(ws)));
  } else {
    out.Set(1u, env.Null());
  }
  return out;
}

Napi::Value dilatedMaxPoolBackward(const Napi::CallbackInfo &info, NTensor &dy, NTensor &ws,
                                   const std::vector<int64_t> &xShape, const std::vector<int64_t> &k,
                                   const std::vector<int64_t> &s, const std::vector<int64_t> &pad,
                                   const std::vector<int64_t> &dil) {
  const Geometry &g = static_cast<DilatedOrigin *>(ws.origin.get())->g;
  if (xShape != std::vector<int64_t>{g.n, g.c, g.ih, g.iw})
    throw ArgError("xShape does not match the forward pass that produced this workspace");
  if (k != std::vector<int64_t>{g.kh, g.kw} || s != std::vector<int64_t>{g.sh, g.sw} ||
      pad[0] != g.pt || pad[1] != g.pl || dil != std::vector<int64_t>{g.dh, g.dw})
    throw ArgError("pooling params differ from the forward pass that produced this workspace");
  if (dimsOf(dy) != dims{g.n, g.c, g.oh, g.ow}) throw ArgError("dy's shape does not match the pooled output");
  const dt type = dy.dtype();
  const ftag tag = tagOf(ws.md);  // the layout the forward pass worked in
  TempBuf tmp;
  memory ddst = inLayout(dy, layoutOf(dimsOf(dy), type, tag), tmp);
  const dims xd = {g.n, g.c, g.ih, g.iw};
  const int dxL = layoutOf(xd, type, tag);
  TensorPtr dx = newTensor(layoutDesc(dxL), dxL, xd);
  TempBuf acc;
  acc.alloc(size_t(g.n * g.blocks * g.cb * g.ih * g.iw) * sizeof(float));
  const auto *wsp = static_cast<const int32_t *>(ws.ptr);
  if (type == dt::f32)
    backward(static_cast<const float *>(ddst.get_data_handle()), wsp, static_cast<float *>(dx->ptr),
             static_cast<float *>(acc.ptr), g);
  else
    backward(static_cast<const uint16_t *>(ddst.get_data_handle()), wsp, static_cast<uint16_t *>(dx->ptr),
             static_cast<float *>(acc.ptr), g);
  return registerTensor(info.Env(), std::move(dx));
}

}  // namespace emseg
