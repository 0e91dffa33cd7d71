// Engine/stream, argument helpers, error mapping, and the storage / info / threading entry points.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "ops.h"
#include "tensor_store.h"

namespace emseg {

int64_t g_cacheEntries = 0;
int g_layoutPolicy = 0;

dnnl::engine &eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream &strm() {
  static dnnl::stream s(eng());
  return s;
}

int64_t argInt(const Napi::CallbackInfo &info, size_t i, const char *name, int64_t lo, int64_t hi) {
  if (i >= info.Length() || !info[i].IsNumber()) throw ArgError(std::string(name) + ": expected an integer");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < -9e15 || d > 9e15)
    throw ArgError(std::string(name) + ": expected an integer, got " + std::to_string(d));
  int64_t v = int64_t(d);
  if (v < lo || v > hi)
    throw ArgError(std::string(name) + ": " + std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "]");
  return v;
}

double argNumber(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (i >= info.Length() || !info[i].IsNumber()) throw ArgError(std::string(name) + ": expected a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw ArgError(std::string(name) + ": expected a finite number");
  return d;
}

bool argBool(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (i >= info.Length() || !info[i].IsBoolean()) throw ArgError(std::string(name) + ": expected a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::vector<int64_t> argInts(const Napi::CallbackInfo &info, size_t i, const char *name, size_t n, int64_t lo) {
  if (i >= info.Length() || !info[i].IsArray())
    throw ArgError(std::string(name) + ": expected an array of " + std::to_string(n) + " integers");
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() != n) throw ArgError(std::string(name) + ": expected " + std::to_string(n) + " integers");
  std::vector<int64_t> out(n);
  for (uint32_t k = 0; k < n; k++) {
    Napi::Value v = a.Get(k);
    if (!v.IsNumber()) throw ArgError(std::string(name) + ": expected integers");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::floor(d) || d < double(lo) || d > 1e9)
      throw ArgError(std::string(name) + "[" + std::to_string(k) + "] = " + std::to_string(d) + " is invalid (min " +
                     std::to_string(lo) + ")");
    out[k] = int64_t(d);
  }
  return out;
}

F32Arg argF32(const Napi::CallbackInfo &info, size_t i, const char *name, int64_t expected, bool nullable) {
  F32Arg r;
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) {
    if (nullable) return r;
    throw ArgError(std::string(name) + ": expected a Float32Array");
  }
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw ArgError(std::string(name) + ": expected a Float32Array");
  auto a = info[i].As<Napi::Float32Array>();
  r.data = a.Data();
  r.length = a.ElementLength();
  if (expected >= 0 && int64_t(r.length) != expected)
    throw ArgError(std::string(name) + ": expected " + std::to_string(expected) + " elements, got " +
                   std::to_string(r.length));
  return r;
}

Napi::Error toJsError(Napi::Env env, const char *fn) {
  try {
    throw;
  } catch (const ArgError &e) {
    return Napi::TypeError::New(env, std::string("emseg native ") + fn + ": " + e.what());
  } catch (const dnnl::error &e) {
    return Napi::Error::New(env, std::string("emseg native ") + fn + ": oneDNN error (status " +
                                     std::to_string(int(e.status)) + "): " + e.what());
  } catch (const std::bad_alloc &) {
    return Napi::RangeError::New(env, std::string("emseg native ") + fn + ": out of memory");
  } catch (const std::exception &e) {
    return Napi::Error::New(env, std::string("emseg native ") + fn + ": " + e.what());
  } catch (...) {
    return Napi::Error::New(env, std::string("emseg native ") + fn + ": unknown native exception");
  }
}

static const char *isaName(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    default: return "all";
  }
}

static bool bf16Supported() {
  unsigned isa = unsigned(dnnl::get_effective_cpu_isa());
  unsigned need = unsigned(dnnl_cpu_isa_avx512_core_bf16);
  return (isa & need) == need;
}

static const char *runtimeName(unsigned r) {
  switch (r) {
    case DNNL_RUNTIME_OMP: return "omp";
    case DNNL_RUNTIME_TBB: return "tbb";
    case DNNL_RUNTIME_SEQ: return "sequential";
    case DNNL_RUNTIME_THREADPOOL: return "threadpool";
    case DNNL_RUNTIME_SYCL: return "sycl";
    case DNNL_RUNTIME_OCL: return "ocl";
    case DNNL_RUNTIME_NONE: return "none";
    default: return "unknown";
  }
}

EMSEG_FN(info) {
  Napi::Env env = info.Env();
  const dnnl::version_t *v = dnnl::version();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  o.Set("hash", v->hash ? v->hash : "");
  o.Set("cpuRuntime", runtimeName(v->cpu_runtime));
  o.Set("isa", isaName(dnnl::get_effective_cpu_isa()));
  o.Set("bf16", bf16Supported());
  o.Set("threads", omp_get_max_threads());
  o.Set("procs", omp_get_num_procs());
  return o;
}

