/*
 * The C front's runtime: the one generic marshaller behind every generated entry point. It turns a call into the
 * wire's call record (docs/WIRE.md) from the function's descriptor, hands it to the ava-guestd sidecar (started on
 * the first call, over a unix socket pair) and writes the reply back into the caller's memory. Handles are objects
 * of this library that start with the ICD dispatch pointer; the sidecar runs the TypeScript session (interceptor,
 * journal, migration, transports), so everything a TypeScript guest gets, a native program gets too.
 *
 * Threads: any number of application threads may call at once. A call registers a waiter, sends its frame under the
 * send lock and sleeps until the reader thread hands it the reply with its sequence number. Callbacks run on a
 * thread of their own, in this process, so that a callback may itself call the API.
 */
#define _GNU_SOURCE
#include "ava_front.h"
#include "ava_cbor.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The dispatch table every object begins with (ava_icd.c); absent (NULL) in a front that is not an ICD. */
extern const void *ava_dispatch(void) __attribute__((weak));

#define AVA_MAGIC 0x41564121u
#define BATCH_MAX_CALLS 1024
#define BATCH_MAX_BYTES (4u << 20)
#define MAX_LENGTH ((int64_t)1 << 40)
#define SPLIT_BYTES ((uint64_t)256 << 20) /* parts of a split transfer: well inside a frame */
#define REF_MIN_BYTES ((size_t)64 << 10) /* byte strings a waiting call sends from the program's memory, uncopied */

/* Statuses the front reports for failures that are not the API's own (OpenCL's values; every current spec is one). */
#define ST_OUT_OF_RESOURCES (-5)
#define ST_INVALID_VALUE (-30)
#define ST_INVALID_OPERATION (-59)

static void warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ava-front: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* ------------------------------------------------------------------------------------------------ hash map */

/* Open addressing, 64-bit keys (never 0), pointer values. */
typedef struct { uint64_t *keys; void **vals; size_t cap, n; } map64;

static size_t mix(uint64_t k) { k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33; return (size_t)k; }

static void *map_get(const map64 *m, uint64_t k) {
  if (!m->cap) return NULL;
  for (size_t i = mix(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == k) return m->vals[i];
    if (m->keys[i] == 0) return NULL;
  }
}

static int map_put(map64 *m, uint64_t k, void *v) {
  if ((m->n + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 256;
    uint64_t *keys = calloc(cap, sizeof *keys);
    void **vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) { free(keys); free(vals); return 0; }
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->keys[i]) continue;
      size_t j = mix(m->keys[i]) & (cap - 1);
      while (keys[j]) j = (j + 1) & (cap - 1);
      keys[j] = m->keys[i];
      vals[j] = m->vals[i];
    }
    free(m->keys); free(m->vals);
    m->keys = keys; m->vals = vals; m->cap = cap;
  }
  size_t i = mix(k) & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != k) i = (i + 1) & (m->cap - 1);
  if (!m->keys[i]) m->n++;
  m->keys[i] = k;
  m->vals[i] = v;
  return 1;
}

static void map_del(map64 *m, uint64_t k) {
  if (!m->cap) return;
  size_t i = mix(k) & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != k) i = (i + 1) & (m->cap - 1);
  if (!m->keys[i]) return;
  m->keys[i] = 0;
  m->n--;
  /* Re-insert the rest of the cluster so lookups never stop early. */
  for (size_t j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
    uint64_t key = m->keys[j];
    void *val = m->vals[j];
    m->keys[j] = 0;
    m->n--;
    map_put(m, key, val);
  }
}

/* ------------------------------------------------------------------------------------------------ objects */

/*
 * What the application holds for a handle. The dispatch pointer comes first (the ICD loader reads it); objects are
 * kept for the process's life, so a pointer the application still holds after a release never dangles: the worker
 * answers it with the kind's invalid status, as a native library would for a dead object. Objects of transient kinds
 * (events) are the exception: see count_refs.
 */
typedef struct ava_obj {
  const void *dispatch;
  int64_t id;
  int16_t kind;
  uint32_t magic;
  void *mirror;        /* host memory bound to the object (USE_HOST_PTR), kept in step at its sync points */
  size_t mirror_size;
  uint8_t *shadow;     /* what the device held when it and `mirror` last agreed: the program's changes are the difference */
  int32_t mirror_refs; /* the program's references (create, retain, release): at 0 the memory is the program's again */
  int32_t refs;        /* transient kinds: the program's references, counted from the call that made it (`counted`) */
  uint8_t counted, pinned; /* pinned: a callback was registered on it, which gets it back later */
  int64_t attrs[AVA_MAX_ATTRS]; /* set by the call that made it (ava_fn.sets), read by later lengths (AVA_OP_ATTR) */
} ava_obj;

static pthread_mutex_t obj_mu = PTHREAD_MUTEX_INITIALIZER;
static map64 objs_by_id, objs_by_ptr, mappings;
static size_t mirror_count;
static int64_t next_id = 1;

static uint64_t id_key(int64_t id) { return (uint64_t)id ^ 0x8000000000000000ull; } /* never 0 for real ids */

/* The object for `id` (made on first sight, e.g. a device named in an info value). */
static ava_obj *obj_for_id(int64_t id, int kind) {
  if (id == 0) return NULL;
  pthread_mutex_lock(&obj_mu);
  ava_obj *o = map_get(&objs_by_id, id_key(id));
  if (!o && (o = calloc(1, sizeof *o))) {
    o->dispatch = ava_dispatch ? ava_dispatch() : NULL;
    o->id = id;
    o->kind = (int16_t)kind;
    o->magic = AVA_MAGIC;
    if (!map_put(&objs_by_id, id_key(id), o) || !map_put(&objs_by_ptr, (uint64_t)(uintptr_t)o, o)) o = NULL;
  }
  pthread_mutex_unlock(&obj_mu);
  return o;
}

/* The object behind a pointer the application passed, or NULL when it is not one of ours. */
static ava_obj *obj_of(const void *p) {
  if (!p) return NULL;
  pthread_mutex_lock(&obj_mu);
  ava_obj *o = map_get(&objs_by_ptr, (uint64_t)(uintptr_t)p);
  pthread_mutex_unlock(&obj_mu);
  return o;
}

static int64_t new_ids(int64_t n) { return __atomic_fetch_add(&next_id, n, __ATOMIC_RELAXED); }

/* A region handed out by a mapping call: the application's copy of the device bytes, written back at unmap. */
typedef struct { int64_t id; size_t length; int owned; } mapping;

/* ------------------------------------------------------------------------------------------------ callbacks */

typedef struct { void *fn; void *user_data; } callback_reg;
static pthread_mutex_t cb_mu = PTHREAD_MUTEX_INITIALIZER;
static map64 callbacks;
static int64_t next_callback = 1;

typedef struct event { struct event *next; int64_t callback; int nargs; uintptr_t args[6]; } event;
static event *ev_head, *ev_tail;
static pthread_cond_t ev_cond = PTHREAD_COND_INITIALIZER;
/*
 * Callback events queued and run so far (under cb_mu). A wait or finish answered after the worker saw callbacks fire
 * returns only once the callback thread has run them, as PoCL calls an event's callbacks before a wait on it (or a
 * finish) returns: programs count on it (the Khronos SDK's callback sample waits on futures its callbacks make).
 * Other calls do not wait for callbacks (a callback may wait for the program's next call).
 */
static uint64_t events_queued, events_run;
static pthread_cond_t events_run_cond = PTHREAD_COND_INITIALIZER;
static pthread_t callback_tid;
static int callback_started;

/* Waits until the callback thread has run the first `count` callback events (not on that thread: a callback may call the API). */
static void await_callbacks(uint64_t count) {
  if (callback_started && pthread_equal(pthread_self(), callback_tid)) return;
  pthread_mutex_lock(&cb_mu);
  while (events_run < count) pthread_cond_wait(&events_run_cond, &cb_mu);
  pthread_mutex_unlock(&cb_mu);
}

static void *callback_thread(void *unused) {
  (void)unused;
  for (;;) {
    pthread_mutex_lock(&cb_mu);
    while (!ev_head) pthread_cond_wait(&ev_cond, &cb_mu);
    event *e = ev_head;
    ev_head = e->next;
    if (!ev_head) ev_tail = NULL;
    callback_reg *reg = map_get(&callbacks, (uint64_t)e->callback);
    /* The API's callbacks fire once per registration. */
    if (reg) map_del(&callbacks, (uint64_t)e->callback);
    pthread_mutex_unlock(&cb_mu);
    if (reg) {
      uintptr_t *a = e->args;
      void *u = reg->user_data;
      /* Integer and pointer arguments share registers and 8-byte stack slots on the 64-bit Linux ABIs. */
      switch (e->nargs) {
      case 0: ((void (*)(void *))reg->fn)(u); break;
      case 1: ((void (*)(uintptr_t, void *))reg->fn)(a[0], u); break;
      case 2: ((void (*)(uintptr_t, uintptr_t, void *))reg->fn)(a[0], a[1], u); break;
      case 3: ((void (*)(uintptr_t, uintptr_t, uintptr_t, void *))reg->fn)(a[0], a[1], a[2], u); break;
      default: ((void (*)(uintptr_t, uintptr_t, uintptr_t, uintptr_t, void *))reg->fn)(a[0], a[1], a[2], a[3], u); break;
      }
      free(reg);
    }
    free(e);
    pthread_mutex_lock(&cb_mu);
    events_run++;
    pthread_cond_broadcast(&events_run_cond);
    pthread_mutex_unlock(&cb_mu);
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ connection */

typedef struct waiter {
  struct waiter *next;
  uint64_t key;        /* call seq, or control id */
  ava_cv *frame;
  uint8_t *raw;
  int done;
  uint64_t events_before; /* callback events queued when the reply came (see await_callbacks) */
  uint8_t *land;          /* where the reply's one large byte string goes (see read_frame), or NULL */
  size_t land_cap;
  pthread_cond_t cond;
} waiter;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int sock = -1;
static int broken;     /* the sidecar is gone or never came: every call fails */
static int reader_done;
static pid_t guestd_pid;
static pid_t owner_pid; /* the process that started the sidecar (a forked child shares the socket but not the session) */
/* Set in a forked child (pthread_atfork): cheaper than a getpid() system call on every call. */
static volatile int in_forked_child;
static void mark_forked_child(void) { in_forked_child = 1; }
static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t wait_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static waiter *waiters;
static uint64_t next_seq = 1;
/*
 * Queued asynchronous calls. A byte string of ASYNC_REF_MIN_BYTES or more (a large write's data) is referenced, not
 * copied: the batch then goes out before the call returns, from the program's memory. Smaller ones are copied and
 * wait for the batch (copying 1 MiB costs about what sending a frame of its own does). Measured with
 * fixtures/opencl-c/transfers.c (64 MiB blocking writes, which the front sends without waiting): the copy took 5-7 ms
 * of the ~21 ms each write took.
 */
#define ASYNC_REF_MIN_BYTES ((size_t)1 << 20)
static ava_cbuf batch = { .ref_min = ASYNC_REF_MIN_BYTES };
/* Calls in the batch (what BATCH_MAX_CALLS bounds) and entries of its array (a repeated call is one entry). */
static size_t batch_calls, batch_entries;
/* What marshalling learned that the reply step needs. */
typedef struct {
  int64_t *issued;     /* per argument: first id issued for handle outs */
  int64_t ret_id;
  int status;          /* a refusal found before sending (bad handle, bad length), or 0 */
  int64_t deliver;     /* a map made without blocking: the delivery its region is given to once the reply is in */
  int64_t made_id;     /* the id issued for a handle out of a transient kind (an event), or 0 */
  size_t made_at;      /* where that id is in the buffer */
} call_state;

static int transient_kind(int kind) { return kind >= 0 && kind < ava_api_desc.nkinds && ava_api_desc.kinds[kind].transient; }

/*
 * A batch entry, kept for the batch's last two: for a call the program makes again with the same arguments (a launch
 * loop), the entry then says `repeat: n` (n more calls) instead of carrying n copies, which ava-guestd would decode
 * one by one. `start` is where its map begins, `tail` where its "fn" key begins (what a repeat must match, up to
 * `end`, which is before its "repeat" key); `open` is false when it may not be repeated (it references bytes).
 */
typedef struct {
  int open;
  size_t start, tail;
  ava_cbmark end;
  uint64_t repeat;
  int64_t made_id; /* the transient object (an event) it made, and where its id is, for elide_made */
  size_t made_at;
} batch_entry;
/* The batch's last entry, and the one before it (what the last becomes a repeat of, once elide_made edits it). */
static batch_entry last_entry, prev_entry;

/* Writes pieces as one stream, in as few system calls as the kernel allows (a frame's prefix and body together). */
static int write_pieces(struct iovec *iov, int count) {
  while (count > 0) {
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)count };
    ssize_t w = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return 0;
    while (count > 0 && (size_t)w >= iov->iov_len) { w -= (ssize_t)iov->iov_len; iov++; count--; }
    if (count > 0) { iov->iov_base = (uint8_t *)iov->iov_base + w; iov->iov_len -= (size_t)w; }
  }
  return 1;
}

