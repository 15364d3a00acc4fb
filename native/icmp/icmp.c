/*
 * coalmine_icmp: ICMP echo sockets for Node.js, written against node_api.h and libuv only.
 *
 * One IcmpSocket is one kernel socket for one address family. It prefers an unprivileged ICMP
 * datagram socket (the kernel picks the echo identifier and only hands us our own replies) and
 * falls back to a raw socket (root or CAP_NET_RAW), where we pick the identifier and a BPF filter
 * drops other processes' echo replies before they wake us.
 *
 * Timing: we read CLOCK_REALTIME right before sendto and take the receive time from the kernel
 * (SO_TIMESTAMPNS, also CLOCK_REALTIME), so the round-trip time does not include the time the
 * reply waited for the JavaScript event loop.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/filter.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#ifndef SO_TIMESTAMPNS
#define SO_TIMESTAMPNS 35
#endif
#ifndef SCM_TIMESTAMPNS
#define SCM_TIMESTAMPNS SO_TIMESTAMPNS
#endif

#define MAX_PAYLOAD 65400
#define RX_BUFFER_BYTES 65536
/* Datagrams read per readiness callback, so a flood cannot starve the event loop. */
#define MAX_READS_PER_WAKEUP 256

typedef struct {
  napi_env env;
  int fd;
  int family; /* 4 or 6 */
  int raw;
  uint16_t id; /* echo identifier: kernel-chosen (dgram) or ours (raw) */
  int id_reserved;
  int closing;       /* close() ran: fd closed, uv_close requested */
  int handle_closed; /* libuv finished closing the poll handle */
  int finalized;     /* the JavaScript object is gone */
  int in_callback;
  int cleanup_hook;  /* registered with napi_add_env_cleanup_hook */
  uv_poll_t poll;
  napi_ref callback;
  napi_async_context async_ctx;
} icmp_socket;

/* Raw-mode identifiers in use in this process, so two raw sockets never share one. */
static uv_mutex_t ids_mutex;
static uint8_t ids_in_use[65536 / 8];
static uint32_t ids_next;
static uv_once_t ids_once = UV_ONCE_INIT;

static void ids_init(void) {
  uv_mutex_init(&ids_mutex);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ids_next = (uint32_t)getpid() ^ (uint32_t)ts.tv_nsec;
}

static int reserve_id(uint16_t *out) {
  uv_once(&ids_once, ids_init);
  uv_mutex_lock(&ids_mutex);
  for (int i = 0; i < 65536; i++) {
    uint16_t id = (uint16_t)(ids_next++ * 40503u); /* a stride that visits every value */
    if (!(ids_in_use[id >> 3] & (1u << (id & 7)))) {
      ids_in_use[id >> 3] |= (uint8_t)(1u << (id & 7));
      uv_mutex_unlock(&ids_mutex);
      *out = id;
      return 0;
    }
  }
  uv_mutex_unlock(&ids_mutex);
  return -1;
}

static void release_id(uint16_t id) {
  uv_mutex_lock(&ids_mutex);
  ids_in_use[id >> 3] &= (uint8_t) ~(1u << (id & 7));
  uv_mutex_unlock(&ids_mutex);
}

static const char *errno_name(int err) { return uv_err_name(-err); }

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, errno_name(err), msg);
  return NULL;
}

#define NAPI_CALL(env, call)                                         \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      bool pending = false;                                          \
      napi_is_exception_pending((env), &pending);                    \
      if (!pending) napi_throw_error((env), NULL, "N-API call failed: " #call); \
      return NULL;                                                   \
    }                                                                \
  } while (0)

