// Module registration for emseg_native.node: every op of native/ops.json (EMSEG_OPS, generated).
#include "ops.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
#define REG(name) exports.Set(#name, Napi::Function::New(env, emseg::name, #name));
  EMSEG_OPS(REG)
#undef REG
  return exports;
}
}  // namespace

NODE_API_MODULE(emseg_native, Init)