static int read_all(uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(sock, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    p += r;
    n -= (size_t)r;
  }
  return 1;
}

/* Sends one frame body with its length prefix; the caller holds send_mu. */
static int send_frame(const uint8_t *body, size_t n) {
  uint8_t prefix[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
  struct iovec iov[2] = { { prefix, 4 }, { (void *)body, n } };
  return write_pieces(iov, 2);
}

/*
 * Sends one frame made of the streams of `parts`, in order, the bytes they reference included, without joining them
 * first; the caller holds send_mu.
 */
static int send_cbufs(const ava_cbuf *const *parts, int count) {
  enum { MAX_PIECES = 2 * (2 * AVA_CB_MAX_REFS + 1) };
  struct iovec iov[MAX_PIECES + 1];
  const void *base[MAX_PIECES];
  size_t len[MAX_PIECES];
  int k = 0;
  size_t n = 0;
  for (int i = 0; i < count; i++) {
    int got = ava_cb_pieces(parts[i], base + k, len + k, MAX_PIECES - k);
    if (got == 0 && ava_cb_size(parts[i]) > 0) return 0;
    k += got;
    n += ava_cb_size(parts[i]);
  }
  uint8_t prefix[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
  iov[0] = (struct iovec){ prefix, 4 };
  for (int i = 0; i < k; i++) iov[i + 1] = (struct iovec){ (void *)base[i], len[i] };
  return write_pieces(iov, k + 1);
}

/* Sends a frame built in `b`, the bytes it references included; the caller holds send_mu. */
static int send_cbuf(const ava_cbuf *b) { return send_cbufs(&b, 1); }

/*
 * Frame bodies past glibc's largest mmap threshold (32 MiB: a read of 64 MiB, say) would come from fresh pages every
 * time, faulted in one by one as the socket fills them; one such buffer (at most LARGE_BODY_KEEP bytes) is kept for
 * the next large frame instead. Measured with fixtures/opencl-c/transfers.c (64 MiB reads, 3 runs each):
 * 0.8-1.3 -> 1.9-2.5 GB/s.
 */
#define LARGE_BODY ((size_t)32 << 20)
#define LARGE_BODY_KEEP ((size_t)256 << 20)
static pthread_mutex_t body_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *kept_body;
static size_t kept_cap;
static int kept_busy;

static uint8_t *body_alloc(size_t n) {
  if (n >= LARGE_BODY) {
    pthread_mutex_lock(&body_mu);
    if (kept_body && !kept_busy && kept_cap >= n) {
      kept_busy = 1;
      uint8_t *p = kept_body;
      pthread_mutex_unlock(&body_mu);
      return p;
    }
    pthread_mutex_unlock(&body_mu);
  }
  return malloc(n ? n : 1);
}

/* Frees a frame body (see body_alloc): the kept buffer goes back to being free, a large one may be kept instead. */
static void body_free(uint8_t *p) {
  if (!p) return;
  pthread_mutex_lock(&body_mu);
  if (p == kept_body) {
    kept_busy = 0;
    pthread_mutex_unlock(&body_mu);
    return;
  }
  size_t cap = malloc_usable_size(p);
  if (cap >= LARGE_BODY && cap <= LARGE_BODY_KEEP && !kept_busy && (!kept_body || cap > kept_cap)) {
    uint8_t *old = kept_body;
    kept_body = p;
    kept_cap = cap;
    pthread_mutex_unlock(&body_mu);
    free(old);
    return;
  }
  pthread_mutex_unlock(&body_mu);
  free(p);
}

/*
 * Reads the program made without blocking (clEnqueueReadBuffer with CL_FALSE): the call returns once enqueued and the
 * worker sends the bytes when they are there, as an event with the id the call gave (`deliver`). The reader thread
 * writes them into the program's memory itself, before it reads the next frame: the worker sends them before the
 * reply of any later call that saw the read complete (a wait, a status query), so they are in place by then.
 */
typedef struct delivery {
  void *dst;      /* where the bytes go; NULL for a map until its reply gave the region (place_delivery) */
  size_t length;
  uint8_t *held;  /* bytes that came before the region was placed */
  size_t held_n;
  int arrived;
} delivery;
static map64 deliveries; /* callback id -> delivery, under obj_mu */

/*
 * Frames of LAND_MIN_BYTES or more whose large byte string has a known destination in the program's memory are read
 * in place: a reply to a call that said where (waiter.land: a blocking read's destination), or the event that
 * brings the bytes of a read made without blocking (its delivery's dst). The frame's first LAND_HEAD_BYTES name the
 * call or delivery and hold the string's header; its bytes are read straight into the destination, the rest of the
 * frame after them. So a 64 MiB read costs no 64 MiB frame buffer and no copy out of it.
 */
#define LAND_MIN_BYTES ((size_t)1 << 20)
#define LAND_HEAD_BYTES ((size_t)4096)

/*
 * In the first `hn` bytes of a frame of `total`: what the frame answers (the top-level map's `seq`: *by = 1, a reply;
 * its `callback`: *by = 2, an event, such as the bytes of a read made without blocking), and the first byte string
 * of LAND_MIN_BYTES or more (where its header starts, where its bytes start, how many). 0 when the head does not
 * show both, or anything else in it runs past the head.
 */
static int find_landing(const uint8_t *h, size_t hn, size_t total, int *by, uint64_t *seq, size_t *hdr, size_t *data, uint64_t *len) {
  enum { MAX_DEPTH = 32 };
  uint64_t left[MAX_DEPTH], index[MAX_DEPTH];
  int depth = 0, top_map = 0, have_seq = 0, seq_next = 0;
  size_t pos = 0;
  left[0] = 1;
  index[0] = 0;
  for (;;) {
    while (depth > 0 && left[depth] == 0) depth--;
    if (left[depth] == 0) return 0;
    uint8_t major, info;
    uint64_t arg;
    size_t k = ava_cbor_head(h + pos, hn - pos, &major, &info, &arg);
    if (k == 0) return 0;
    int key = depth == 1 && top_map && index[depth] % 2 == 0;
    int value_of_seq = depth == 1 && top_map && !key ? seq_next : 0;
    if (depth == 1 && top_map && !key) seq_next = 0;
    index[depth]++;
    left[depth]--;
    size_t start = pos;
    pos += k;
    switch (major) {
    case 0: if (value_of_seq) { *seq = arg; *by = value_of_seq; have_seq = 1; } break;
    case 1: case 7: break;
    case 2:
      if (arg >= LAND_MIN_BYTES && have_seq && arg <= total - pos) { *hdr = start; *data = pos; *len = arg; return 1; }
      if (arg > hn - pos) return 0;
      pos += arg;
      break;
    case 3:
      if (arg > hn - pos) return 0;
      if (key && arg == 3 && memcmp(h + pos, "seq", 3) == 0) seq_next = 1;
      if (key && arg == 8 && memcmp(h + pos, "callback", 8) == 0) seq_next = 2;
      pos += arg;
      break;
    case 4: case 5:
      if (depth + 1 >= MAX_DEPTH || arg > total) return 0;
      depth++;
      left[depth] = major == 5 ? 2 * arg : arg;
      index[depth] = 0;
      if (depth == 1) top_map = major == 5;
      break;
    default: return 0;
    }
  }
}

/* The byte string node of `v` whose bytes start at `at` (the one read_frame put there), or NULL. */
static ava_cv *bytes_at(ava_cv *v, const uint8_t *at) {
  if (v->type == CV_BYTES) return v->p == at ? v : NULL;
  if (v->type != CV_ARRAY && v->type != CV_MAP) return NULL;
  size_t items = v->type == CV_MAP ? 2 * v->n : v->n;
  for (size_t i = 0; i < items; i++) {
    ava_cv *found = bytes_at(&v->items[i], at);
    if (found) return found;
  }
  return NULL;
}

/*
 * A frame of `n` bytes whose head (`h`, `hn` bytes read) names a waiter with a landing place (see LAND_MIN_BYTES):
 * reads the rest, the large byte string into that place, and returns the frame (NULL when it is not such a one:
 * `*taken` then says nothing was read past the head).
 */
static ava_cv *read_landed(const uint8_t *h, size_t hn, size_t n, uint8_t **raw, int *taken) {
  uint64_t seq = 0, len = 0;
  size_t hdr = 0, data = 0;
  int by = 0;
  *taken = 0;
  if (!find_landing(h, hn, n, &by, &seq, &hdr, &data, &len)) return NULL;
  uint8_t *land = NULL;
  if (by == 1) {
    pthread_mutex_lock(&wait_mu);
    for (waiter *w = waiters; w; w = w->next) if (w->key == seq && w->land && w->land_cap >= len) { land = w->land; break; }
    pthread_mutex_unlock(&wait_mu);
  } else {
    /* A read made without blocking: its bytes go where the program asked (a map's region may not be there yet). */
    pthread_mutex_lock(&obj_mu);
    delivery *d = map_get(&deliveries, seq);
    if (d && d->dst && d->length >= len) land = d->dst;
    pthread_mutex_unlock(&obj_mu);
  }
  if (!land) return NULL;
  *taken = 1;
  /* The frame without the string's bytes: its header made that of an empty string, which is then pointed at `land`. */
  size_t tail = n - data - (size_t)len, in_head = hn - data;
  uint8_t *skeleton = malloc(hdr + 1 + tail);
  if (!skeleton) return NULL;
  memcpy(skeleton, h, hdr);
  skeleton[hdr] = 0x40;
  memcpy(land, h + data, in_head);
  if (!read_all(land + in_head, (size_t)len - in_head) || !read_all(skeleton + hdr + 1, tail)) { free(skeleton); return NULL; }
  ava_cv *v = ava_cv_parse(skeleton, hdr + 1 + tail);
  ava_cv *bytes = v ? bytes_at(v, skeleton + hdr + 1) : NULL;
  if (!bytes) { ava_cv_free(v); free(skeleton); warn("the sidecar sent a malformed frame"); return NULL; }
  bytes->p = land;
  bytes->n = (size_t)len;
  *raw = skeleton;
  return v;
}

/* Reads one frame: its parsed value (or NULL at the end of the stream) and the bytes it points into. */
static ava_cv *read_frame(uint8_t **raw) {
  uint8_t prefix[4];
  if (!read_all(prefix, 4)) return NULL;
  size_t n = (size_t)prefix[0] << 24 | (size_t)prefix[1] << 16 | (size_t)prefix[2] << 8 | prefix[3];
  size_t have = 0;
  uint8_t head[LAND_HEAD_BYTES];
  if (n >= LAND_MIN_BYTES) {
    have = LAND_HEAD_BYTES;
    if (!read_all(head, have)) return NULL;
    int taken;
    ava_cv *landed = read_landed(head, have, n, raw, &taken);
    if (taken) return landed;
  }
  uint8_t *body = body_alloc(n);
  if (body && have) memcpy(body, head, have);
  if (!body || !read_all(body + have, n - have)) { body_free(body); return NULL; }
  ava_cv *v = ava_cv_parse(body, n);
  if (!v) { body_free(body); warn("the sidecar sent a malformed frame"); return NULL; }
  *raw = body;
  return v;
}

/* Sends the queued asynchronous calls as one batch frame; the caller holds send_mu. */
static int flush_batch(void) {
  if (batch_calls == 0) return 1;
  ava_cbuf head = { 0 };
  ava_cb_map(&head, 2);
  ava_cb_cstr(&head, "t"); ava_cb_cstr(&head, "batch");
  ava_cb_cstr(&head, "calls"); ava_cb_array(&head, batch_entries);
  const ava_cbuf *parts[2] = { &head, &batch };
  int ok = !head.failed && !batch.failed && send_cbufs(parts, 2);
  ava_cb_free(&head);
  ava_cb_rewind(&batch, (ava_cbmark){ 0 });
  batch.failed = 0;
  batch_calls = batch_entries = 0;
  last_entry.open = prev_entry.open = 0;
  return ok;
}

/*
 * The asynchronous call just encoded at `mark` (its "fn" key at `tail`; `cs` what encoding it issued), as a repeat of
 * the batch's last entry when it is the same call: then it is dropped and the entry's count goes up. True when it was
 * folded. (ava-guestd numbers calls itself: the copies' seqs are not sent.)
 */
static int fold_repeat(ava_cbmark mark, size_t tail, const call_state *cs) {
  int refs = batch.nrefs != mark.nrefs;
  if (!refs && last_entry.open && last_entry.made_id == 0 && cs->made_id == 0 && batch.len - tail == last_entry.end.len - last_entry.tail &&
      memcmp(batch.data + tail, batch.data + last_entry.tail, batch.len - tail) == 0) {
    ava_cb_rewind(&batch, last_entry.end);
    batch.data[last_entry.start] = 0xa6; /* the call's map (see encode_call) gains its sixth entry, "repeat" */
    ava_cb_cstr(&batch, "repeat");
    ava_cb_uint(&batch, ++last_entry.repeat);
    return 1;
  }
  prev_entry = last_entry;
  last_entry = (batch_entry){ .open = !refs, .start = mark.len, .tail = tail, .end = ava_cb_mark(&batch),
                              .made_id = cs->made_id, .made_at = cs->made_at };
  return 0;
}

/*
 * A release of `o` (a transient object: an event) right after the batch's last entry made it, with nothing between
 * that could have used it: the two calls are the one call the program could have made asking for no event. The entry's
 * id becomes null (and it may then repeat the entry before it, as in a launch loop asking for events it does not
 * use), and the release is not sent. True when it did so. Only for the program's one reference, and no callback.
 */
static int elide_made(const ava_obj *o) {
  if (!last_entry.open || last_entry.made_id == 0 || last_entry.made_id != o->id || last_entry.repeat != 0 || !o->counted ||
      __atomic_load_n(&o->refs, __ATOMIC_RELAXED) != 1 || __atomic_load_n(&o->pinned, __ATOMIC_RELAXED)) return 0;
  uint8_t major, info;
  uint64_t value;
  size_t at = last_entry.made_at, n = ava_cbor_head(batch.data + at, batch.len - at, &major, &info, &value);
  if (n == 0 || major != 0 || value != (uint64_t)o->id || last_entry.end.len != batch.len) return 0;
  memmove(batch.data + at + 1, batch.data + at + n, batch.len - at - n);
  batch.data[at] = 0xf6; /* null */
  batch.len -= n - 1;
  batch_entry made = last_entry;
  made.made_id = 0;
  last_entry = prev_entry;
  prev_entry.open = 0;
  call_state none = { 0 };
  if (fold_repeat((ava_cbmark){ made.start, batch.nrefs, batch.ref_bytes }, made.tail, &none)) batch_entries--;
  return 1;
}

/*
 * The bytes of a deferred read or map (args NULL: the call failed, nothing will come): written where the program
 * wants them, or kept until a map's region is placed; true when `cb` was a delivery.
 */
static int take_delivery(int64_t cb, const ava_cv *args) {
  const ava_cv *bytes = args && args->type == CV_ARRAY && args->n > 0 ? &args->items[0] : NULL;
  if (bytes && bytes->type != CV_BYTES) bytes = NULL; /* a failed transfer (null and its status) writes nothing */
  pthread_mutex_lock(&obj_mu);
  delivery *d = map_get(&deliveries, (uint64_t)cb);
  if (d && !d->dst && args) {
    /* A map whose reply the calling thread has not applied yet: keep the bytes for place_delivery. */
    if (bytes && (d->held = malloc(bytes->n ? bytes->n : 1)) != NULL) { memcpy(d->held, bytes->p, bytes->n); d->held_n = bytes->n; }
    d->arrived = 1;
    pthread_mutex_unlock(&obj_mu);
    return 1;
  }
  if (d) map_del(&deliveries, (uint64_t)cb);
  pthread_mutex_unlock(&obj_mu);
  if (!d) return 0;
  /* Bytes read in place (read_frame) are there already. */
  if (bytes && d->dst && bytes->p != d->dst) memcpy(d->dst, bytes->p, bytes->n < d->length ? bytes->n : d->length);
  free(d->held);
  free(d);
  return 1;
}

/* Gives a deferred map's delivery its region (made once the reply said how long it is); bytes already in go there now. */
static void place_delivery(int64_t cb, void *region, size_t length) {
  pthread_mutex_lock(&obj_mu);
  delivery *d = map_get(&deliveries, (uint64_t)cb);
  if (d && !d->arrived) { d->dst = region; d->length = length; d = NULL; }
  else if (d) map_del(&deliveries, (uint64_t)cb);
  pthread_mutex_unlock(&obj_mu);
  if (!d) return;
  if (d->held) memcpy(region, d->held, d->held_n < length ? d->held_n : length);
  free(d->held);
  free(d);
}

static void deliver_event(const ava_cv *f) {
  int ok = 1;
  int64_t cb = ava_cv_int(ava_cv_get(f, "callback"), &ok);
  const ava_cv *args = ava_cv_get(f, "args");
  if (ok && take_delivery(cb, args)) return;
  event *e = calloc(1, sizeof *e);
  if (!ok || !e || !args || args->type != CV_ARRAY) { free(e); return; }
  e->callback = cb;
  e->nargs = args->n > 4 ? 4 : (int)args->n;
  for (int i = 0; i < e->nargs; i++) {
    const ava_cv *a = &args->items[i];
    if (a->type == CV_MAP) {
      /* {handle, kind}: the application's object for it. */
      const ava_cv *kind = ava_cv_get(a, "kind");
      int k = -1;
      for (int j = 0; kind && j < ava_api_desc.nkinds; j++) if (ava_cv_is_text(kind, ava_api_desc.kinds[j].name)) k = j;
      e->args[i] = (uintptr_t)obj_for_id(ava_cv_int(ava_cv_get(a, "handle"), &ok), k);
    } else {
      e->args[i] = (uintptr_t)ava_cv_int(a, &ok);
    }
  }
  pthread_mutex_lock(&cb_mu);
  if (ev_tail) ev_tail->next = e; else ev_head = e;
  ev_tail = e;
  events_queued++;
  pthread_cond_signal(&ev_cond);
  pthread_mutex_unlock(&cb_mu);
}

static void *reader_thread(void *unused) {
  (void)unused;
  for (;;) {
    uint8_t *raw = NULL;
    ava_cv *f = read_frame(&raw);
    if (!f) break;
    const ava_cv *t = ava_cv_get(f, "t");
    if (ava_cv_is_text(t, "event")) { deliver_event(f); ava_cv_free(f); body_free(raw); continue; }
    if (ava_cv_is_text(t, "error")) {
      const ava_cv *m = ava_cv_get(ava_cv_get(f, "error"), "message");
      warn("the sidecar closed the session: %.*s", m && m->type == CV_TEXT ? (int)m->n : 0, m ? (const char *)m->p : "");
      ava_cv_free(f); body_free(raw);
      break;
    }
    int ok = 1;
    int64_t key = ava_cv_is_text(t, "controlReply") ? ava_cv_int(ava_cv_get(f, "id"), &ok) : ava_cv_int(ava_cv_get(f, "seq"), &ok);
    pthread_mutex_lock(&wait_mu);
    waiter *w = waiters;
    while (w && w->key != (uint64_t)key) w = w->next;
    if (w && ok) {
      w->frame = f;
      w->raw = raw;
      pthread_mutex_lock(&cb_mu);
      w->events_before = events_queued;
      pthread_mutex_unlock(&cb_mu);
      w->done = 1;
      pthread_cond_signal(&w->cond);
    } else {
      ava_cv_free(f);
      body_free(raw);
    }
    pthread_mutex_unlock(&wait_mu);
  }
  pthread_mutex_lock(&wait_mu);
  broken = 1;
  reader_done = 1;
  for (waiter *w = waiters; w; w = w->next) { w->done = 1; pthread_cond_signal(&w->cond); }
  pthread_cond_broadcast(&done_cond);
  pthread_mutex_unlock(&wait_mu);
  return NULL;
}

/* The ICD loaders' variables (ocl-icd and Khronos'): the program's point at this ICD; AVA_<name> keeps the caller's. */
static const char *const LOADER_VARS[] = { "OCL_ICD_VENDORS", "OCL_ICD_FILENAMES" };

/*
 * glibc's allocator settings for the sidecar (and the workers it starts), unless the program's environment sets them:
 * large buffers (a transfer's bytes, a frame) come from the heap and are reused, instead of fresh mappings that the
 * kernel (and, on a VM, the hypervisor) fault in page by page on every transfer. Measured with fixtures/opencl-c/
 * transfers.c (64 MiB blocking transfers): 1.3 -> 2.4 GB/s host to device, 0.87 -> 1.3 GB/s back. Freed memory
 * above 256 MiB at the heap's top still goes back to the system.
 */
static const char *const SIDECAR_MALLOC[] = { "MALLOC_MMAP_THRESHOLD_=4294967296", "MALLOC_TRIM_THRESHOLD_=268435456" };

/* The environment of the sidecar: the program's, with the ICD loader pointed back at the real platforms. */
static char **guestd_env(void) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = calloc(n + 5, sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int loader = 0;
    for (size_t v = 0; v < 2; v++) {
      size_t len = strlen(LOADER_VARS[v]);
      if (strncmp(environ[i], LOADER_VARS[v], len) == 0 && environ[i][len] == '=') loader = 1;
    }
    if (!loader) env[k++] = environ[i];
  }
  for (size_t v = 0; v < 2; v++) {
    char saved[64];
    snprintf(saved, sizeof saved, "AVA_%s", LOADER_VARS[v]);
    const char *inner = getenv(saved);
    if (!inner || !*inner) continue;
    char *value = malloc(strlen(LOADER_VARS[v]) + strlen(inner) + 2);
    if (value) { sprintf(value, "%s=%s", LOADER_VARS[v], inner); env[k++] = value; }
  }
  for (size_t m = 0; m < 2; m++) {
    size_t name = (size_t)(strchr(SIDECAR_MALLOC[m], '=') - SIDECAR_MALLOC[m]);
    int set = 0;
    for (size_t i = 0; i < n; i++) if (strncmp(environ[i], SIDECAR_MALLOC[m], name + 1) == 0) set = 1;
    if (!set) env[k++] = (char *)SIDECAR_MALLOC[m];
  }
  env[k] = NULL;
  return env;
}

static void start(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) { warn("socketpair: %s", strerror(errno)); broken = 1; return; }
  const char *node = getenv("AVA_GUESTD_NODE");
  const char *script = getenv("AVA_GUESTD_SCRIPT");
  if (!node || !*node) node = ava_api_desc.guestd_node;
  if (!script || !*script) script = ava_api_desc.guestd_script;
  const char *import = ava_api_desc.guestd_import;
  char *argv[8];
  int argc = 0;
  argv[argc++] = (char *)node;
  if (import && *import && (!getenv("AVA_GUESTD_SCRIPT") || !*getenv("AVA_GUESTD_SCRIPT"))) { argv[argc++] = "--import"; argv[argc++] = (char *)import; }
  argv[argc++] = (char *)script;
  argv[argc++] = "--fd";
  argv[argc++] = "3";
  argv[argc++] = (char *)ava_api_desc.spec_name;
  argv[argc] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 3); /* dup2 clears close-on-exec on the copy */
  char **env = guestd_env();
  int rc = env ? posix_spawn(&guestd_pid, node, &fa, NULL, argv, env) : ENOMEM;
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  close(sv[1]);
  if (rc != 0) { warn("cannot start ava-guestd (%s %s): %s", node, script, strerror(rc)); close(sv[0]); broken = 1; return; }
  sock = sv[0];
  owner_pid = getpid();
  pthread_atfork(NULL, NULL, mark_forked_child);

  /* The handshake, before any other thread reads the socket. */
  char session[64];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(session, sizeof session, "c-%d-%lx", (int)getpid(), (unsigned long)(ts.tv_nsec ^ ts.tv_sec));
  ava_cbuf b = { 0 };
  ava_cb_map(&b, 5);
  ava_cb_cstr(&b, "t"); ava_cb_cstr(&b, "hello");
  ava_cb_cstr(&b, "v"); ava_cb_uint(&b, 1);
  ava_cb_cstr(&b, "spec"); ava_cb_cstr(&b, ava_api_desc.spec_name);
  ava_cb_cstr(&b, "hash"); ava_cb_cstr(&b, ava_api_desc.spec_hash);
  ava_cb_cstr(&b, "session"); ava_cb_cstr(&b, session);
  int ok = !b.failed && send_frame(b.data, b.len);
  ava_cb_free(&b);
  uint8_t *raw = NULL;
  ava_cv *welcome = ok ? read_frame(&raw) : NULL;
  if (!welcome || !ava_cv_is_text(ava_cv_get(welcome, "t"), "welcome")) {
    const ava_cv *m = ava_cv_get(ava_cv_get(welcome, "error"), "message"), *c = ava_cv_get(ava_cv_get(welcome, "error"), "code");
    warn("ava-guestd refused the session%s%.*s%s%.*s", c ? ": " : "", c && c->type == CV_TEXT ? (int)c->n : 0, c ? (const char *)c->p : "",
         m ? ": " : "", m && m->type == CV_TEXT ? (int)m->n : 0, m ? (const char *)m->p : "");
    broken = 1;
  }
  ava_cv_free(welcome);
  body_free(raw);
  if (broken) return;
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, reader_thread, NULL) != 0 || pthread_create(&callback_tid, &attr, callback_thread, NULL) != 0) broken = 1;
  else callback_started = 1;
  pthread_attr_destroy(&attr);
}