static uint16_t checksum(const uint8_t *p, size_t n) {
  uint32_t sum = 0;
  for (; n > 1; p += 2, n -= 2) sum += (uint32_t)(p[0] << 8 | p[1]);
  if (n) sum += (uint32_t)(p[0] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* Raw sockets see every ICMP packet the host receives; these filters keep only what concerns us. */
static int attach_raw_filters(int fd, int family, uint16_t id) {
  if (family == 4) {
    struct icmp_filter types = {.data = ~((1u << ICMP_ECHOREPLY) | (1u << ICMP_DEST_UNREACH) |
                                          (1u << ICMP_SOURCE_QUENCH) | (1u << ICMP_TIME_EXCEEDED) |
                                          (1u << ICMP_PARAMETERPROB))};
    if (setsockopt(fd, SOL_RAW, ICMP_FILTER, &types, sizeof types) < 0) return -1;
    /* As iputils ping: drop echo replies carrying another identifier, pass errors on. */
    struct sock_filter code[] = {
        BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),            /* X = IP header length */
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 4),             /* A = ICMP identifier */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 0, 1),     /* ours? */
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),             /* accept */
        BPF_STMT(BPF_LD | BPF_B | BPF_IND, 0),             /* A = ICMP type */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ICMP_ECHOREPLY, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),             /* an error: inspect it */
        BPF_STMT(BPF_RET | BPF_K, 0),                      /* someone else's reply */
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
  }
  struct icmp6_filter types;
  memset(&types, 0xff, sizeof types); /* a set bit blocks the type */
  int pass[] = {ICMPV6_ECHO_REPLY, ICMPV6_DEST_UNREACH, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED, ICMPV6_PARAMPROB};
  for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) types.data[pass[i] >> 5] &= ~(1u << (pass[i] & 31));
  if (setsockopt(fd, IPPROTO_ICMPV6, ICMPV6_FILTER, &types, sizeof types) < 0) return -1;
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ICMPV6_ECHO_REPLY, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

static int set_options(int fd, int family, int ttl, int dont_fragment, int dgram) {
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0) return -1;
  if (family == 4) {
    if (setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof on) < 0) return -1;
    /* Datagram sockets get ICMP errors only through the error queue. */
    if (dgram && setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on) < 0) return -1;
    if (ttl > 0 && setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) < 0) return -1;
    if (dont_fragment) {
      int pmtu = IP_PMTUDISC_DO;
      if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu) < 0) return -1;
    }
  } else {
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on) < 0) return -1;
    if (dgram && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on) < 0) return -1;
    if (ttl > 0 && setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl) < 0) return -1;
    if (dont_fragment && setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &on, sizeof on) < 0) return -1;
  }
  return 0;
}

/* Opens a datagram ICMP socket and learns the identifier the kernel gave it. Returns fd or -errno. */
static int open_dgram(int family, uint16_t *id) {
  int fd = family == 4 ? socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP)
                       : socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (fd < 0) return -errno;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len = family == 4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  ss.ss_family = family == 4 ? AF_INET : AF_INET6;
  /* Binding to port 0 makes the kernel choose the echo identifier now, so we can report it. */
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  *id = ntohs(family == 4 ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
  return fd;
}

static int open_raw(int family) {
  int fd = family == 4 ? socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP)
                       : socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  return fd < 0 ? -errno : fd;
}

/* ---- receiving ---- */

typedef struct {
  char source[INET6_ADDRSTRLEN];
  int type, code, id, seq, hop_limit;
  const uint8_t *payload;
  size_t payload_len;
  int64_t rx_ns;
} reply;

