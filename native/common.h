// Shared helpers for the emseg oneDNN addon: engine/stream, argument parsing, error wrapping, cache keys.
#pragma once

#include <napi.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace emseg {

using dnnl::memory;
using dt = dnnl::memory::data_type;
using ftag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

dnnl::engine &eng();
dnnl::stream &strm();

// Bad arguments from JS: turned into a JS TypeError by the EMSEG_FN wrapper.
struct ArgError : std::runtime_error {
  explicit ArgError(const std::string &m) : std::runtime_error(m) {}
};

// Counts cached primitive entries (all ops), exposed via stats() so tests can check steady-state reuse.
extern int64_t g_cacheEntries;
// How convolutions pick activation layouts (see conv.cc actDesc); part of every conv cache key.
extern int g_layoutPolicy;

// ---- argument helpers (throw ArgError)
int64_t argInt(const Napi::CallbackInfo &info, size_t i, const char *name, int64_t lo = INT64_MIN,
               int64_t hi = INT64_MAX);
double argNumber(const Napi::CallbackInfo &info, size_t i, const char *name);
bool argBool(const Napi::CallbackInfo &info, size_t i, const char *name);
// An array of exactly `n` integers, each >= lo.
std::vector<int64_t> argInts(const Napi::CallbackInfo &info, size_t i, const char *name, size_t n, int64_t lo);
// A Float32Array (length checked when expected >= 0); nullable: null/undefined -> data == nullptr.
struct F32Arg {
  float *data = nullptr;
  size_t length = 0;
};
F32Arg argF32(const Napi::CallbackInfo &info, size_t i, const char *name, int64_t expected, bool nullable);

// ---- binary cache keys
struct Key {
  std::string s;
  Key &operator<<(int64_t v) {
    s.append(reinterpret_cast<const char *>(&v), sizeof v);
    return *this;
  }
  Key &operator<<(double v) {
    s.append(reinterpret_cast<const char *>(&v), sizeof v);
    return *this;
  }
  Key &operator<<(const std::vector<int64_t> &v) {
    for (auto x : v) *this << x;
    return *this;
  }
};

// Run a primitive synchronously.
inline void run(dnnl::primitive &p, const std::unordered_map<int, memory> &args) {
  p.execute(strm(), args);
  strm().wait();
}

Napi::Error toJsError(Napi::Env env, const char *fn);

}  // namespace emseg

// Every exported function is defined with EMSEG_FN: C++/oneDNN exceptions become JS exceptions, never a crash.
#define EMSEG_FN(name)                                                         \
  static Napi::Value name##_impl(const Napi::CallbackInfo &info);              \
  Napi::Value name(const Napi::CallbackInfo &info) {                           \
    try {                                                                      \
      return name##_impl(info);                                                \
    } catch (const Napi::Error &) {                                            \
      throw;                                                                   \
    } catch (...) {                                                            \
      throw ::emseg::toJsError(info.Env(), #name);                             \
    }                                                                          \
  }                                                                            \
  static Napi::Value name##_impl(const Napi::CallbackInfo &info)