/*
 * At exit: send what is queued, tell the sidecar the program is done and wait (bounded) until it has closed the
 * session, so that the journal is complete when the program's exit status is seen.
 */
__attribute__((destructor)) static void finish(void) {
  if (sock < 0 || getpid() != owner_pid) return; /* a forked child exiting must not end its parent's session */
  pthread_mutex_lock(&send_mu);
  if (!broken) flush_batch();
  shutdown(sock, SHUT_WR);
  pthread_mutex_unlock(&send_mu);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 30;
  pthread_mutex_lock(&wait_mu);
  while (!reader_done) if (pthread_cond_timedwait(&done_cond, &wait_mu, &until) == ETIMEDOUT) break;
  pthread_mutex_unlock(&wait_mu);
  if (guestd_pid > 0) waitpid(guestd_pid, NULL, WNOHANG);
}

/* Sends a frame and waits for the answer keyed `key`; returns the frame (or NULL when the sidecar is gone). */
static ava_cv *exchange_counting(uint64_t key, const ava_cbuf *frame, uint8_t **raw, uint64_t *events_before, uint8_t *land, size_t land_cap) {
  waiter w = { .key = key, .land = land, .land_cap = land_cap };
  pthread_cond_init(&w.cond, NULL);
  pthread_mutex_lock(&wait_mu);
  w.next = waiters;
  waiters = &w;
  pthread_mutex_unlock(&wait_mu);
  pthread_mutex_lock(&send_mu);
  int ok = !broken && flush_batch() && !frame->failed && send_cbuf(frame);
  pthread_mutex_unlock(&send_mu);
  pthread_mutex_lock(&wait_mu);
  if (ok) while (!w.done) pthread_cond_wait(&w.cond, &wait_mu);
  for (waiter **p = &waiters; *p; p = &(*p)->next) if (*p == &w) { *p = w.next; break; }
  pthread_mutex_unlock(&wait_mu);
  pthread_cond_destroy(&w.cond);
  if (events_before) *events_before = w.events_before;
  *raw = w.raw;
  return w.frame;
}

