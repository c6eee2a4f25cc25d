{
  "targets": [
    {
      "target_name": "octet_native",
      "sources": [
        "native/addon.cc",
        "native/parallel.cc",
        "native/gemm.cc",
        "native/gemm_kernels.cc",
        "native/codec.cc",
        "native/depthwise.cc",
        "native/direct_conv.cc",
        "native/im2col.cc",
        "native/elementwise.cc",
        "native/lowp_gemm.cc",
        "native/lowp_gemm_avx512.cc",
        "native/lowp_gemm_avx2.cc",
        "native/winograd.cc",
        "native/value_stats.cc",
        "native/block_scaled.cc",
        "native/aligned_gemm.cc",
        "native/block_sparse.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"],
      "ldflags": ["-fopenmp"]
    }
  ]
}
