/*
 * fatalSignalLog(signo, tail): one log line on stderr before the process dies of SIGBUS, SIGSEGV,
 * SIGILL or SIGFPE, which Node.js cannot handle from JavaScript (a `process.on('SIGBUS')` listener
 * only makes a faulting thread return to the faulting instruction, forever). The usual SIGBUS: SQLite
 * touching a page of its memory-mapped -shm file that another process truncated.
 *
 * The handler runs in the middle of whatever the thread was doing, perhaps inside malloc or stdio,
 * so it may only call async-signal-safe functions (clock_gettime, write, sigaction, raise): the line
 * is built when the handler is installed (`{"time":"` + a 24-character placeholder + `tail`, which
 * JavaScript formats), and the handler only fills in the time, with plain arithmetic, and write()s it.
 * Then it restores the default action and re-raises the signal, so the process still dies of its
 * real signal (exit status 128 + signo, a core dump where enabled) and supervisors see what happened.
 *
 * SIGSEGV is Node's: on x86-64 and arm64 Linux it catches it for V8, whose WebAssembly memory
 * accesses have no bounds checks and fault on purpose (V8 turns the fault into a RuntimeError).
 * So we chain to it (TrapWebAssemblyOrContinue in Node's src/node.cc) and call it first: when it
 * handled a WebAssembly trap it returns with the handler left in place (ours, from the kernel's point
 * of view), and so do we; when it did not, it has reset SIGSEGV to the default action and raised it,
 * and we log before that kills the process. Replacing it instead would kill every WebAssembly user
 * at its first out-of-bounds access.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>

#define TIME_CHARS 24 /* 2024-05-01T12:34:56.789Z, as Date.prototype.toISOString writes it */
#define LINE_MAX_BYTES 1024
#define ALT_STACK_BYTES (64 * 1024)

static const char HEAD[] = "{\"time\":\"";
#define HEAD_CHARS (sizeof HEAD - 1)

typedef struct {
  int signo;
  bool installed;
  struct sigaction previous; /* what was there before us: Node's handler for SIGSEGV */
  char line[LINE_MAX_BYTES];
  size_t length;
} fatal_signal;

static fatal_signal fatal_signals[] = {{.signo = SIGBUS}, {.signo = SIGSEGV}, {.signo = SIGILL}, {.signo = SIGFPE}};
#define FATAL_SIGNALS (sizeof fatal_signals / sizeof fatal_signals[0])

/* Set by the first thread that writes a line: two threads faulting at once still write one. */
static atomic_flag line_written = ATOMIC_FLAG_INIT;

/* Room for the handler when the fault is a stack overflow (the thread's own stack is then full). */
static char alt_stack[ALT_STACK_BYTES];

static fatal_signal *find(int signo) {
  for (size_t i = 0; i < FATAL_SIGNALS; i++)
    if (fatal_signals[i].signo == signo) return &fatal_signals[i];
  return NULL;
}

static void put_digits(char *at, unsigned value, int width) {
  for (int i = width - 1; i >= 0; i--, value /= 10) at[i] = (char)('0' + value % 10);
}

/* CLOCK_REALTIME as ISO 8601 in UTC, without gmtime (which may lock). Days to a date: the
   civil_from_days algorithm of Howard Hinnant (http://howardhinnant.github.io/date_algorithms.html). */
static void format_time(char *out) {
  struct timespec ts = {0, 0};
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t days = ts.tv_sec / 86400, secs = ts.tv_sec % 86400;
  if (secs < 0) secs += 86400, days--;
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);                            /* day of era, [0, 146096] */
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* year of era, [0, 399] */
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                /* day of year from March 1 */
  unsigned mp = (5 * doy + 2) / 153;
  unsigned day = doy - (153 * mp + 2) / 5 + 1;
  unsigned month = mp < 10 ? mp + 3 : mp - 9;
  unsigned year = (unsigned)(yoe + era * 400 + (month <= 2));
  put_digits(out, year, 4);
  out[4] = '-';
  put_digits(out + 5, month, 2);
  out[7] = '-';
  put_digits(out + 8, day, 2);
  out[10] = 'T';
  put_digits(out + 11, (unsigned)(secs / 3600), 2);
  out[13] = ':';
  put_digits(out + 14, (unsigned)(secs / 60 % 60), 2);
  out[16] = ':';
  put_digits(out + 17, (unsigned)(secs % 60), 2);
  out[19] = '.';
  put_digits(out + 20, (unsigned)(ts.tv_nsec / 1000000), 3);
  out[23] = 'Z';
}