/* Sends `frame` and waits for the reply (or control reply) with `key`; NULL when the sidecar is gone. */
static ava_cv *exchange(uint64_t key, const ava_cbuf *frame, uint8_t **raw) { return exchange_counting(key, frame, raw, NULL, NULL, 0); }

/* ------------------------------------------------------------------------------------------------ values */

static int is_signed(int type) { return type == AVA_I8 || type == AVA_I16 || type == AVA_I32 || type == AVA_I64; }

/* A slot narrowed to its C type, then widened again (sign-extended for signed types). */
static uint64_t narrow(uint64_t v, int type) {
  switch (type) {
  case AVA_I8: return (uint64_t)(int64_t)(int8_t)v;
  case AVA_U8: return (uint8_t)v;
  case AVA_I16: return (uint64_t)(int64_t)(int16_t)v;
  case AVA_U16: return (uint16_t)v;
  case AVA_I32: return (uint64_t)(int64_t)(int32_t)v;
  case AVA_U32: return (uint32_t)v;
  default: return v;
  }
}

static size_t type_size(int type) {
  switch (type) {
  case AVA_I8: case AVA_U8: return 1;
  case AVA_I16: case AVA_U16: return 2;
  case AVA_I32: case AVA_U32: case AVA_F32: return 4;
  default: return 8;
  }
}

static uint64_t load(const void *p, int type) {
  uint64_t v = 0;
  memcpy(&v, p, type_size(type)); /* little-endian hosts */
  return narrow(v, type);
}

static void store(void *p, uint64_t v, int type) { memcpy(p, &v, type_size(type)); }

static void put_scalar(ava_cbuf *b, uint64_t v, int type) {
  if (type == AVA_F32) { float f; uint32_t bits = (uint32_t)v; memcpy(&f, &bits, 4); ava_cb_double(b, f); }
  else if (type == AVA_F64) { double d; memcpy(&d, &v, 8); ava_cb_double(b, d); }
  else if (is_signed(type)) ava_cb_int(b, (int64_t)narrow(v, type));
  else ava_cb_uint(b, narrow(v, type));
}

static uint64_t arg_number(const ava_fn *fn, const uint64_t *slots, int i) {
  const ava_arg *a = &fn->args[i];
  return a->role == AVA_SCALAR || a->role == AVA_COUNT ? narrow(slots[i], a->type) : slots[i];
}

/* Channels per pixel of an OpenCL channel order (CL_R 0x10B0 ... CL_ABGR 0x10C3), as in src/spec/length.ts. */
static const int8_t image_channels[] = { 1, 1, 2, 2, 3, 4, 4, 4, 1, 1, 2, 3, 4, 1, 1, 3, 4, 4, 4, 4 };
/* Bytes per channel of a channel type (CL_SNORM_INT8 0x10D0 ... 0x10E0); negative: bytes per packed pixel. */
static const int8_t image_channel_bytes[] = { 1, 2, 1, 2, -2, -2, -4, 1, 2, 4, 1, 2, 4, 2, 4, -4, -4 };

/* Bytes of a host region: origin/region are pointers to 3 size_t (origin may be NULL: zero). */
static int64_t extent(const size_t *origin, const size_t *region, int64_t row, int64_t slice, int64_t elem) {
  if (!region) return -1;
  int64_t rx = (int64_t)region[0], ry = (int64_t)region[1], rz = (int64_t)region[2];
  if (rx <= 0 || ry <= 0 || rz <= 0) return 0;
  if (rx > MAX_LENGTH || ry > MAX_LENGTH || rz > MAX_LENGTH || elem < 0 || elem > 64) return -1;
  int64_t ox = origin ? (int64_t)origin[0] : 0, oy = origin ? (int64_t)origin[1] : 0, oz = origin ? (int64_t)origin[2] : 0;
  if (ox > MAX_LENGTH || oy > MAX_LENGTH || oz > MAX_LENGTH) return -1;
  if (!row) row = rx * elem;
  if (!slice) slice = row * ry;
  if (row < 0 || row > MAX_LENGTH || slice < 0 || slice > MAX_LENGTH) return -1;
  double total = (double)(oz + rz - 1) * (double)slice + (double)(oy + ry - 1) * (double)row + (double)(ox * elem + rx * elem);
  return total > (double)MAX_LENGTH ? -1 : (oz + rz - 1) * slice + (oy + ry - 1) * row + ox * elem + rx * elem;
}

