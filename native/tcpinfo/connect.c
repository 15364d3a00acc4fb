/*
 * tcpConnect: see the comment below. Split from tcpinfo.c because libuv's headers include
 * netinet/tcp.h, which clashes with the linux/tcp.h that tcpinfo.c needs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

/* native/tcpinfo/tcpinfo.c */
int coalmine_tcp_rtt(int fd, double *rtt_us, double *total_retrans);

/*
 * tcpConnect(family, address, port) -> id: a TCP connect probe without a JavaScript socket. It opens a
 * non-blocking socket, connects, waits for writability on the event loop, reads SO_ERROR and TCP_INFO,
 * and closes the socket (FIN, as closing a net.Socket does). The result arrives on the callback given
 * to tcpConnectInit: (id, errno, rttUs, totalRetrans). tcpConnectCancel(id) closes a pending one
 * without a callback. A connect-only probe needs nothing else, and net.Socket's stream machinery costs
 * more CPU than the connect itself.
 */

typedef struct connect_state connect_state;

typedef struct {
  uv_poll_t poll;
  int fd;
  uint32_t id;
  connect_state *state;
} pending_connect;

struct connect_state {
  napi_env env;
  napi_ref callback;
  napi_async_context async_ctx;
  pending_connect **slots; /* by id; NULL when free */
  uint32_t capacity;
  uint32_t next_free_hint;
  int cleanup_hook;
};

static const char *errno_code(int err) { return uv_err_name(-err); }

static void on_connect_closed(uv_handle_t *handle) { free(handle->data); }

/* Stops polling, closes the descriptor and frees the slot; the memory goes in the close callback. */
static void release_connect(pending_connect *c) {
  connect_state *st = c->state;
  if (c->id < st->capacity && st->slots[c->id] == c) st->slots[c->id] = NULL;
  if (c->id < st->next_free_hint) st->next_free_hint = c->id;
  uv_close((uv_handle_t *)&c->poll, on_connect_closed); /* before close(fd): libuv must stop polling it */
  close(c->fd);
  c->fd = -1;
}

static void on_connect_poll(uv_poll_t *handle, int status, int events) {
  (void)events;
  pending_connect *c = handle->data;
  connect_state *st = c->state;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (!err && status < 0) err = -status;
  double rtt = 0, retrans = 0; /* rtt 0: no kernel figure, the caller keeps its own */
  if (!err && coalmine_tcp_rtt(c->fd, &rtt, &retrans) != 0) rtt = 0;
  uint32_t id = c->id;
  release_connect(c);

  napi_env env = st->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb = NULL, recv, argv[4], result;
  if (st->callback) napi_get_reference_value(env, st->callback, &cb);
  if (cb) {
    napi_get_global(env, &recv);
    napi_create_uint32(env, id, &argv[0]);
    napi_create_int32(env, err, &argv[1]);
    napi_create_double(env, rtt, &argv[2]);
    napi_create_double(env, retrans, &argv[3]);
    if (napi_make_callback(env, st->async_ctx, recv, cb, 4, argv, &result) == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_connect_env_cleanup(void *arg) {
  connect_state *st = arg;
  st->cleanup_hook = 0;
  for (uint32_t i = 0; i < st->capacity; i++) {
    if (st->slots[i]) release_connect(st->slots[i]);
  }
}

static void free_connect_state(napi_env env, void *data, void *hint) {
  (void)hint;
  connect_state *st = data;
  if (st->cleanup_hook) napi_remove_env_cleanup_hook(env, on_connect_env_cleanup, st);
  for (uint32_t i = 0; i < st->capacity; i++) {
    if (st->slots[i]) release_connect(st->slots[i]);
  }
  if (st->async_ctx) napi_async_destroy(env, st->async_ctx);
  if (st->callback) napi_delete_reference(env, st->callback);
  free(st->slots);
  free(st);
}

static connect_state *get_state(napi_env env) {
  void *data = NULL;
  if (napi_get_instance_data(env, &data) != napi_ok) return NULL;
  return data;
}

napi_value coalmine_tcp_connect_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_valuetype type = napi_undefined;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "tcpConnectInit(callback): callback must be a function");
    return NULL;
  }
  connect_state *st = get_state(env);
  if (!st) {
    st = calloc(1, sizeof *st);
    if (!st) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
    st->env = env;
    napi_value resource, name;
    napi_create_object(env, &resource);
    napi_create_string_utf8(env, "coalmine:tcpConnect", NAPI_AUTO_LENGTH, &name);
    if (napi_async_init(env, resource, name, &st->async_ctx) != napi_ok ||
        napi_set_instance_data(env, st, free_connect_state, NULL) != napi_ok) {
      free(st);
      napi_throw_error(env, NULL, "tcpConnectInit: N-API setup failed");
      return NULL;
    }
    if (napi_add_env_cleanup_hook(env, on_connect_env_cleanup, st) == napi_ok) st->cleanup_hook = 1;
  }
  if (st->callback) napi_delete_reference(env, st->callback);
  st->callback = NULL;
  napi_create_reference(env, argv[0], 1, &st->callback);
  return NULL;
}

