// Module registration for emseg_native.node.
#include "ops.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
#define REG(name) exports.Set(#name, Napi::Function::New(env, emseg::name, #name));
  REG(info)
  REG(setThreads)
  REG(stats)
  REG(setLayoutPolicy)
  REG(trimPool)
  REG(release)
  REG(fromArray)
  REG(toArray)
  REG(describe)
  REG(conv2d)
  REG(conv2dBackwardData)
  REG(conv2dBackwardWeights)
  REG(deconv2d)
  REG(deconv2dBackwardData)
  REG(deconv2dBackwardWeights)
  REG(maxPool2d)
  REG(maxPool2dBackward)
  REG(lrn)
  REG(lrnBackward)
  REG(relu)
  REG(reluBackward)
  REG(add)
  REG(dropout)
  REG(dropoutBackward)
  REG(crop)
  REG(cropBackward)
  REG(concat)
  REG(concatBackward)
  REG(upsampleNearest)
  REG(upsampleNearestBackward)
  REG(softmax)
  REG(softmaxCrossEntropy)
#undef REG
  return exports;
}
}  // namespace

NODE_API_MODULE(emseg_native, Init)