static void write_line(fatal_signal *f) {
  if (atomic_flag_test_and_set(&line_written)) return;
  format_time(f->line + HEAD_CHARS);
  size_t done = 0;
  while (done < f->length) {
    ssize_t n = write(STDERR_FILENO, f->line + done, f->length - done);
    if (n > 0) done += (size_t)n;
    else if (n < 0 && errno == EINTR) continue;
    else break; /* nowhere to write: die all the same */
  }
}

/* Whether `sa` is a function to call rather than the default action or "ignore". */
static bool is_handler(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) || (sa->sa_handler != SIG_DFL && sa->sa_handler != SIG_IGN);
}

static bool is_ours(const struct sigaction *sa);

static void on_fatal_signal(int signo, siginfo_t *info, void *context) {
  fatal_signal *f = find(signo);
  if (!f) return; /* cannot happen: we install for our signals only */
  int saved_errno = errno;
  const struct sigaction *prev = &f->previous;
  if (is_handler(prev)) {
    if (prev->sa_flags & SA_SIGINFO) prev->sa_sigaction(signo, info, context);
    else prev->sa_handler(signo);
    struct sigaction now;
    if (sigaction(signo, NULL, &now) == 0 && is_ours(&now)) {
      /* It handled the signal (a WebAssembly trap): the thread goes on where it left off. */
      errno = saved_errno;
      return;
    }
  }
  write_line(f);
  /* Die of the signal itself: with the default action back, the raised signal is delivered as soon
     as this handler returns (it is blocked while the handler runs), or a fault repeats at once. */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signo, &dfl, NULL);
  raise(signo);
  errno = saved_errno;
}

static bool is_ours(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_fatal_signal;
}

/* An alternate signal stack for the calling thread (the main thread: where SQLite runs), unless it
   already has one. Other threads have none, and their handler runs on their own stack. */
static void ensure_alt_stack(void) {
  stack_t current;
  if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;
  stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
  sigaltstack(&ss, NULL);
}

/* Returns 0 and sets *installed (false: the signal is ignored, and left so), or an errno. */
static int install(fatal_signal *f, const char *tail, size_t tail_length, bool *installed) {
  if (f->installed) {
    *installed = true; /* once only: a second install would save our own handler as "previous" */
    return 0;
  }
  struct sigaction prev;
  if (sigaction(f->signo, NULL, &prev) != 0) return errno;
  if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler == SIG_IGN) {
    *installed = false;
    return 0;
  }
  memcpy(f->line, HEAD, HEAD_CHARS);
  memset(f->line + HEAD_CHARS, '0', TIME_CHARS);
  memcpy(f->line + HEAD_CHARS + TIME_CHARS, tail, tail_length);
  f->length = HEAD_CHARS + TIME_CHARS + tail_length;
  f->previous = prev;
  ensure_alt_stack();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  bool chained = is_handler(&prev);
  /* Alone, we only ever run once (SA_RESETHAND). Chained, we stay: every WebAssembly trap comes here. */
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | (chained ? 0 : SA_RESETHAND);
  if (sigaction(f->signo, &sa, NULL) != 0) return errno;
  f->installed = true;
  *installed = true;
  return 0;
}

static napi_value fatal_signal_log(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int32_t signo = 0;
  fatal_signal *f = NULL;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &signo) != napi_ok || !(f = find(signo))) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                           "fatalSignalLog(signo, tail): signo must be SIGBUS, SIGSEGV, SIGILL or SIGFPE");
    return NULL;
  }
  char tail[LINE_MAX_BYTES];
  size_t tail_length = 0;
  const size_t room = LINE_MAX_BYTES - HEAD_CHARS - TIME_CHARS;
  if (napi_get_value_string_utf8(env, argv[1], tail, sizeof tail, &tail_length) != napi_ok ||
      tail_length >= room) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "fatalSignalLog(signo, tail): tail must be a string of at most 990 bytes");
    return NULL;
  }
  bool installed = false;
  int err = install(f, tail, tail_length, &installed);
  if (err) {
    napi_throw_error(env, NULL, strerror(err));
    return NULL;
  }
  napi_value result;
  if (napi_get_boolean(env, installed, &result) != napi_ok) return NULL;
  return result;
}

/* Called from the module's init in native/icmp/icmp.c. */
napi_status coalmine_register_fatal_signal(napi_env env, napi_value exports) {
  napi_value fn;
  napi_status status = napi_create_function(env, "fatalSignalLog", NAPI_AUTO_LENGTH, fatal_signal_log, NULL, &fn);
  if (status != napi_ok) return status;
  return napi_set_named_property(env, exports, "fatalSignalLog", fn);
}