static int64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void emit(icmp_socket *s, const reply *r) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[8], result;
  napi_get_reference_value(env, s->callback, &cb);
  napi_get_global(env, &recv); /* napi_make_callback needs an object receiver */
  napi_create_string_utf8(env, r->source, NAPI_AUTO_LENGTH, &argv[0]);
  napi_create_int32(env, r->type, &argv[1]);
  napi_create_int32(env, r->code, &argv[2]);
  napi_create_int32(env, r->id, &argv[3]);
  napi_create_int32(env, r->seq, &argv[4]);
  if (r->payload) {
    void *data;
    napi_create_buffer_copy(env, r->payload_len, r->payload, &data, &argv[5]);
  } else {
    napi_get_null(env, &argv[5]);
  }
  napi_create_bigint_int64(env, r->rx_ns, &argv[6]);
  napi_create_int32(env, r->hop_limit, &argv[7]);
  if (cb != NULL) {
    s->in_callback = 1;
    napi_status st = napi_make_callback(env, s->async_ctx, recv, cb, 8, argv, &result);
    s->in_callback = 0;
    if (s->closing && s->async_ctx) {
      napi_async_destroy(env, s->async_ctx);
      s->async_ctx = NULL;
    }
    if (st == napi_pending_exception) {
      /* A bug in the JavaScript callback: report it as an uncaught exception, as Node would. */
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void format_addr(const struct sockaddr_storage *ss, char *out) {
  out[0] = 0;
  if (ss->ss_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, INET6_ADDRSTRLEN);
  else if (ss->ss_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, INET6_ADDRSTRLEN);
}

static int is_error_type(int family, int type) {
  if (family == 4)
    return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH || type == ICMP_TIME_EXCEEDED ||
           type == ICMP_PARAMETERPROB;
  return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG || type == ICMPV6_TIME_EXCEED ||
         type == ICMPV6_PARAMPROB;
}

/* Parses one datagram from the normal queue. Returns 1 if it is ours and `r` is filled. */
static int parse_datagram(icmp_socket *s, const uint8_t *p, size_t n, reply *r) {
  if (s->raw && s->family == 4) {
    if (n < 20) return 0;
    size_t ihl = (size_t)(p[0] & 0x0f) * 4;
    if (ihl < 20 || n < ihl) return 0;
    if (r->hop_limit < 0) r->hop_limit = p[8];
    p += ihl;
    n -= ihl;
  }
  if (n < 8) return 0;
  r->type = p[0];
  r->code = p[1];
  int echo_reply = s->family == 4 ? ICMP_ECHOREPLY : ICMPV6_ECHO_REPLY;
  if (r->type == echo_reply) {
    r->id = p[4] << 8 | p[5];
    r->seq = p[6] << 8 | p[7];
    /* Datagram sockets: the kernel already matched the identifier (and may rewrite it). */
    if (s->raw && r->id != s->id) return 0;
    r->id = s->id;
    r->payload = p + 8;
    r->payload_len = n - 8;
    return 1;
  }
  if (!s->raw || !is_error_type(s->family, r->type)) return 0;
  /* An ICMP error quotes the start of the packet that caused it: find our echo request inside. */
  const uint8_t *q = p + 8;
  size_t m = n - 8;
  if (s->family == 4) {
    if (m < 20) return 0;
    size_t ihl = (size_t)(q[0] & 0x0f) * 4;
    if (ihl < 20 || m < ihl + 8 || q[9] != IPPROTO_ICMP) return 0;
    q += ihl;
    if (q[0] != ICMP_ECHO) return 0;
  } else {
    if (m < 48 || q[6] != IPPROTO_ICMPV6) return 0;
    q += 40;
    if (q[0] != ICMPV6_ECHO_REQUEST) return 0;
  }
  if ((q[4] << 8 | q[5]) != s->id) return 0;
  r->id = s->id;
  r->seq = q[6] << 8 | q[7];
  return 1;
}

static void read_cmsgs(struct msghdr *msg, reply *r, struct sock_extended_err **ee) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(c), sizeof ts);
      r->rx_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    } else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
               (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      r->hop_limit = v;
    } else if (ee && ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
                      (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR))) {
      *ee = (struct sock_extended_err *)CMSG_DATA(c);
    }
  }
}

static _Thread_local uint8_t rx_buffer[RX_BUFFER_BYTES];

/* Reads one message; returns 1 when something was read, 0 when the queue is empty. */
static int read_one(icmp_socket *s, int errqueue) {
  struct sockaddr_storage from;
  union {
    char buf[512];
    struct cmsghdr align;
  } control;
  struct iovec iov = {.iov_base = rx_buffer, .iov_len = sizeof rx_buffer};
  struct msghdr msg = {.msg_name = &from,
                       .msg_namelen = sizeof from,
                       .msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  ssize_t n = recvmsg(s->fd, &msg, MSG_DONTWAIT | (errqueue ? MSG_ERRQUEUE : 0));
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (errno == EINTR) return 1;
    /* A pending ICMP error reported on the normal queue (e.g. EHOSTUNREACH): reading cleared it. */
    return errqueue ? 0 : 1;
  }
  reply r;
  memset(&r, 0, sizeof r);
  r.hop_limit = -1;
  r.rx_ns = 0;
  struct sock_extended_err *ee = NULL;
  read_cmsgs(&msg, &r, errqueue ? &ee : NULL);
  if (r.rx_ns == 0) r.rx_ns = realtime_ns();
  if (errqueue) {
    /* The error queue returns our own echo request, with the error's details beside it. */
    if (!ee || (ee->ee_origin != SO_EE_ORIGIN_ICMP && ee->ee_origin != SO_EE_ORIGIN_ICMP6) || n < 8) return 1;
    r.type = ee->ee_type;
    r.code = ee->ee_code;
    r.id = s->id;
    r.seq = rx_buffer[6] << 8 | rx_buffer[7];
    struct sockaddr_storage offender;
    memset(&offender, 0, sizeof offender);
    struct sockaddr *off = SO_EE_OFFENDER(ee);
    if (off->sa_family == AF_INET) memcpy(&offender, off, sizeof(struct sockaddr_in));
    else if (off->sa_family == AF_INET6) memcpy(&offender, off, sizeof(struct sockaddr_in6));
    format_addr(&offender, r.source);
    r.hop_limit = -1;
    emit(s, &r);
    return 1;
  }
  if (!parse_datagram(s, rx_buffer, (size_t)n, &r)) return 1;
  format_addr(&from, r.source);
  emit(s, &r);
  return 1;
}

