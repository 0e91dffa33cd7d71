// Exported addon functions (each defined with EMSEG_FN in its own file; registered in addon.cc).
#pragma once

#include <napi.h>

namespace emseg {
#define EMSEG_DECL(name) Napi::Value name(const Napi::CallbackInfo &info);
// system.cc
EMSEG_DECL(info)
EMSEG_DECL(setThreads)
EMSEG_DECL(stats)
EMSEG_DECL(setLayoutPolicy)
EMSEG_DECL(trimPool)
EMSEG_DECL(release)
EMSEG_DECL(fromArray)
EMSEG_DECL(toArray)
EMSEG_DECL(describe)
// conv.cc
EMSEG_DECL(conv2d)
EMSEG_DECL(conv2dBackwardData)
EMSEG_DECL(conv2dBackwardWeights)
EMSEG_DECL(deconv2d)
EMSEG_DECL(deconv2dBackwardData)
EMSEG_DECL(deconv2dBackwardWeights)
// pool.cc
EMSEG_DECL(maxPool2d)
EMSEG_DECL(maxPool2dBackward)
// lrn.cc
EMSEG_DECL(lrn)
EMSEG_DECL(lrnBackward)
// eltwise.cc
EMSEG_DECL(relu)
EMSEG_DECL(reluBackward)
EMSEG_DECL(add)
EMSEG_DECL(dropout)
EMSEG_DECL(dropoutBackward)
// shape_ops.cc
EMSEG_DECL(crop)
EMSEG_DECL(cropBackward)
EMSEG_DECL(concat)
EMSEG_DECL(concatBackward)
EMSEG_DECL(upsampleNearest)
EMSEG_DECL(upsampleNearestBackward)
// softmax_ce.cc
EMSEG_DECL(softmax)
EMSEG_DECL(softmaxCrossEntropy)
#undef EMSEG_DECL
}  // namespace emseg