static napi_value throw_code(napi_env env, int err, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, errno_code(err), msg);
  return NULL;
}

napi_value coalmine_tcp_connect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  connect_state *st = get_state(env);
  if (!st || !st->callback) {
    napi_throw_error(env, NULL, "tcpConnect: call tcpConnectInit(callback) first");
    return NULL;
  }
  int32_t family = 0, port = 0;
  char addr[64];
  size_t addr_len = 0;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &family) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], addr, sizeof addr, &addr_len) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || (family != 4 && family != 6) || port < 1 ||
      port > 65535) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "tcpConnect(family 4|6, address, port 1-65535)");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t sslen;
  memset(&ss, 0, sizeof ss);
  if (family == 4) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) goto bad_address;
    sslen = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    char *pct = strchr(addr, '%'); /* fe80::1%eth0 */
    if (pct) {
      *pct = 0;
      sin6->sin6_scope_id = if_nametoindex(pct + 1);
      if (!sin6->sin6_scope_id) sin6->sin6_scope_id = (uint32_t)strtoul(pct + 1, NULL, 10);
    }
    if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1) goto bad_address;
    sslen = sizeof *sin6;
  }

  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_code(env, errno, "socket");
  if (connect(fd, (struct sockaddr *)&ss, sslen) != 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return throw_code(env, err, "connect");
  }
  /* A free slot: the hint is the lowest index that may be free. */
  uint32_t id = st->next_free_hint;
  while (id < st->capacity && st->slots[id]) id++;
  if (id >= st->capacity) {
    uint32_t cap = st->capacity ? st->capacity * 2 : 64;
    pending_connect **grown = realloc(st->slots, cap * sizeof *grown);
    if (!grown) {
      close(fd);
      return throw_code(env, ENOMEM, "tcpConnect");
    }
    memset(grown + st->capacity, 0, (cap - st->capacity) * sizeof *grown);
    st->slots = grown;
    st->capacity = cap;
  }
  pending_connect *c = calloc(1, sizeof *c);
  uv_loop_t *loop = NULL;
  if (!c || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init_socket(loop, &c->poll, fd) != 0) {
    free(c);
    close(fd);
    return throw_code(env, ENOMEM, "tcpConnect: poll setup");
  }
  c->fd = fd;
  c->id = id;
  c->state = st;
  c->poll.data = c;
  st->slots[id] = c;
  st->next_free_hint = id + 1;
  uv_poll_start(&c->poll, UV_WRITABLE, on_connect_poll);
  napi_value result;
  napi_create_uint32(env, id, &result);
  return result;

bad_address: {
  char msg[128];
  snprintf(msg, sizeof msg, "not an IPv%d address: %s", family, addr);
  napi_throw_type_error(env, "ERR_INVALID_IP_ADDRESS", msg);
  return NULL;
}
}

napi_value coalmine_tcp_connect_cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  uint32_t id = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  connect_state *st = get_state(env);
  if (argc < 1 || !st || napi_get_value_uint32(env, argv[0], &id) != napi_ok) return NULL;
  if (id < st->capacity && st->slots[id]) release_connect(st->slots[id]);
  return NULL;
}

