/*
 * tcpInfo(fd, out): the kernel's view of one connected TCP socket (getsockopt TCP_INFO), for probes
 * that want the network's connect time rather than the time our event loop took to notice it.
 *
 * Right after the handshake, tcpi_rtt is the kernel's one RTT sample so far: the SYN's transmit time
 * to the SYN/ACK's arrival, in microseconds, taken in the TCP stack on both ends. When the SYN was
 * retransmitted the kernel takes no sample (Karn's rule) and tcpi_rtt is 0, and total_retrans says so.
 *
 * It fills a caller-owned Float64Array instead of returning an object, so the per-probe cost is one
 * syscall and no allocation. Returns 0, or the errno of getsockopt (EBADF, ENOTSOCK, EOPNOTSUPP...).
 */
/* linux/tcp.h, not netinet/tcp.h: glibc's struct tcp_info lacks tcpi_min_rtt. The two headers
   clash, so the code that needs libuv (which includes netinet/tcp.h) lives in connect.c. */
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <node_api.h>

/* Slots of `out`, mirrored in src/probes/kernel-tcp.ts. */
enum {
  SLOT_STATE,         /* TCP_ESTABLISHED = 1 ... */
  SLOT_RTT_US,        /* smoothed RTT; after the handshake, the SYN -> SYN/ACK sample */
  SLOT_RTTVAR_US,
  SLOT_MIN_RTT_US,    /* -1 when the kernel is older than 4.10 and does not report it */
  SLOT_TOTAL_RETRANS, /* segments retransmitted on this connection, the SYN included */
  SLOT_COUNT
};

static napi_value tcp_info(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int32_t fd = -1;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "tcpInfo(fd, out): fd must be a non-negative integer");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  bool is_typed = false;
  napi_is_typedarray(env, argv[1], &is_typed);
  if (!is_typed ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || length < SLOT_COUNT) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "tcpInfo(fd, out): out must be a Float64Array of 5 or more");
    return NULL;
  }
  double *out = data;
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  int err = 0;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) err = errno;
  if (!err) {
    out[SLOT_STATE] = ti.tcpi_state;
    out[SLOT_RTT_US] = ti.tcpi_rtt;
    out[SLOT_RTTVAR_US] = ti.tcpi_rttvar;
    out[SLOT_MIN_RTT_US] =
        len >= offsetof(struct tcp_info, tcpi_min_rtt) + sizeof ti.tcpi_min_rtt ? (double)ti.tcpi_min_rtt : -1;
    out[SLOT_TOTAL_RETRANS] = ti.tcpi_total_retrans;
  }
  napi_value result;
  if (napi_create_int32(env, err, &result) != napi_ok) return NULL;
  return result;
}

/* For connect.c: the handshake RTT (µs) and retransmission count of a connected socket; 0 or errno. */
int coalmine_tcp_rtt(int fd, double *rtt_us, double *total_retrans) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return errno;
  *rtt_us = ti.tcpi_rtt;
  *total_retrans = ti.tcpi_total_retrans;
  return 0;
}

/* native/tcpinfo/connect.c */
napi_value coalmine_tcp_connect_init(napi_env env, napi_callback_info info);
napi_value coalmine_tcp_connect(napi_env env, napi_callback_info info);
napi_value coalmine_tcp_connect_cancel(napi_env env, napi_callback_info info);

/* Called from the module's init in native/icmp/icmp.c: one addon, one init. */
napi_status coalmine_register_tcp_info(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback cb;
  } fns[] = {
      {"tcpInfo", tcp_info},
      {"tcpConnectInit", coalmine_tcp_connect_init},
      {"tcpConnect", coalmine_tcp_connect},
      {"tcpConnectCancel", coalmine_tcp_connect_cancel},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_status status = napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn);
    if (status != napi_ok) return status;
    status = napi_set_named_property(env, exports, fns[i].name, fn);
    if (status != napi_ok) return status;
  }
  return napi_ok;
}
