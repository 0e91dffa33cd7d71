#include "tensor_store.h"

#include <cstdlib>
#include <functional>
#include <map>
#include <sys/mman.h>
#include <unordered_map>

namespace emseg {

// ------------------------------------------------------------------ buffer pool
// Freed buffers are parked by capacity and handed to the next request they fit best (smallest capacity >= the
// request, at most kReuseSlack times it). Exact sizes alone would hold one buffer per distinct activation size of
// a network (a U-Net's sizes are all different), so a tile's run kept every activation it ever made; reusing a
// larger parked buffer bounds the pool by what is alive at once, times the slack. Fresh memory is the expensive
// part: in a VM every first touch of a page faults (measured 7-12 us a 4 KiB page here), so parked buffers are reused
// across tiles rather than returned to the OS, and large ones ask for transparent huge pages (512x fewer faults).
namespace {
std::multimap<size_t, void *> g_free;            // parked buffers by capacity
std::unordered_map<void *, size_t> g_capacity;   // capacity of every buffer the pool handed out
int64_t g_liveBuffers = 0, g_liveBytes = 0, g_pooledBuffers = 0, g_pooledBytes = 0;
// Keep at most this many bytes parked in the pool; above it, released buffers go straight back to the OS.
const int64_t kPoolCapBytes = int64_t(2) << 30;
// A parked buffer serves requests down to 1 / kReuseSlack of its capacity.
const size_t kReuseSlack = 2;
// Buffers from this size up are aligned to and advised as transparent huge pages.
const size_t kHugePage = size_t(2) << 20;
const size_t kHugeFrom = size_t(4) << 20;

size_t roundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

void *freshBuffer(size_t cap) {
  const bool huge = cap >= kHugeFrom;
  void *p = std::aligned_alloc(huge ? kHugePage : 64, cap);
  if (!p) throw std::bad_alloc();
  if (huge) madvise(p, cap, MADV_HUGEPAGE);  // advice only: without THP the buffer is still good
  return p;
}
}  // namespace

void *poolAcquire(size_t bytes) {
  const size_t n = roundUp(bytes == 0 ? 64 : bytes, 64);
  void *p = nullptr;
  size_t cap = n;
  auto it = g_free.lower_bound(n);
  if (it != g_free.end() && it->first / kReuseSlack <= n) {
    cap = it->first;
    p = it->second;
    g_free.erase(it);
    g_pooledBuffers--;
    g_pooledBytes -= int64_t(cap);
  } else {
    cap = n >= kHugeFrom ? roundUp(n, kHugePage) : n;
    p = freshBuffer(cap);
  }
  g_capacity[p] = cap;
  g_liveBuffers++;
  g_liveBytes += int64_t(cap);
  return p;
}

void poolRelease(void *p, size_t /*bytes*/) {
  if (!p) return;
  auto it = g_capacity.find(p);
  if (it == g_capacity.end()) std::abort();  // not the pool's: a bug in the addon, never user input
  const size_t cap = it->second;
  g_capacity.erase(it);
  g_liveBuffers--;
  g_liveBytes -= int64_t(cap);
  if (g_pooledBytes + int64_t(cap) > kPoolCapBytes) {
    std::free(p);
    return;
  }
  g_free.emplace(cap, p);
  g_pooledBuffers++;
  g_pooledBytes += int64_t(cap);
}

void poolTrim() {
  for (auto &kv : g_free) std::free(kv.second);
  g_free.clear();
  g_pooledBuffers = 0;
  g_pooledBytes = 0;
}

PoolStats poolStats() { return {g_liveBuffers, g_liveBytes, g_pooledBuffers, g_pooledBytes}; }

// ------------------------------------------------------------------ layouts
namespace {
std::vector<memory::desc> g_layouts;
std::unordered_multimap<size_t, int> g_layoutIndex;

size_t hashDesc(const memory::desc &md) {
  const dnnl_memory_desc_t &d = md.data;
  size_t h = std::hash<int>()(d.ndims) ^ (size_t(d.data_type) << 8) ^ (size_t(d.format_kind) << 16);
  auto mix = [&h](int64_t v) { h ^= std::hash<int64_t>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(d.offset0);
  for (int i = 0; i < d.ndims; i++) {
    mix(d.dims[i]);
    mix(d.padded_dims[i]);
    mix(d.padded_offsets[i]);
  }
  if (d.format_kind == dnnl_blocked) {
    const auto &b = d.format_desc.blocking;
    for (int i = 0; i < d.ndims; i++) mix(b.strides[i]);
    mix(b.inner_nblks);
    for (int i = 0; i < b.inner_nblks; i++) {
      mix(b.inner_blks[i]);
      mix(b.inner_idxs[i]);
    }
  }
  return h;
}
}  // namespace

int internLayout(const memory::desc &md) {
  size_t h = hashDesc(md);
  auto range = g_layoutIndex.equal_range(h);
  for (auto it = range.first; it != range.second; ++it)
    if (g_layouts[it->second] == md) return it->second;
  int id = int(g_layouts.size());
  g_layouts.push_back(md);
  g_layoutIndex.emplace(h, id);
  return id;
}

const memory::desc &layoutDesc(int id) { return g_layouts.at(size_t(id)); }

ftag tagOf(const memory::desc &md) {
  if (md.data.ndims == 5) {
    dims d(md.data.dims, md.data.dims + 5);
    for (ftag t : {ftag::ncdhw, ftag::ndhwc, ftag::nCdhw16c, ftag::nCdhw8c, ftag::nCdhw4c})
      if (memory::desc(d, md.data_type(), t) == md) return t;
    return ftag::ncdhw;
  }
  if (md.data.ndims != 4) return ftag::nchw;
  dims d(md.data.dims, md.data.dims + 4);
  for (ftag t : {ftag::nchw, ftag::nhwc, ftag::nChw16c, ftag::nChw8c, ftag::nChw4c})
    if (memory::desc(d, md.data_type(), t) == md) return t;
  return ftag::nchw;
}

std::string shapeString(const dims &d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); i++) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

// ------------------------------------------------------------------ tensors
namespace {
std::unordered_map<int64_t, TensorPtr> g_tensors;
int64_t g_nextId = 1;
}  // namespace

NTensor::NTensor(const memory::desc &m, int lay, int64_t N, int64_t C, int64_t H, int64_t W)
    : md(m), layout(lay), n(N), c(C), h(H), w(W) {
  bytes = md.get_size();
  ptr = poolAcquire(bytes);
}

NTensor::~NTensor() { poolRelease(ptr, bytes); }

TensorPtr newTensor(const memory::desc &md, int layout, int64_t N, int64_t C, int64_t H, int64_t W) {
  return TensorPtr(new NTensor(md, layout, N, C, H, W));
}

TensorPtr newTensor(const memory::desc &md, int layout, const dims &d) {
  if (d.size() == 4) return newTensor(md, layout, d[0], d[1], d[2], d[3]);
  if (d.size() != 5) throw std::runtime_error("tensors are 4-d or 5-d");
  TensorPtr t = newTensor(md, layout, d[0], d[1], d[3], d[4]);
  t->depth = d[2];
  return t;
}

Napi::Value registerTensor(Napi::Env env, TensorPtr t) {
  int64_t id = g_nextId++;
  g_tensors.emplace(id, std::move(t));
  return Napi::Number::New(env, double(id));
}

NTensor &argTensor(const Napi::CallbackInfo &info, size_t i, const char *name, bool floatOnly, int rank) {
  if (i >= info.Length()) throw ArgError(std::string(name) + ": expected a native tensor handle");
  return tensorFromValue(info[i], name, floatOnly, rank);
}

NTensor &tensorFromValue(const Napi::Value &v, const char *name, bool floatOnly, int rank) {
  if (!v.IsNumber()) throw ArgError(std::string(name) + ": expected a native tensor handle");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d < 9e15) || d != double(int64_t(d)))
    throw ArgError(std::string(name) + ": invalid native tensor handle");
  auto it = g_tensors.find(int64_t(d));
  if (it == g_tensors.end())
    throw ArgError(std::string(name) + ": unknown or released native tensor handle");
  if (floatOnly && !it->second->isFloat())
    throw ArgError(std::string(name) + ": a workspace tensor was passed where activations were expected");
  if (rank != 0 && it->second->rank() != rank)
    throw ArgError(std::string(name) + ": expected a " + std::to_string(rank) + "-d tensor, got " +
                   std::to_string(it->second->rank()) + "-d " + shapeString(dimsOf(*it->second)));
  return *it->second;
}

bool releaseTensor(double id) {
  if (!(id >= 1 && id < 9e15) || id != double(int64_t(id))) return false;
  return g_tensors.erase(int64_t(id)) > 0;
}

int64_t liveTensorCount() { return int64_t(g_tensors.size()); }

// ------------------------------------------------------------------ reorders
namespace {
std::unordered_map<int64_t, dnnl::reorder> g_reorders;
}

dnnl::reorder &cachedReorder(const memory::desc &from, const memory::desc &to) {
  int64_t key = (int64_t(internLayout(from)) << 32) | int64_t(internLayout(to));
  auto it = g_reorders.find(key);
  if (it != g_reorders.end()) return it->second;
  dnnl::reorder::primitive_desc pd(eng(), from, eng(), to);
  g_cacheEntries++;
  return g_reorders.emplace(key, dnnl::reorder(pd)).first->second;
}

memory inLayout(const NTensor &t, int want, TempBuf &tmp) {
  if (t.layout == want) return t.mem();
  const memory::desc &wd = layoutDesc(want);
  tmp.alloc(wd.get_size());
  memory dst(wd, eng(), tmp.ptr);
  memory src = t.mem();
  run(cachedReorder(t.md, wd), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
  return dst;
}

}  // namespace emseg