/* The named length functions (ava_length_fn), on the n values of `v`; -1 when out of range. */
static int64_t length_fn(int which, const int64_t *v, int n) {
  switch (which) {
  case AVA_FN_RECT_EXTENT: /* origin, region, row pitch, slice pitch: bytes (element size 1) */
    return n == 4 ? extent((const size_t *)(uintptr_t)v[0], (const size_t *)(uintptr_t)v[1], v[2], v[3], 1) : -1;
  case AVA_FN_IMAGE_EXTENT: /* region, row pitch, slice pitch, element size: the region from its first pixel */
    return n == 4 ? extent(NULL, (const size_t *)(uintptr_t)v[0], v[1], v[2], v[3]) : -1;
  case AVA_FN_IMAGE_ELEMENT_SIZE: {
    if (n != 2) return -1;
    int64_t order = v[0] - 0x10B0, type = v[1] - 0x10D0;
    int64_t channels = order >= 0 && order < (int64_t)sizeof image_channels ? image_channels[order] : 0;
    int64_t bytes = type >= 0 && type < (int64_t)sizeof image_channel_bytes ? image_channel_bytes[type] : 0;
    return bytes < 0 ? (channels > 0 ? -bytes : 0) : channels * bytes;
  }
  case AVA_FN_IMAGE_SIZE: { /* type, width, height, depth, array size, row pitch, slice pitch, element size */
    if (n != 8) return -1;
    for (int k = 0; k < 8; k++) if (v[k] < 0 || v[k] > MAX_LENGTH) return -1;
    int64_t type = v[0], w = v[1], h = v[2], d = v[3], arr = v[4], elem = v[7];
    if (elem > 64) return -1;
    int64_t row = v[5] ? v[5] : w * elem;
    double total;
    if (type == 0x10F5) total = (double)(v[6] ? v[6] : row) * (double)arr;          /* 1D array */
    else if (type == 0x10F1) total = (double)row * (double)h;                        /* 2D */
    else {
      int64_t slice = v[6] ? v[6] : row * h;
      if (type == 0x10F3) total = (double)slice * (double)arr;                       /* 2D array */
      else if (type == 0x10F2) total = (double)slice * (double)d;                    /* 3D */
      else total = (double)w * (double)elem;                                          /* 1D, 1D buffer */
    }
    return total > (double)MAX_LENGTH ? -1 : (int64_t)total;
  }
  default: return -1;
  }
}

/* Evaluates a length program (see ava_op); -1 when it is out of range. */
static int64_t eval_length(const ava_fn *fn, int off, const uint64_t *slots) {
  int64_t stack[16];
  int sp = 0;
  for (const int64_t *p = fn->exprs + off;;) {
    switch (*p++) {
    case AVA_OP_END: return sp == 1 && stack[0] >= 0 && stack[0] <= MAX_LENGTH ? stack[0] : -1;
    case AVA_OP_CONST: if (sp >= 16) return -1; stack[sp++] = *p++; break;
    case AVA_OP_ARG: if (sp >= 16) return -1; stack[sp++] = (int64_t)arg_number(fn, slots, (int)*p++); break;
    case AVA_OP_MUL: {
      int n = (int)*p++;
      if (n > sp) return -1;
      int64_t prod = 1;
      for (int k = 0; k < n; k++) {
        int64_t x = stack[--sp];
        if (x < 0 || (x && prod > MAX_LENGTH / x)) return -1;
        prod *= x;
      }
      stack[sp++] = prod;
      break;
    }
    case AVA_OP_FN: {
      int which = (int)*p++, n = (int)*p++;
      if (n > sp || n > 8) return -1;
      sp -= n;
      int64_t r = length_fn(which, stack + sp, n);
      if (r < 0) return -1;
      stack[sp++] = r;
      break;
    }
    case AVA_OP_FIELD: {
      int i = (int)*p++, k = (int)*p++;
      if (sp >= 16 || i < 0 || i >= fn->nargs || k < 0 || k >= fn->args[i].nfields) return -1;
      const int64_t *field = fn->args[i].fields + 3 * k;
      const uint8_t *base = (const uint8_t *)(uintptr_t)slots[i];
      stack[sp++] = base && field[1] >= 0 ? (int64_t)load(base + field[0], (int)field[1]) : 0;
      break;
    }
    case AVA_OP_ATTR: {
      int i = (int)*p++, k = (int)*p++;
      if (sp >= 16 || i < 0 || i >= fn->nargs || k < 0 || k >= AVA_MAX_ATTRS) return -1;
      ava_obj *o = obj_of((void *)(uintptr_t)slots[i]);
      stack[sp++] = o ? o->attrs[k] : 0;
      break;
    }
    default: return -1;
    }
  }
}

/* ------------------------------------------------------------------------------------------------ calls */

static int kind_invalid(int kind) { return kind >= 0 && kind < ava_api_desc.nkinds && ava_api_desc.kinds[kind].invalid_status ? ava_api_desc.kinds[kind].invalid_status : ST_INVALID_VALUE; }

/* A handle argument: its id, or 0 and a status when the pointer is not a live object of the right kind. */
static int64_t handle_id(const void *p, int kind, int *status) {
  ava_obj *o = obj_of(p);
  if (!o || (kind >= 0 && o->kind != kind)) { if (!*status) *status = kind_invalid(kind); return 0; }
  return o->id;
}

static void encode_args(const ava_fn *fn, uint64_t *slots, ava_cbuf *b, call_state *cs) {
  ava_cb_array(b, fn->nargs);
  for (int i = 0; i < fn->nargs; i++) {
    const ava_arg *a = &fn->args[i];
    void *ptr = (void *)(uintptr_t)slots[i];
    int64_t len = a->length >= 0 ? eval_length(fn, a->length, slots) : 0;
    if (len < 0) { cs->status = ST_INVALID_VALUE; ava_cb_null(b); continue; }
    switch (a->role) {
    case AVA_SCALAR: case AVA_COUNT: put_scalar(b, slots[i], a->type); break;
    case AVA_HANDLE:
      if (!ptr && (a->flags & AVA_ARG_NULLABLE)) ava_cb_null(b);
      else ava_cb_int(b, handle_id(ptr, a->kind, &cs->status));
      break;
    case AVA_HANDLES:
      if (!ptr) { ava_cb_null(b); break; }
      ava_cb_array(b, (size_t)len);
      for (int64_t k = 0; k < len; k++) ava_cb_int(b, handle_id(((void **)ptr)[k], a->kind, &cs->status));
      break;
    case AVA_HANDLE_OUT:
      if (!ptr) { ava_cb_null(b); break; }
      cs->issued[i] = new_ids(1);
      if (transient_kind(a->kind) && (a->flags & AVA_ARG_NULLABLE)) { cs->made_id = cs->issued[i]; cs->made_at = b->len; } /* see elide_made */
      ava_cb_int(b, cs->issued[i]);
      break;
    case AVA_HANDLES_OUT:
      if (!ptr || len == 0) { ava_cb_null(b); break; }
      cs->issued[i] = new_ids(len);
      ava_cb_array(b, (size_t)len);
      for (int64_t k = 0; k < len; k++) ava_cb_int(b, cs->issued[i] + k);
      break;
    case AVA_BUFFER_IN:
      if (!ptr) ava_cb_null(b); else ava_cb_bytes(b, ptr, (size_t)len);
      break;
    case AVA_BUFFER_OUT:
      if (!ptr) ava_cb_null(b);
      else if (a->flags & AVA_ARG_PRESERVE) ava_cb_bytes(b, ptr, (size_t)len);
      else ava_cb_bool(b, 1);
      break;
    case AVA_INFO: case AVA_SCALAR_OUT: case AVA_SCALARS_OUT: case AVA_ERRCODE:
      if (ptr) ava_cb_bool(b, 1); else ava_cb_null(b);
      break;
    case AVA_STRING:
      if (!ptr) ava_cb_null(b); else ava_cb_cstr(b, ptr);
      break;
    case AVA_STRINGS: {
      if (!ptr) { ava_cb_null(b); break; }
      const size_t *lengths = a->ref >= 0 ? (const size_t *)(uintptr_t)slots[a->ref] : NULL;
      ava_cb_array(b, (size_t)len);
      for (int64_t k = 0; k < len; k++) {
        const char *s = ((const char **)ptr)[k];
        if (!s) { cs->status = ST_INVALID_VALUE; ava_cb_null(b); }
        else if (lengths && lengths[k]) ava_cb_bytes(b, s, lengths[k]);
        else ava_cb_cstr(b, s);
      }
      break;
    }
    case AVA_SCALARS:
      if (!ptr) { ava_cb_null(b); break; }
      ava_cb_array(b, (size_t)len);
      for (int64_t k = 0; k < len; k++) put_scalar(b, load((const uint8_t *)ptr + k * (int64_t)type_size(a->type), a->type), a->type);
      break;
    case AVA_PROPERTIES: {
      if (!ptr) { ava_cb_null(b); break; }
      size_t es = type_size(a->type), n = 0;
      while (n < 256 && load((const uint8_t *)ptr + n * es, a->type) != 0) n += 2;
      ava_cb_array(b, n);
      for (size_t k = 0; k < n; k += 2) {
        uint64_t key = load((const uint8_t *)ptr + k * es, a->type), value = load((const uint8_t *)ptr + (k + 1) * es, a->type);
        put_scalar(b, key, a->type);
        int kind = -2;
        for (int j = 0; j < a->npairs; j++) if ((uint64_t)a->pairs[2 * j] == key) kind = (int)a->pairs[2 * j + 1];
        if (kind != -2) ava_cb_int(b, handle_id((void *)(uintptr_t)value, kind, &cs->status));
        else put_scalar(b, value, a->type);
      }
      break;
    }
    case AVA_STRUCT: {
      if (!ptr) { ava_cb_null(b); break; }
      ava_cb_array(b, a->nfields);
      for (int k = 0; k < a->nfields; k++) {
        const int64_t *field = a->fields + 3 * k;
        const uint8_t *at = (const uint8_t *)ptr + field[0];
        if (field[1] >= 0) put_scalar(b, load(at, (int)field[1]), (int)field[1]);
        else {
          void *h;
          memcpy(&h, at, sizeof h);
          if (!h) ava_cb_null(b); else ava_cb_int(b, handle_id(h, (int)field[2], &cs->status));
        }
      }
      break;
    }
    case AVA_ARG_VALUE: {
      size_t size = (size_t)arg_number(fn, slots, a->ref);
      ava_obj *o = ptr && size == sizeof(void *) ? obj_of(*(void **)ptr) : NULL;
      if (!ptr) ava_cb_null(b);
      else if (o) {
        /* The value is one of our objects: the worker turns its id into the native pointer and checks the kind. */
        ava_cb_map(b, 1);
        ava_cb_cstr(b, "handle");
        ava_cb_int(b, o->id);
      } else ava_cb_bytes(b, ptr, size);
      break;
    }
    case AVA_CALLBACK: {
      if (!ptr) { ava_cb_null(b); break; }
      if (!(a->flags & AVA_ARG_DELIVERED)) { ava_cb_uint(b, 0); break; } /* the worker refuses it, or drops it where the spec says */
      callback_reg *reg = malloc(sizeof *reg);
      int64_t id = __atomic_fetch_add(&next_callback, 1, __ATOMIC_RELAXED);
      if (!reg) { cs->status = ST_OUT_OF_RESOURCES; ava_cb_null(b); break; }
      reg->fn = ptr;
      reg->user_data = a->ref >= 0 ? (void *)(uintptr_t)slots[a->ref] : NULL;
      pthread_mutex_lock(&cb_mu);
      map_put(&callbacks, (uint64_t)id, reg);
      pthread_mutex_unlock(&cb_mu);
      ava_cb_uint(b, (uint64_t)id);
      break;
    }
    case AVA_USER_DATA: ava_cb_null(b); break;
    case AVA_MAPPED: {
      pthread_mutex_lock(&obj_mu);
      mapping *m = ptr ? map_get(&mappings, (uint64_t)(uintptr_t)ptr) : NULL;
      mapping copy = m ? *m : (mapping){ 0, 0, 0 };
      pthread_mutex_unlock(&obj_mu);
      if (!m) { cs->status = ST_INVALID_VALUE; ava_cb_null(b); break; }
      ava_cb_map(b, 2);
      ava_cb_cstr(b, "id"); ava_cb_int(b, copy.id);
      ava_cb_cstr(b, "bytes"); ava_cb_bytes(b, ptr, copy.length);
      break;
    }
    }
  }
}