EMSEG_FN(setThreads) {
  int64_t n = argInt(info, 0, "threads", 1, 1024);
  omp_set_num_threads(int(n));
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

// setLayoutPolicy(0 | 1 | 2): 0 = oneDNN's choice (format_tag::any), 1 = nChw16c, 2 = nhwc for convolutions.
EMSEG_FN(setLayoutPolicy) {
  g_layoutPolicy = int(argInt(info, 0, "policy", 0, 2));
  return info.Env().Undefined();
}

EMSEG_FN(stats) {
  Napi::Env env = info.Env();
  PoolStats p = poolStats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("tensors", double(liveTensorCount()));
  o.Set("liveBuffers", double(p.liveBuffers));
  o.Set("liveBytes", double(p.liveBytes));
  o.Set("pooledBuffers", double(p.pooledBuffers));
  o.Set("pooledBytes", double(p.pooledBytes));
  o.Set("cachedPrimitives", double(g_cacheEntries));
  return o;
}

EMSEG_FN(trimPool) {
  poolTrim();
  return info.Env().Undefined();
}

EMSEG_FN(release) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw ArgError("id: expected a native tensor handle");
  return Napi::Boolean::New(info.Env(), releaseTensor(info[0].As<Napi::Number>().DoubleValue()));
}

// fromArray(data: Float32Array, shape: [N,C,H,W] | [N,C,D,H,W], bf16: boolean) -> handle (plain nchw / ncdhw)
EMSEG_FN(fromArray) {
  const bool five = info.Length() > 1 && info[1].IsArray() && info[1].As<Napi::Array>().Length() == 5;
  dims d = argInts(info, 1, "shape", five ? 5 : 4, 1);
  bool bf16 = argBool(info, 2, "bf16");
  if (bf16 && !bf16Supported()) throw ArgError("bf16 tensors need a CPU with avx512_core_bf16");
  int64_t count = 1;
  for (int64_t v : d) count *= v;
  F32Arg a = argF32(info, 0, "data", count, false);
  memory::desc md = plainDesc(d, bf16 ? dt::bf16 : dt::f32);
  TensorPtr t = newTensor(md, internLayout(md), d);
  if (!bf16) {
    std::memcpy(t->ptr, a.data, a.length * sizeof(float));
  } else {
    memory::desc src = plainDesc(d, dt::f32);
    memory sm(src, eng(), a.data);
    memory dm = t->mem();
    run(cachedReorder(src, md), {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}});
  }
  return registerTensor(info.Env(), std::move(t));
}

// toArray(handle, out?) -> Float32Array (NCHW): into `out` when given (exactly the tensor's size; a caller reusing
// one array tile after tile spares a fresh allocation, page-faulted in, every time), else a new array.
EMSEG_FN(toArray) {
  NTensor &t = argTensor(info, 0, "tensor", true, 0);
  dims d = dimsOf(t);
  const int64_t count = t.n * t.c * t.h * t.w * (t.depth > 0 ? t.depth : 1);
  F32Arg given = argF32(info, 1, "out", count, true);
  Napi::Float32Array out = given.data ? info[1].As<Napi::Float32Array>() : Napi::Float32Array::New(info.Env(), size_t(count));
  memory::desc od = plainDesc(d, dt::f32);
  if (t.md == od) {
    std::memcpy(out.Data(), t.ptr, size_t(count) * sizeof(float));
  } else {
    memory sm = t.mem();
    memory dm(od, eng(), out.Data());
    run(cachedReorder(t.md, od), {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}});
  }
  return out;
}

static std::string describeDesc(const memory::desc &md) {
  const dnnl_memory_desc_t &d = md.data;
  std::string s;
  switch (md.data_type()) {
    case dt::f32: s = "f32"; break;
    case dt::bf16: s = "bf16"; break;
    case dt::u8: s = "u8"; break;
    case dt::s8: s = "s8"; break;
    case dt::s32: s = "s32"; break;
    default: s = "dt" + std::to_string(int(md.data_type()));
  }
  if (d.format_kind != dnnl_blocked) return s + ":opaque";
  // strides order -> letters, plus inner blocks, e.g. "abcd" / "aBcd16b"
  std::vector<int> order(size_t(d.ndims));
  for (int i = 0; i < d.ndims; i++) order[size_t(i)] = i;
  const auto &b = d.format_desc.blocking;
  std::sort(order.begin(), order.end(), [&](int x, int y) { return b.strides[x] > b.strides[y]; });
  s += ":";
  for (int i : order) {
    bool blocked = false;
    for (int k = 0; k < b.inner_nblks; k++) blocked |= b.inner_idxs[k] == i;
    s += char((blocked ? 'A' : 'a') + i);
  }
  for (int k = 0; k < b.inner_nblks; k++) s += std::to_string(b.inner_blks[k]) + char('a' + b.inner_idxs[k]);
  return s;
}

// describe(handle) -> { shape, layout, bytes }  (debugging / tests)
EMSEG_FN(describe) {
  NTensor &t = argTensor(info, 0, "tensor", false, 0);
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const dims d = dimsOf(t);
  Napi::Array sh = Napi::Array::New(env, d.size());
  for (uint32_t i = 0; i < d.size(); i++) sh.Set(i, double(d[i]));
  o.Set("shape", sh);
  o.Set("layout", describeDesc(t.md));
  o.Set("bytes", double(t.bytes));
  o.Set("workspace", !t.isFloat());
  return o;
}

}  // namespace emseg
