{
  "targets": [
    {
      "target_name": "ferry",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/netns.cc",
        "src/netlink.cc",
        "src/bpf.cc",
        "src/bpf_object.cc",
        "src/bpf_map.cc",
        "src/bpf_pin.cc",
        "src/bpf_attach.cc",
        "src/bpf_test_run.cc",
        "src/flock.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