/* Encodes the call record `{t?, seq, fn, args, retId, async?}`. */
static void encode_call(const ava_fn *fn, uint64_t *slots, ava_cbuf *b, call_state *cs, uint64_t seq, int async, int64_t deliver, size_t *tail) {
  ava_cb_map(b, deliver ? 6 : 5);
  if (deliver) { ava_cb_cstr(b, "deliver"); ava_cb_uint(b, (uint64_t)deliver); }
  if (async) { ava_cb_cstr(b, "async"); ava_cb_bool(b, 1); }
  else { ava_cb_cstr(b, "t"); ava_cb_cstr(b, "call"); }
  ava_cb_cstr(b, "seq"); ava_cb_uint(b, seq);
  if (tail) *tail = b->len;
  ava_cb_cstr(b, "fn"); ava_cb_cstr(b, fn->name);
  ava_cb_cstr(b, "retId");
  if (fn->ret == AVA_RET_HANDLE || fn->ret == AVA_RET_MAPPED) { cs->ret_id = new_ids(1); ava_cb_int(b, cs->ret_id); }
  else ava_cb_null(b);
  ava_cb_cstr(b, "args");
  encode_args(fn, slots, b, cs);
}

/* The API status for an error the sidecar or worker reported instead of a reply. */
static int error_status(const ava_fn *fn, const ava_cv *error) {
  int ok = 1;
  const ava_cv *status = ava_cv_get(ava_cv_get(error, "details"), "status");
  if (status) { int64_t s = ava_cv_int(status, &ok); if (ok) return (int)s; }
  const ava_cv *code = ava_cv_get(error, "code"), *message = ava_cv_get(error, "message");
  warn("%s: %.*s: %.*s", fn->name, code && code->type == CV_TEXT ? (int)code->n : 0, code ? (const char *)code->p : "",
       message && message->type == CV_TEXT ? (int)message->n : 0, message ? (const char *)message->p : "");
  if (ava_cv_is_text(code, "ERR_AVA_UNSUPPORTED")) return ST_INVALID_OPERATION;
  if (ava_cv_is_text(code, "ERR_AVA_ARG_TYPE") || ava_cv_is_text(code, "ERR_AVA_BAD_CALL")) return ST_INVALID_VALUE;
  return ST_OUT_OF_RESOURCES;
}

/* Ends a call that fails without a reply: its status, its errcode_ret, and NULL for handle returns. */
static uint64_t fail(const ava_fn *fn, uint64_t *slots, int status) {
  for (int i = 0; i < fn->nargs; i++) {
    if (fn->args[i].role == AVA_ERRCODE && slots[i]) store((void *)(uintptr_t)slots[i], (uint64_t)(int64_t)status, fn->args[i].type);
  }
  return fn->ret == AVA_RET_STATUS ? (uint64_t)(int64_t)status : 0;
}

static void write_info(const ava_fn *fn, int i, const uint64_t *slots, const ava_cv *v) {
  const ava_arg *a = &fn->args[i];
  uint8_t *out = (uint8_t *)(uintptr_t)slots[i];
  size_t cap = (size_t)arg_number(fn, slots, a->ref);
  uint64_t param = arg_number(fn, slots, a->ref2);
  if (!out) return;
  if (v->type == CV_ARRAY) {
    /* Pointer arrays (program binaries): the caller's table holds one destination per blob. */
    for (size_t k = 0; k < v->n && (k + 1) * sizeof(void *) <= cap; k++) {
      uint8_t *blob = ((uint8_t **)out)[k];
      if (blob && v->items[k].type == CV_BYTES) memcpy(blob, v->items[k].p, v->items[k].n);
    }
    return;
  }
  if (v->type != CV_BYTES) return;
  size_t n = v->n < cap ? v->n : cap;
  memcpy(out, v->p, n);
  for (int j = 0; j < a->nprops; j++) {
    if ((uint64_t)a->props[3 * j] != param) continue;
    /* A zero-terminated (key, value) list: values under handle keys are ids, made our object pointers. */
    for (size_t off = 0; off + 16 <= n; off += 16) {
      int64_t key, id;
      memcpy(&key, out + off, 8);
      if (key == 0) break;
      if (key != a->props[3 * j + 1]) continue;
      memcpy(&id, out + off + 8, 8);
      void *o = obj_for_id(id, (int)a->props[3 * j + 2]);
      memcpy(out + off + 8, &o, 8);
    }
  }
  for (int j = 0; j < a->npairs; j++) {
    if ((uint64_t)a->pairs[2 * j] != param) continue;
    /* Handle-valued: one 8-byte id per slot becomes our object pointer. */
    for (size_t off = 0; off + 8 <= n; off += 8) {
      int64_t id;
      memcpy(&id, out + off, 8);
      void *o = obj_for_id(id, (int)a->pairs[2 * j + 1]);
      memcpy(out + off, &o, 8);
    }
  }
}

/*
 * For a mapping call on an object with host memory: the place in that memory the mapped bytes belong (at `offset`).
 * Only mappings given by a byte offset (buffers): an image's mapped rows follow the worker's pitches, not the host's.
 */
static void *mapped_host_region(const ava_fn *fn, const uint64_t *slots, size_t length) {
  ava_obj *o = NULL;
  uint64_t offset = 0;
  int has_offset = 0;
  for (int i = 0; i < fn->nargs; i++) has_offset |= fn->args[i].role == AVA_SCALAR && strcmp(fn->args[i].name, "offset") == 0;
  if (!has_offset) return NULL;
  for (int i = 0; i < fn->nargs; i++) {
    const ava_arg *a = &fn->args[i];
    if (a->role == AVA_HANDLE && !o) {
      ava_obj *h = obj_of((void *)(uintptr_t)slots[i]);
      if (h && h->mirror) o = h;
    }
    if (a->role == AVA_SCALAR && strcmp(a->name, "offset") == 0) offset = arg_number(fn, slots, i);
  }
  if (!o || offset > o->mirror_size || length > o->mirror_size - offset) return NULL;
  return (uint8_t *)o->mirror + offset;
}

/* Writes the reply's values into the caller's memory; returns the C return value. */
static uint64_t apply_reply(const ava_fn *fn, uint64_t *slots, const ava_cv *reply, call_state *cs) {
  int ok = 1;
  const ava_cv *error = ava_cv_get(reply, "error");
  if (error) return fail(fn, slots, error_status(fn, error));
  const ava_cv *outs = ava_cv_get(reply, "outs");
  const ava_cv *ret = ava_cv_get(reply, "ret");
  for (int i = 0; i < fn->nargs; i++) {
    const ava_arg *a = &fn->args[i];
    void *ptr = (void *)(uintptr_t)slots[i];
    const ava_cv *v = ava_cv_get(outs, a->name);
    if (!ptr || !v) continue;
    switch (a->role) {
    case AVA_HANDLE_OUT: *(void **)ptr = v->type == CV_NULL ? NULL : obj_for_id(ava_cv_int(v, &ok), a->kind); break;
    case AVA_HANDLES_OUT:
      if (v->type == CV_ARRAY) for (size_t k = 0; k < v->n; k++) ((void **)ptr)[k] = obj_for_id(ava_cv_int(&v->items[k], &ok), a->kind);
      break;
    case AVA_BUFFER_OUT: {
      int64_t len = eval_length(fn, a->length, slots);
      /* Landed in place by the reader (read_frame): nothing to copy. */
      if (v->type == CV_BYTES && len >= 0 && v->p != ptr) memcpy(ptr, v->p, v->n < (size_t)len ? v->n : (size_t)len);
      break;
    }
    case AVA_SCALAR_OUT: case AVA_ERRCODE: store(ptr, (uint64_t)ava_cv_int(v, &ok), a->type); break;
    case AVA_SCALARS_OUT: {
      int64_t len = eval_length(fn, a->length, slots);
      if (v->type == CV_ARRAY) for (size_t k = 0; k < v->n && (int64_t)k < len; k++) store((uint8_t *)ptr + k * type_size(a->type), (uint64_t)ava_cv_int(&v->items[k], &ok), a->type);
      break;
    }
    case AVA_INFO: write_info(fn, i, slots, v); break;
    default: break;
    }
  }
  switch (fn->ret) {
  case AVA_RET_VOID: return 0;
  case AVA_RET_STATUS: case AVA_RET_SCALAR: return (uint64_t)ava_cv_int(ret, &ok);
  case AVA_RET_HANDLE: {
    ava_obj *o = ret && ret->type != CV_NULL ? obj_for_id(ava_cv_int(ret, &ok), fn->ret_kind) : NULL;
    for (int k = 0; o && k < fn->nsets; k++) {
      int64_t value = eval_length(fn, (int)fn->sets[2 * k + 1], slots);
      o->attrs[fn->sets[2 * k]] = value < 0 ? 0 : value;
    }
    return (uint64_t)(uintptr_t)o;
  }
  case AVA_RET_MAPPED: {
    const ava_cv *bytes = ava_cv_get(ret, "bytes");
    /* A map made without blocking is answered with its length only: its bytes come with the delivery. */
    const ava_cv *later = cs->deliver && (!bytes || bytes->type != CV_BYTES) ? ava_cv_get(ret, "length") : NULL;
    if (!later && (!bytes || bytes->type != CV_BYTES)) return 0;
    size_t length = later ? (size_t)ava_cv_int(later, &ok) : bytes->n;
    /* A buffer made on the program's memory maps onto that memory (OpenCL: the pointer derives from host_ptr). */
    void *region = mapped_host_region(fn, slots, length);
    int owned = region == NULL;
    if (owned && posix_memalign(&region, 4096, length ? length : 1) != 0) return fail(fn, slots, ST_OUT_OF_RESOURCES);
    mapping *m = malloc(sizeof *m);
    if (!m) { if (owned) free(region); return fail(fn, slots, ST_OUT_OF_RESOURCES); }
    if (later) {
      place_delivery(cs->deliver, region, length);
      cs->deliver = 0; /* placed: no longer the caller's to cancel */
    } else {
      memcpy(region, bytes->p, length);
    }
    m->id = ava_cv_int(ava_cv_get(ret, "id"), &ok);
    m->length = length;
    m->owned = owned;
    pthread_mutex_lock(&obj_mu);
    map_put(&mappings, (uint64_t)(uintptr_t)region, m);
    pthread_mutex_unlock(&obj_mu);
    return (uint64_t)(uintptr_t)region;
  }
  }
  (void)cs;
  return 0;
}

/* ------------------------------------------------------------------------------------------------ host memory */

/*
 * Host memory lent to an object (USE_HOST_PTR), as src/guest/host-mirror.ts keeps it for TypeScript programs: before
 * a call that may touch the object on the device (sync and execute calls: every mirror; transfers: those they name),
 * the bytes the program changed since (mirror against shadow) are written to the device, exactly those; after a sync
 * call, or a transfer naming it, the memory is brought up to date from the device.
 */
#define MAX_PUSHED_RUNS 1024
#define MIRROR_BLOCK 4096

/*
 * Held while a mirror's memory or shadow is read or written (a push, a refresh, an unbind), so that one thread's last
 * release cannot free a shadow another thread is pushing from.
 */
static pthread_mutex_t mirror_mu = PTHREAD_MUTEX_INITIALIZER;

/* The program no longer holds the object (or it is gone on the worker): its memory is its own again. Under mirror_mu. */
static void unbind_mirror(ava_obj *o) {
  pthread_mutex_lock(&obj_mu);
  if (o->mirror) {
    o->mirror = NULL;
    free(o->shadow);
    o->shadow = NULL;
    mirror_count--;
  }
  pthread_mutex_unlock(&obj_mu);
}