static void drain(icmp_socket *s) {
  for (int i = 0; i < MAX_READS_PER_WAKEUP && !s->closing; i++) {
    if (!read_one(s, 0)) break;
  }
  if (!s->raw) {
    for (int i = 0; i < MAX_READS_PER_WAKEUP && !s->closing; i++) {
      if (!read_one(s, 1)) break;
    }
  }
}

static void on_poll(uv_poll_t *handle, int status, int events);

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)events;
  icmp_socket *s = handle->data;
  if (s->closing) return;
  if (status < 0) {
    /* libuv stops the handle on POLLERR, which a socket raises when an ICMP error is pending.
       Clear the error, read what is queued and poll again. */
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  }
  drain(s);
  if (status < 0 && !s->closing) uv_poll_start(&s->poll, UV_READABLE, on_poll);
}

/* ---- lifecycle ---- */

static void on_handle_closed(uv_handle_t *handle) {
  icmp_socket *s = handle->data;
  s->handle_closed = 1;
  if (s->finalized) free(s);
}

static void on_env_cleanup(void *arg);

static void close_socket(icmp_socket *s) {
  if (s->closing) return;
  s->closing = 1;
  if (s->cleanup_hook) {
    s->cleanup_hook = 0;
    napi_remove_env_cleanup_hook(s->env, on_env_cleanup, s);
  }
  uv_close((uv_handle_t *)&s->poll, on_handle_closed); /* stops polling before the fd goes */
  close(s->fd);
  s->fd = -1;
  if (s->id_reserved) release_id(s->id);
  s->id_reserved = 0;
  if (s->callback) {
    napi_delete_reference(s->env, s->callback);
    s->callback = NULL;
  }
  /* napi_make_callback still uses the async context while the callback runs: destroy it after. */
  if (s->async_ctx && !s->in_callback) {
    napi_async_destroy(s->env, s->async_ctx);
    s->async_ctx = NULL;
  }
}

/* A worker thread or the process is shutting down with the socket open: libuv insists that every
   handle is closed before its loop is, so close ours now (the finalizer frees it later). */
static void on_env_cleanup(void *arg) {
  icmp_socket *s = arg;
  s->cleanup_hook = 0;
  close_socket(s);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  icmp_socket *s = data;
  s->finalized = 1;
  close_socket(s);
  if (s->handle_closed) free(s);
}

static int mode_from(napi_env env, napi_value v) {
  char buf[8] = {0};
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) != napi_ok) return -1;
  if (strcmp(buf, "auto") == 0) return 0;
  if (strcmp(buf, "dgram") == 0) return 1;
  if (strcmp(buf, "raw") == 0) return 2;
  return -1;
}

static int32_t get_int_prop(napi_env env, napi_value obj, const char *name, int32_t fallback) {
  bool has = false;
  napi_value v;
  napi_valuetype t;
  int32_t out = fallback;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return fallback;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return fallback;
  if (napi_typeof(env, v, &t) != napi_ok) return fallback;
  if (t == napi_number) napi_get_value_int32(env, v, &out);
  else if (t == napi_boolean) {
    bool b;
    napi_get_value_bool(env, v, &b);
    out = b;
  }
  return out;
}

