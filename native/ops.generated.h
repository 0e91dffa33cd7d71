// GENERATED from native/ops.json by scripts/gen-native-ops.mjs (npm run gen:native-ops): do not edit.
#pragma once

// X(name) for every function the addon exports; each is defined with EMSEG_FN(name) in the file named above it.
#define EMSEG_OPS(X) \
  /* system.cc */ \
  X(info) \
  X(setThreads) \
  X(stats) \
  X(setLayoutPolicy) \
  X(trimPool) \
  X(release) \
  X(fromArray) \
  X(toArray) \
  X(describe) \
  /* conv.cc */ \
  X(conv2d) \
  X(conv2dInt8) \
  X(conv2dBackwardData) \
  X(conv2dBackwardWeights) \
  X(deconv2d) \
  X(deconv2dBackwardData) \
  X(deconv2dBackwardWeights) \
  X(conv3d) \
  X(conv3dBackwardData) \
  X(conv3dBackwardWeights) \
  X(deconv3d) \
  X(deconv3dBackwardData) \
  X(deconv3dBackwardWeights) \
  /* pool.cc */ \
  X(maxPool2d) \
  X(maxPool2dBackward) \
  X(maxPool3d) \
  X(maxPool3dBackward) \
  /* lrn.cc */ \
  X(lrn) \
  X(lrnBackward) \
  /* eltwise.cc */ \
  X(relu) \
  X(reluBackward) \
  X(add) \
  X(dropout) \
  X(dropoutBackward) \
  /* shape_ops.cc */ \
  X(crop) \
  X(cropBackward) \
  X(crop3d) \
  X(crop3dBackward) \
  X(concat) \
  X(concatBackward) \
  X(upsampleNearest) \
  X(upsampleNearestBackward) \
  /* softmax_ce.cc */ \
  X(softmax) \
  X(softmaxCrossEntropy) \
  /* sigmoid_ce.cc */ \
  X(sigmoid) \
  X(sigmoidCrossEntropy) \
  /* end */
