{
  "targets": [
    {
      "target_name": "netns_kit",
      "sources": [
        "native/addon.cc",
        "native/worker_pool.cc",
        "native/ns_enter.cc",
        "native/nl_socket.cc",
        "native/rtnl/extack.cc",
        "native/rtnl/dump.cc",
        "native/rtnl/message.cc",
        "native/rtnl/batch.cc",
        "native/netns.cc",
        "native/link.cc",
        "native/addr.cc",
        "native/route.cc",
        "native/neigh.cc",
        "native/sysctl.cc",
        "native/nft.cc",
        "native/conntrack.cc",
        "native/bridge_port.cc",
        "native/file_lock.cc",
        "native/watch.cc",
        "native/socket.cc",
        "native/tc.cc",
        "native/rule.cc",
        "native/nexthop.cc",
        "native/fdb.cc",
        "native/bulk/bulk.cc",
        "native/bulk/plan.cc",
        "native/bulk/namespaces.cc",
        "native/bulk/wire.cc",
        "native/bulk/configure.cc",
        "native/bulk/teardown.cc",
        "native/bulk/cleanup_watch.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "<!@(pkg-config --cflags libnl-3.0 libnl-route-3.0 libnftables)"],
      "libraries": ["<!@(pkg-config --libs libnl-3.0 libnl-route-3.0 libnftables)"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"]
    },
    {
      "target_name": "netns_kit_cni_client",
      "product_name": "netns-kit-cni",
      "type": "executable",
      "sources": ["native/cni_client.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
