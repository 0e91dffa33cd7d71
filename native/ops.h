// Exported addon functions: the list is native/ops.json (EMSEG_OPS in the generated ops.generated.h); each is
// defined with EMSEG_FN in its own file and registered in addon.cc.
#pragma once

#include <napi.h>

#include "ops.generated.h"

namespace emseg {
#define EMSEG_DECL(name) Napi::Value name(const Napi::CallbackInfo &info);
EMSEG_OPS(EMSEG_DECL)
#undef EMSEG_DECL
}  // namespace emseg