/* new IcmpSocket(family: 4|6, mode: 'auto'|'dgram'|'raw', options: {ttl?, dontFragment?}, onPacket) */
static napi_value construct(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], self;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "IcmpSocket(family, mode, options, onPacket)");
    return NULL;
  }
  int32_t family = 0;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &family));
  int mode = mode_from(env, argv[1]);
  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, argv[3], &t));
  if ((family != 4 && family != 6) || mode < 0 || t != napi_function) {
    napi_throw_type_error(env, NULL, "IcmpSocket: family must be 4 or 6, mode auto|dgram|raw, onPacket a function");
    return NULL;
  }
  NAPI_CALL(env, napi_typeof(env, argv[2], &t));
  int32_t ttl = 0, dont_fragment = 0;
  if (t == napi_object) {
    ttl = get_int_prop(env, argv[2], "ttl", 0);
    dont_fragment = get_int_prop(env, argv[2], "dontFragment", 0);
  }

  uint16_t id = 0;
  int fd = -1, raw = 0, dgram_err = 0, raw_err = 0;
  if (mode != 2) {
    fd = open_dgram(family, &id);
    if (fd < 0) dgram_err = -fd;
  }
  if (fd < 0 && mode != 1) {
    fd = open_raw(family);
    if (fd < 0) raw_err = -fd;
    else raw = 1;
  }
  if (fd < 0) {
    int err = raw_err ? raw_err : dgram_err;
    char msg[256];
    if (dgram_err && raw_err)
      snprintf(msg, sizeof msg, "cannot open an ICMP socket (datagram: %s; raw: %s)", strerror(dgram_err),
               strerror(raw_err));
    else
      snprintf(msg, sizeof msg, "cannot open a %s ICMP socket: %s", dgram_err ? "datagram" : "raw", strerror(err));
    napi_value error, code, message;
    napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &error);
    if (dgram_err) {
      napi_value v;
      napi_create_string_utf8(env, errno_name(dgram_err), NAPI_AUTO_LENGTH, &v);
      napi_set_named_property(env, error, "dgramCode", v);
    }
    if (raw_err) {
      napi_value v;
      napi_create_string_utf8(env, errno_name(raw_err), NAPI_AUTO_LENGTH, &v);
      napi_set_named_property(env, error, "rawCode", v);
    }
    napi_throw(env, error);
    return NULL;
  }
  if (raw && reserve_id(&id) < 0) {
    close(fd);
    return throw_errno(env, EADDRINUSE, "no free ICMP identifier");
  }
  if (set_options(fd, family, ttl, dont_fragment, !raw) < 0 || (raw && attach_raw_filters(fd, family, id) < 0)) {
    int err = errno;
    close(fd);
    if (raw) release_id(id);
    return throw_errno(env, err, "cannot configure the ICMP socket");
  }

  icmp_socket *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    if (raw) release_id(id);
    return throw_errno(env, ENOMEM, "IcmpSocket");
  }
  s->env = env;
  s->fd = fd;
  s->family = family;
  s->raw = raw;
  s->id = id;
  s->id_reserved = raw;

  uv_loop_t *loop = NULL;
  napi_value resource_name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init_socket(loop, &s->poll, fd) != 0) {
    close(fd);
    if (raw) release_id(id);
    free(s);
    napi_throw_error(env, "EIO", "cannot watch the ICMP socket on the event loop");
    return NULL;
  }
  s->poll.data = s;
  /* From here on the poll handle exists, so every exit path goes through close_socket(). */
  if (napi_create_reference(env, argv[3], 1, &s->callback) != napi_ok ||
      napi_create_string_utf8(env, "coalmine.IcmpSocket", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, self, resource_name, &s->async_ctx) != napi_ok ||
      napi_wrap(env, self, s, finalize, NULL, NULL) != napi_ok) {
    s->finalized = 1; /* no JavaScript object owns it: free once libuv lets go */
    close_socket(s);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, NULL, "IcmpSocket: N-API setup failed");
    return NULL;
  }
  napi_value v;
  napi_create_string_utf8(env, raw ? "raw" : "dgram", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, self, "mode", v);
  napi_create_int32(env, id, &v);
  napi_set_named_property(env, self, "id", v);
  napi_create_int32(env, family, &v);
  napi_set_named_property(env, self, "family", v);
  if (napi_add_env_cleanup_hook(env, on_env_cleanup, s) == napi_ok) s->cleanup_hook = 1;
  int rc = uv_poll_start(&s->poll, UV_READABLE, on_poll);
  if (rc != 0) {
    close_socket(s);
    napi_throw_error(env, uv_err_name(rc), "cannot watch the ICMP socket on the event loop");
    return NULL;
  }
  return self;
}

static icmp_socket *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "not an IcmpSocket");
    return NULL;
  }
  return data;
}