/* Starts a control frame about `o` of `entries` map entries (four written here); returns its id. */
static uint64_t control_frame(ava_cbuf *b, size_t entries, const char *op, const ava_obj *o) {
  uint64_t id = __atomic_fetch_add(&next_seq, 1, __ATOMIC_RELAXED);
  ava_cb_map(b, entries);
  ava_cb_cstr(b, "t"); ava_cb_cstr(b, "control");
  ava_cb_cstr(b, "id"); ava_cb_uint(b, id);
  ava_cb_cstr(b, "op"); ava_cb_cstr(b, op);
  ava_cb_cstr(b, "handle"); ava_cb_int(b, o->id);
  return id;
}

/* Brings `o`'s host memory (and its shadow) up to date from the device (its explicit state, read through the sidecar). */
static void refresh_mirror(ava_obj *o) {
  ava_cbuf b = { 0 };
  uint64_t id = control_frame(&b, 4, "extract", o);
  uint8_t *raw = NULL;
  ava_cv *reply = exchange(id, &b, &raw);
  ava_cb_free(&b);
  const ava_cv *bytes = ava_cv_get(reply, "bytes");
  if (bytes && bytes->type == CV_BYTES && o->mirror) {
    size_t n = bytes->n < o->mirror_size ? bytes->n : o->mirror_size;
    memcpy(o->mirror, bytes->p, n);
    if (o->shadow) memcpy(o->shadow, bytes->p, n);
  } else if (reply) unbind_mirror(o); /* released */
  ava_cv_free(reply);
  body_free(raw);
}

/* Writes `n` bytes at `offset` of `o`'s explicit state on the device; 0 when the sidecar refused. */
static int restore_range(ava_obj *o, size_t offset, const uint8_t *p, size_t n) {
  for (size_t done = 0; done < n;) {
    size_t part = n - done < SPLIT_BYTES ? n - done : (size_t)SPLIT_BYTES;
    ava_cbuf b = { 0 };
    uint64_t id = control_frame(&b, 6, "restore", o);
    ava_cb_cstr(&b, "offset"); ava_cb_uint(&b, offset + done);
    ava_cb_cstr(&b, "bytes"); ava_cb_bytes(&b, p + done, part);
    uint8_t *raw = NULL;
    ava_cv *reply = exchange(id, &b, &raw);
    ava_cb_free(&b);
    int ok = reply && !ava_cv_get(reply, "error");
    ava_cv_free(reply);
    body_free(raw);
    if (!ok) return 0;
    done += part;
  }
  return 1;
}

/* Writes the bytes of `o`'s host memory that differ from its shadow to the device (runs past MAX_PUSHED_RUNS: one span). */
static void push_mirror(ava_obj *o) {
  uint8_t *now = o->mirror, *before = o->shadow;
  size_t n = o->mirror_size;
  if (!now || !before || memcmp(now, before, n) == 0) return;
  size_t *runs = malloc(sizeof *runs * 2 * MAX_PUSHED_RUNS), nruns = 0, first = SIZE_MAX, last = 0;
  if (!runs) return;
  int open = 0;
  for (size_t block = 0; block < n; block += MIRROR_BLOCK) {
    size_t end = n - block < MIRROR_BLOCK ? n : block + MIRROR_BLOCK;
    if (!open && memcmp(now + block, before + block, end - block) == 0) continue;
    for (size_t i = block; i < end; i++) {
      int differs = now[i] != before[i];
      if (differs && !open) {
        open = 1;
        if (first == SIZE_MAX) first = i;
        if (nruns < 2 * MAX_PUSHED_RUNS) runs[nruns] = i;
      } else if (!differs && open) {
        open = 0;
        if (nruns < 2 * MAX_PUSHED_RUNS) runs[nruns + 1] = i;
        nruns += 2;
        last = i;
      }
    }
  }
  if (open) {
    if (nruns < 2 * MAX_PUSHED_RUNS) runs[nruns + 1] = n;
    nruns += 2;
    last = n;
  }
  if (nruns > 2 * MAX_PUSHED_RUNS) { runs[0] = first; runs[1] = last; nruns = 2; }
  for (size_t r = 0; r < nruns; r += 2) {
    /* The shadow takes the bytes first and they are sent from there: a thread writing meanwhile is seen next time. */
    memcpy(before + runs[r], now + runs[r], runs[r + 1] - runs[r]);
    if (!restore_range(o, runs[r], before + runs[r], runs[r + 1] - runs[r])) {
      warn("writing the program's changes of host memory (USE_HOST_PTR) to the device failed; they stay on the host");
      unbind_mirror(o);
      break;
    }
  }
  free(runs);
}

static int mirrored(const ava_obj *o) { return o && o->magic == AVA_MAGIC && o->mirror; }

/* Runs `action` on every object with host memory (`all`: a snapshot taken under the lock), or on those the call names. */
static void for_mirrors(const ava_fn *fn, const uint64_t *slots, int all, void (*action)(ava_obj *)) {
  if (!all) {
    for (int i = 0; i < fn->nargs; i++) {
      ava_obj *o = fn->args[i].role == AVA_HANDLE ? obj_of((void *)(uintptr_t)slots[i]) : NULL;
      pthread_mutex_lock(&mirror_mu);
      if (mirrored(o)) action(o);
      pthread_mutex_unlock(&mirror_mu);
    }
    return;
  }
  pthread_mutex_lock(&obj_mu);
  size_t n = 0, cap = mirror_count;
  ava_obj **list = calloc(cap ? cap : 1, sizeof *list);
  for (size_t i = 0; list && i < objs_by_id.cap && n < cap; i++) {
    ava_obj *o = objs_by_id.keys[i] ? objs_by_id.vals[i] : NULL;
    if (o && o->mirror) list[n++] = o;
  }
  pthread_mutex_unlock(&obj_mu);
  for (size_t i = 0; i < n; i++) {
    pthread_mutex_lock(&mirror_mu);
    if (list[i]->mirror) action(list[i]); /* not unbound meanwhile */
    pthread_mutex_unlock(&mirror_mu);
  }
  free(list);
}

/* Before a call is sent: the program's changes of the host memory it may touch reach the device first. */
static void before_call(const ava_fn *fn, const uint64_t *slots) {
  if (fn->record == AVA_REC_SYNC || fn->record == AVA_REC_EXECUTE || fn->record == AVA_REC_TRANSFER) {
    for_mirrors(fn, slots, fn->record != AVA_REC_TRANSFER, push_mirror);
  }
}

/* After a successful call: bind new mirrors, count the program's references, refresh those the call synchronizes. */
static void after_call(const ava_fn *fn, uint64_t *slots, uint64_t result) {
  if (fn->record == AVA_REC_CREATE && fn->ret == AVA_RET_HANDLE && result) {
    for (int i = 0; i < fn->nargs; i++) {
      const ava_arg *a = &fn->args[i];
      if (a->role != AVA_BUFFER_IN || a->ref2 < 0 || !slots[i] || !(arg_number(fn, slots, a->ref2) & a->mask)) continue;
      ava_obj *o = (ava_obj *)(uintptr_t)result;
      size_t size = (size_t)eval_length(fn, a->length, slots);
      /* The object was made from these bytes: what the device holds. Without room for a copy, no changes are pushed. */
      uint8_t *shadow = malloc(size ? size : 1);
      if (shadow) memcpy(shadow, (void *)(uintptr_t)slots[i], size);
      else warn("no memory for a copy of %zu bytes of USE_HOST_PTR memory: the program's later writes to it stay on the host", size);
      pthread_mutex_lock(&obj_mu);
      o->mirror = (void *)(uintptr_t)slots[i];
      o->mirror_size = size;
      o->shadow = shadow;
      o->mirror_refs = 1;
      mirror_count++;
      pthread_mutex_unlock(&obj_mu);
    }
  }
  if (__atomic_load_n(&mirror_count, __ATOMIC_RELAXED) == 0) return;
  if (fn->record == AVA_REC_RETAIN || fn->record == AVA_REC_RELEASE) {
    ava_obj *o = fn->nargs > 0 && fn->args[0].role == AVA_HANDLE ? obj_of((void *)(uintptr_t)slots[0]) : NULL;
    if (!mirrored(o)) return;
    int32_t refs = __atomic_add_fetch(&o->mirror_refs, fn->record == AVA_REC_RETAIN ? 1 : -1, __ATOMIC_RELAXED);
    if (refs <= 0) { /* the program may free that memory now */
      pthread_mutex_lock(&mirror_mu);
      unbind_mirror(o);
      pthread_mutex_unlock(&mirror_mu);
    }
  } else if (fn->record == AVA_REC_SYNC || fn->record == AVA_REC_TRANSFER) {
    for_mirrors(fn, slots, fn->record == AVA_REC_SYNC, refresh_mirror);
  }
}

/* An object the call just made for the program: its one reference so far. */
static void count_made(ava_obj *o) {
  if (o) { o->refs = 1; o->counted = 1; }
}

/*
 * The program's references to objects of transient kinds (events), after a call that went out: one from the call
 * that made it, one more per retain, one less per release; at zero the front forgets and frees the object, as the
 * library frees a native one (a program making an event per launch otherwise grew by ~170 bytes an event for its
 * life: 37 MB after 200,000 launches). Using the pointer after that is what it is natively, undefined; an object a
 * callback was registered on is kept, since the callback gets it back. Objects the front only saw (in an info value
 * or a callback's arguments) are not counted and stay.
 */
static void count_refs(const ava_fn *fn, const uint64_t *slots, uint64_t result) {
  int callback = 0;
  for (int i = 0; i < fn->nargs; i++) {
    const ava_arg *a = &fn->args[i];
    if (a->role == AVA_CALLBACK && slots[i] && (a->flags & AVA_ARG_DELIVERED)) callback = 1;
    if (a->role == AVA_HANDLE_OUT && slots[i] && transient_kind(a->kind)) count_made(*(ava_obj **)(uintptr_t)slots[i]);
  }
  if (fn->ret == AVA_RET_HANDLE && transient_kind(fn->ret_kind)) count_made((ava_obj *)(uintptr_t)result);
  for (int i = 0; callback && i < fn->nargs; i++) {
    ava_obj *o = fn->args[i].role == AVA_HANDLE ? obj_of((void *)(uintptr_t)slots[i]) : NULL;
    if (o && transient_kind(o->kind)) __atomic_store_n(&o->pinned, 1, __ATOMIC_RELAXED);
  }
  if ((fn->record != AVA_REC_RETAIN && fn->record != AVA_REC_RELEASE) || fn->nargs < 1 || fn->args[0].role != AVA_HANDLE) return;
  ava_obj *o = obj_of((void *)(uintptr_t)slots[0]);
  if (!o || !o->counted || !transient_kind(o->kind)) return;
  int32_t refs = __atomic_add_fetch(&o->refs, fn->record == AVA_REC_RETAIN ? 1 : -1, __ATOMIC_ACQ_REL);
  if (refs != 0 || __atomic_load_n(&o->pinned, __ATOMIC_RELAXED)) return;
  pthread_mutex_lock(&obj_mu);
  map_del(&objs_by_id, id_key(o->id));
  map_del(&objs_by_ptr, (uint64_t)(uintptr_t)o);
  pthread_mutex_unlock(&obj_mu);
  free(o);
}

static int names_mirror(const ava_fn *fn, const uint64_t *slots) {
  if (__atomic_load_n(&mirror_count, __ATOMIC_RELAXED) == 0) return 0;
  for (int i = 0; i < fn->nargs; i++) if (fn->args[i].role == AVA_HANDLE && mirrored(obj_of((void *)(uintptr_t)slots[i]))) return 1;
  return 0;
}

