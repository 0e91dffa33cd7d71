{
  "targets": [
    {
      "target_name": "emseg_native",
      "sources": ["<!@(node ../scripts/gen-native-ops.mjs --sources)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2", "-O1", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-O1", "-O0", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-O3", "-std=c++17", "-fexceptions", "-frtti", "-fopenmp", "-Wall", "-Wno-unused-parameter"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl", "-lgomp"]
    }
  ]
}