/* send(address: string, seq: number, payload: Uint8Array): bigint (CLOCK_REALTIME ns right before sendto) */
static napi_value send_echo(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  icmp_socket *s = unwrap(env, info, &argc, argv);
  if (!s) return NULL;
  if (s->closing) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "the ICMP socket is closed");
    return NULL;
  }
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "send(address, seq, payload)");
    return NULL;
  }
  char addr[INET6_ADDRSTRLEN + 1] = {0};
  size_t alen = 0;
  uint32_t seq = 0;
  void *payload = NULL;
  size_t plen = 0;
  bool is_typed = false;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], addr, sizeof addr, &alen));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &seq));
  NAPI_CALL(env, napi_is_typedarray(env, argv[2], &is_typed));
  if (!is_typed) {
    napi_throw_type_error(env, NULL, "payload must be a Uint8Array");
    return NULL;
  }
  napi_typedarray_type tt;
  napi_value ab;
  size_t off;
  NAPI_CALL(env, napi_get_typedarray_info(env, argv[2], &tt, &plen, &payload, &ab, &off));
  if (tt != napi_uint8_array || plen > MAX_PAYLOAD) {
    napi_throw_range_error(env, NULL, "payload must be a Uint8Array of at most 65400 bytes");
    return NULL;
  }

  struct sockaddr_storage to;
  memset(&to, 0, sizeof to);
  socklen_t tolen;
  if (s->family == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)&to;
    a->sin_family = AF_INET;
    tolen = sizeof *a;
    if (inet_pton(AF_INET, addr, &a->sin_addr) != 1) goto bad_address;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&to;
    a->sin6_family = AF_INET6;
    tolen = sizeof *a;
    if (inet_pton(AF_INET6, addr, &a->sin6_addr) != 1) goto bad_address;
  }

  size_t n = 8 + plen;
  uint8_t *pkt = malloc(n);
  if (!pkt) return throw_errno(env, ENOMEM, "send");
  pkt[0] = s->family == 4 ? ICMP_ECHO : ICMPV6_ECHO_REQUEST;
  pkt[1] = 0;
  pkt[2] = pkt[3] = 0;
  pkt[4] = (uint8_t)(s->id >> 8);
  pkt[5] = (uint8_t)s->id;
  pkt[6] = (uint8_t)(seq >> 8);
  pkt[7] = (uint8_t)seq;
  if (plen) memcpy(pkt + 8, payload, plen);
  if (s->family == 4) { /* ICMPv6 checksums include a pseudo-header: the kernel fills them in */
    uint16_t sum = checksum(pkt, n);
    pkt[2] = (uint8_t)(sum >> 8);
    pkt[3] = (uint8_t)sum;
  }
  int64_t tx = realtime_ns();
  ssize_t sent = sendto(s->fd, pkt, n, 0, (struct sockaddr *)&to, tolen);
  int err = errno;
  free(pkt);
  if (sent < 0) return throw_errno(env, err, "sendto");
  napi_value result;
  NAPI_CALL(env, napi_create_bigint_int64(env, tx, &result));
  return result;

bad_address: {
  char msg[128];
  snprintf(msg, sizeof msg, "not an IPv%d address: %s", s->family, addr);
  napi_throw_type_error(env, "ERR_INVALID_IP_ADDRESS", msg);
  return NULL;
}
}

static napi_value close_method(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  icmp_socket *s = unwrap(env, info, &argc, NULL);
  if (!s) return NULL;
  close_socket(s);
  return NULL;
}

static napi_value closed_getter(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  icmp_socket *s = unwrap(env, info, &argc, NULL);
  if (!s) return NULL;
  napi_value v;
  napi_get_boolean(env, s->closing, &v);
  return v;
}

/* native/tcpinfo/tcpinfo.c */
napi_status coalmine_register_tcp_info(napi_env env, napi_value exports);
/* native/fatalsignal/fatalsignal.c */
napi_status coalmine_register_fatal_signal(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"send", NULL, send_echo, NULL, NULL, NULL, napi_default_method, NULL},
      {"close", NULL, close_method, NULL, NULL, NULL, napi_default_method, NULL},
      {"closed", NULL, NULL, closed_getter, NULL, NULL, napi_default_jsproperty, NULL},
  };
  napi_value cls;
  NAPI_CALL(env, napi_define_class(env, "IcmpSocket", NAPI_AUTO_LENGTH, construct, NULL,
                                   sizeof methods / sizeof methods[0], methods, &cls));
  NAPI_CALL(env, napi_set_named_property(env, exports, "IcmpSocket", cls));
  NAPI_CALL(env, coalmine_register_tcp_info(env, exports));
  NAPI_CALL(env, coalmine_register_fatal_signal(env, exports));
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