/* ------------------------------------------------------------------------------------------------ entry */

/* An unmap was sent: the region the application wrote through goes away, as the mapped pointer does natively. */
static void release_mappings(const ava_fn *fn, const uint64_t *slots) {
  for (int i = 0; i < fn->nargs; i++) {
    if (fn->args[i].role != AVA_MAPPED) continue;
    pthread_mutex_lock(&obj_mu);
    mapping *m = map_get(&mappings, slots[i]);
    if (m) map_del(&mappings, slots[i]);
    pthread_mutex_unlock(&obj_mu);
    if (m && m->owned) free((void *)(uintptr_t)slots[i]);
    free(m);
  }
}

/*
 * The arguments a split transfer chains its parts through: the event it may make, the wait list of that kind and
 * the count argument the list's length names. 0 when the function lacks one of them or its kind has no release call.
 */
static int chain_args(const ava_fn *fn, int *event, int *list, int *count) {
  *event = *list = *count = -1;
  for (int i = 0; i < fn->nargs; i++) if (fn->args[i].role == AVA_HANDLE_OUT) *event = i;
  if (*event < 0 || ava_api_desc.kinds[fn->args[*event].kind].release == NULL) return 0;
  for (int i = 0; i < fn->nargs; i++) {
    const ava_arg *a = &fn->args[i];
    if (a->role != AVA_HANDLES || a->kind != fn->args[*event].kind || a->length < 0) continue;
    const int64_t *p = fn->exprs + a->length;
    if (p[0] == AVA_OP_ARG && p[2] == AVA_OP_END) { *list = i; *count = (int)p[1]; }
  }
  return *list >= 0;
}

/* Releases an object the front made for itself (see invoke_split). */
static void release_own(int kind, void *obj) {
  uint64_t slot = (uint64_t)(uintptr_t)obj;
  ava_invoke(ava_api_desc.kinds[kind].release, &slot);
}

/*
 * A flat transfer larger than SPLIT_BYTES (a multi-GiB clEnqueueWriteBuffer) as consecutive parts, each its own call in
 * order. When the program asks for the transfer's event, every part but the first waits for the one before (an event
 * the front makes and releases), and the last stores the program's event: so that event completes after every part,
 * on an out-of-order queue too. The first part waits for the program's wait list. The first failing part's status is
 * the call's.
 */
static uint64_t invoke_split(const ava_fn *fn, const uint64_t *slots) {
  const int off = fn->split[0], len = fn->split[1], data = fn->split[2];
  uint64_t offset = arg_number(fn, slots, off), size = arg_number(fn, slots, len), part[64];
  int event, list, count;
  int chained = chain_args(fn, &event, &list, &count) && slots[event] != 0;
  void *before = NULL; /* the previous part's event, when chained */
  uint64_t r = (uint64_t)(int64_t)ava_api_desc.success;
  for (uint64_t done = 0; done < size;) {
    uint64_t n = size - done < SPLIT_BYTES ? size - done : SPLIT_BYTES;
    int last = done + n == size;
    void *mine = NULL;
    memcpy(part, slots, sizeof(uint64_t) * (size_t)fn->nargs);
    part[off] = offset + done;
    part[len] = n;
    part[data] = slots[data] ? slots[data] + done : 0;
    if (!last) for (int i = 0; i < fn->nargs; i++) if (fn->args[i].role == AVA_HANDLE_OUT) part[i] = 0;
    if (chained) {
      if (!last) part[event] = (uint64_t)(uintptr_t)&mine;
      if (before) { part[list] = (uint64_t)(uintptr_t)&before; part[count] = 1; }
    }
    r = ava_invoke(fn, part);
    /* The part just enqueued holds its own reference to the event it waits for. */
    if (before) release_own(fn->args[event].kind, before);
    before = mine;
    if (fn->ret == AVA_RET_STATUS && (int32_t)r != ava_api_desc.success) break;
    done += n;
  }
  if (before) release_own(fn->args[event].kind, before);
  return r;
}

/* Bytes one call may take in a frame: the wire's limit less the batch it may join. */
static size_t call_limit(void) { return (size_t)ava_api_desc.max_frame - BATCH_MAX_BYTES - 4096; }

uint64_t ava_invoke(const ava_fn *fn, uint64_t *slots) {
  if (fn->unsupported) {
    warn("%s is not supported: %s", fn->name, fn->unsupported);
    return fail(fn, slots, ST_INVALID_OPERATION);
  }
  if (fn->split[2] >= 0 && fn->nargs <= 64 && arg_number(fn, slots, fn->split[1]) > SPLIT_BYTES) return invoke_split(fn, slots);
  pthread_once(&once, start);
  if (broken) return fail(fn, slots, ST_OUT_OF_RESOURCES);
  if (in_forked_child) {
    /* A forked child would write into its parent's session (and has none of its threads). */
    static int warned;
    if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED)) warn("%s: OpenCL calls from a forked child of the process that made the first call are not supported (this and later calls of the child fail)", fn->name);
    return fail(fn, slots, ST_OUT_OF_RESOURCES);
  }
  int64_t issued[64];
  call_state cs = { .issued = issued };
  for (int i = 0; i < fn->nargs && i < 64; i++) issued[i] = 0;
  uint64_t seq = __atomic_fetch_add(&next_seq, 1, __ATOMIC_RELAXED);
  if (__atomic_load_n(&mirror_count, __ATOMIC_RELAXED) > 0) before_call(fn, slots);
  int async = fn->async && !names_mirror(fn, slots);

  if (async) {
    /* Nothing to give back but handles whose ids we issue: queue it; a failure surfaces at a later waiting call. */
    pthread_mutex_lock(&send_mu);
    if (fn->record == AVA_REC_RELEASE && fn->nargs == 1 && fn->args[0].role == AVA_HANDLE && transient_kind(fn->args[0].kind)) {
      ava_obj *o = obj_of((void *)(uintptr_t)slots[0]);
      if (o && elide_made(o)) {
        pthread_mutex_unlock(&send_mu);
        count_refs(fn, slots, 0); /* the program's last reference: the object goes */
        return (uint64_t)(int64_t)ava_api_desc.success;
      }
    }
    ava_cbmark mark = ava_cb_mark(&batch);
    size_t before = ava_cb_size(&batch), tail = 0;
    encode_call(fn, slots, &batch, &cs, seq, 1, 0, &tail);
    if (!cs.status && ava_cb_size(&batch) - before > call_limit()) {
      warn("%s: a call of %zu bytes is over the %zu a frame may carry: refused, the session goes on", fn->name, ava_cb_size(&batch) - before, call_limit());
      cs.status = ST_OUT_OF_RESOURCES;
    }
    if (cs.status) {
      ava_cb_rewind(&batch, mark);
      pthread_mutex_unlock(&send_mu);
      return fail(fn, slots, cs.status);
    }
    batch_calls++;
    if (batch.failed || !fold_repeat(mark, tail, &cs)) batch_entries++;
    int ok = 1;
    /* Bytes referenced in the program's memory must be sent before the call returns. */
    if (batch_calls >= BATCH_MAX_CALLS || ava_cb_size(&batch) >= BATCH_MAX_BYTES || batch.failed || batch.nrefs > 0) ok = flush_batch();
    pthread_mutex_unlock(&send_mu);
    if (!ok) return fail(fn, slots, ST_OUT_OF_RESOURCES);
    for (int i = 0; i < fn->nargs; i++) {
      if (fn->args[i].role == AVA_HANDLE_OUT && slots[i]) *(void **)(uintptr_t)slots[i] = obj_for_id(issued[i], fn->args[i].kind);
    }
    release_mappings(fn, slots); /* the write-back bytes are in the batch already */
    count_refs(fn, slots, 0);
    return 0;
  }

  /* A read or map without blocking: its bytes come later (take_delivery), so a wait in the program can release it. */
  int64_t deliver = 0;
  if (fn->deferred[0] >= 0 && arg_number(fn, slots, fn->deferred[0]) == 0) {
    /* A read's bytes go where the program asked; a map's region is made once the reply says how long it is. */
    int map = fn->deferred[2] < 0;
    delivery *d = map || slots[fn->deferred[2]] ? calloc(1, sizeof *d) : NULL;
    int64_t length = map ? 0 : eval_length(fn, fn->args[fn->deferred[2]].length, slots);
    if (d && length >= 0) {
      d->dst = map ? NULL : (void *)(uintptr_t)slots[fn->deferred[2]];
      d->length = (size_t)length;
      deliver = __atomic_fetch_add(&next_callback, 1, __ATOMIC_RELAXED);
      if (map) cs.deliver = deliver;
      pthread_mutex_lock(&obj_mu);
      map_put(&deliveries, (uint64_t)deliver, d);
      pthread_mutex_unlock(&obj_mu);
    } else free(d);
  }
  /* The program's memory stays unchanged until this call returns: large byte strings go out from where they are. */
  ava_cbuf b = { .ref_min = REF_MIN_BYTES };
  encode_call(fn, slots, &b, &cs, seq, 0, deliver, NULL);
  if (!cs.status && ava_cb_size(&b) > call_limit()) {
    warn("%s: a call of %zu bytes is over the %zu a frame may carry: refused, the session goes on", fn->name, ava_cb_size(&b), call_limit());
    cs.status = ST_OUT_OF_RESOURCES;
  }
  if (cs.status) {
    ava_cb_free(&b);
    if (deliver) take_delivery(deliver, NULL);
    return fail(fn, slots, cs.status);
  }
  uint8_t *raw = NULL;
  uint64_t events_before = 0;
  /* A call that reads one large byte string into the program's memory has its reply's bytes land there directly. */
  uint8_t *land = NULL;
  size_t land_cap = 0;
  if (!deliver) {
    for (int i = 0; i < fn->nargs; i++) {
      const ava_arg *a = &fn->args[i];
      if (a->role != AVA_BUFFER_OUT || !slots[i] || (a->flags & AVA_ARG_PRESERVE)) continue;
      int64_t len = eval_length(fn, a->length, slots);
      if (len < (int64_t)LAND_MIN_BYTES) continue;
      if (land) { land = NULL; break; } /* two: which is which is the reply's business */
      land = (uint8_t *)(uintptr_t)slots[i];
      land_cap = (size_t)len;
    }
  }
  ava_cv *reply = exchange_counting(seq, &b, &raw, &events_before, land, land_cap);
  /* A wait or a finish returns after the callbacks the worker saw fire before it answered (see await_callbacks). */
  if (reply && fn->record == AVA_REC_SYNC) await_callbacks(events_before);
  ava_cb_free(&b);
  if (!reply) {
    if (deliver) take_delivery(deliver, NULL);
    warn("%s: the ava-guestd sidecar is gone", fn->name);
    return fail(fn, slots, ST_OUT_OF_RESOURCES);
  }
  uint64_t result = apply_reply(fn, slots, reply, &cs);
  int succeeded = !ava_cv_get(reply, "error") && (fn->ret != AVA_RET_STATUS || (int32_t)result == ava_api_desc.success) &&
                  !((fn->ret == AVA_RET_HANDLE || fn->ret == AVA_RET_MAPPED) && result == 0);
  /* Nothing will come (a read that failed, a map that failed before its region was placed). */
  if (deliver && !succeeded && (fn->deferred[2] >= 0 || cs.deliver == deliver)) take_delivery(deliver, NULL);
  ava_cv_free(reply);
  body_free(raw);
  if (succeeded) {
    release_mappings(fn, slots);
    after_call(fn, slots, result);
    count_refs(fn, slots, result);
  }
  return result;
}
