{
  "targets": [
    {
      "target_name": "coalmine_icmp",
      "sources": ["native/icmp/icmp.c", "native/tcpinfo/tcpinfo.c", "native/tcpinfo/connect.c", "native/fatalsignal/fatalsignal.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-Wl,-z,nodelete"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["native/icmp/icmp.c", "native/tcpinfo/tcpinfo.c", "native/tcpinfo/connect.c", "native/fatalsignal/fatalsignal.c"] }]
      ]
    }
  ]
}
