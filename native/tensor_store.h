// Native-owned tensors (opaque numeric handles on the JS side), the size-keyed buffer pool and layout interning.
#pragma once

#include "common.h"

namespace emseg {

// ---- buffer pool: exact-size free lists of 64-byte aligned buffers
void *poolAcquire(size_t bytes);
void poolRelease(void *p, size_t bytes);
void poolTrim();
struct PoolStats {
  int64_t liveBuffers, liveBytes, pooledBuffers, pooledBytes;
};
PoolStats poolStats();

// A scoped pool buffer (temporaries inside one call).
struct TempBuf {
  void *ptr = nullptr;
  size_t bytes = 0;
  TempBuf() = default;
  TempBuf(const TempBuf &) = delete;
  TempBuf &operator=(const TempBuf &) = delete;
  void alloc(size_t n) {
    reset();
    bytes = n;
    ptr = poolAcquire(n);
  }
  void reset() {
    if (ptr) poolRelease(ptr, bytes);
    ptr = nullptr;
    bytes = 0;
  }
  ~TempBuf() { reset(); }
};

// ---- layouts: every distinct memory::desc gets a small integer id, so "same layout?" is an int compare
int internLayout(const memory::desc &md);
const memory::desc &layoutDesc(int id);

// ---- tensors
struct NTensor {
  memory::desc md;
  int layout = -1;
  int64_t n = 0, c = 0, h = 0, w = 0;  // logical NCHW
  int64_t depth = 0;                   // 0: a 4-d NCHW tensor; else the D of a 5-d NCDHW tensor (3-d ops)
  void *ptr = nullptr;
  size_t bytes = 0;
  // Workspaces remember the forward primitive they came from (pooling), so backward uses a matching hint.
  bool workspace = false;
  int wsKind = 0;  // 1: max-pool argmax, 2: LRN
  std::shared_ptr<void> origin;

  NTensor(const memory::desc &m, int lay, int64_t N, int64_t C, int64_t H, int64_t W);
  ~NTensor();
  NTensor(const NTensor &) = delete;
  NTensor &operator=(const NTensor &) = delete;
  memory mem() const { return memory(md, eng(), ptr); }
  dt dtype() const { return md.data_type(); }
  bool isFloat() const { return !workspace; }
  int rank() const { return depth > 0 ? 5 : 4; }
};
using TensorPtr = std::unique_ptr<NTensor>;

TensorPtr newTensor(const memory::desc &md, int layout, int64_t N, int64_t C, int64_t H, int64_t W);
// A 4-d [N,C,H,W] or 5-d [N,C,D,H,W] tensor.
TensorPtr newTensor(const memory::desc &md, int layout, const dims &d);
// Hands ownership to the registry; returns the JS handle.
Napi::Value registerTensor(Napi::Env env, TensorPtr t);
// Looks a handle up (throws ArgError on a non-number, unknown or released handle, a workspace when floatOnly, or a
// tensor of another rank than `rank`: 4 (NCHW, every 2-d op), 5 (NCDHW, the 3-d ops) or 0 (any).
NTensor &tensorFromValue(const Napi::Value &v, const char *name, bool floatOnly = true, int rank = 4);
NTensor &argTensor(const Napi::CallbackInfo &info, size_t i, const char *name, bool floatOnly = true, int rank = 4);
bool releaseTensor(double id);
int64_t liveTensorCount();

// The plain-layout memory desc [N,C,H,W] (or [N,C,D,H,W]) of a data type.
inline memory::desc plainDesc(const dims &d, dt t) { return memory::desc(d, t, d.size() == 5 ? ftag::ncdhw : ftag::nchw); }
inline dims dimsOf(const NTensor &t) {
  if (t.depth > 0) return {t.n, t.c, t.depth, t.h, t.w};
  return {t.n, t.c, t.h, t.w};
}
// "[a,b,c,d]" (error messages).
std::string shapeString(const dims &d);
// The format tag of md if it is one of the common 4D tags (nchw, nhwc, nChw16c, nChw8c, nChw4c) or their 5D twins
// (ncdhw, ndhwc, nCdhw16c, nCdhw8c, nCdhw4c); else the plain tag of its rank.
ftag tagOf(const memory::desc &md);

// Returns a memory holding t's data in layout `want` (a no-op when it already is; else a cached reorder into tmp).
memory inLayout(const NTensor &t, int want, TempBuf &tmp);
// A cached reorder between two memory descs (any layouts / types).
dnnl::reorder &cachedReorder(const memory::desc &from, const memory::desc &to);

}  // namespace emseg
