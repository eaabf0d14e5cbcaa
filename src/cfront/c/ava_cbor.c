/* See ava_cbor.h. */
#include "ava_cbor.h"

#include <stdlib.h>
#include <string.h>

void ava_cb_reserve(ava_cbuf *b, size_t extra) {
  if (b->failed || b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra) cap *= 2;
  uint8_t *p = realloc(b->data, cap);
  if (!p) { b->failed = 1; return; }
  b->data = p;
  b->cap = cap;
}

void ava_cb_raw(ava_cbuf *b, const void *p, size_t n) {
  ava_cb_reserve(b, n);
  if (b->failed) return;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void head(ava_cbuf *b, uint8_t major, uint64_t v) {
  uint8_t h[9];
  size_t n;
  if (v < 24) { h[0] = (uint8_t)(major << 5 | v); n = 1; }
  else if (v <= 0xff) { h[0] = (uint8_t)(major << 5 | 24); h[1] = (uint8_t)v; n = 2; }
  else if (v <= 0xffff) { h[0] = (uint8_t)(major << 5 | 25); h[1] = (uint8_t)(v >> 8); h[2] = (uint8_t)v; n = 3; }
  else if (v <= 0xffffffffu) {
    h[0] = (uint8_t)(major << 5 | 26);
    for (int i = 0; i < 4; i++) h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
    n = 5;
  } else {
    h[0] = (uint8_t)(major << 5 | 27);
    for (int i = 0; i < 8; i++) h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    n = 9;
  }
  ava_cb_raw(b, h, n);
}

void ava_cb_uint(ava_cbuf *b, uint64_t v) { head(b, 0, v); }
void ava_cb_int(ava_cbuf *b, int64_t v) {
  if (v >= 0) head(b, 0, (uint64_t)v);
  else head(b, 1, (uint64_t)(-1 - v));
}
void ava_cb_double(ava_cbuf *b, double v) {
  uint8_t h[9];
  uint64_t bits;
  memcpy(&bits, &v, 8);
  h[0] = 0xfb;
  for (int i = 0; i < 8; i++) h[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
  ava_cb_raw(b, h, 9);
}
void ava_cb_bytes(ava_cbuf *b, const void *p, size_t n) {
  head(b, 2, n);
  /* Past AVA_CB_MAX_REFS references the bytes are copied: a frame's pieces stay few enough for one writev. */
  if (b->ref_min == 0 || n < b->ref_min || b->failed || b->nrefs >= AVA_CB_MAX_REFS) { ava_cb_raw(b, p, n); return; }
  if (b->nrefs == b->refs_cap) {
    size_t cap = b->refs_cap ? 2 * b->refs_cap : 4;
    ava_cref *r = realloc(b->refs, cap * sizeof *r);
    if (!r) { b->failed = 1; return; }
    b->refs = r;
    b->refs_cap = cap;
  }
  b->refs[b->nrefs++] = (ava_cref){ b->len, p, n };
  b->ref_bytes += n;
}
void ava_cb_text(ava_cbuf *b, const char *p, size_t n) { head(b, 3, n); ava_cb_raw(b, p, n); }
void ava_cb_cstr(ava_cbuf *b, const char *s) { ava_cb_text(b, s, strlen(s)); }
void ava_cb_array(ava_cbuf *b, size_t n) { head(b, 4, n); }
void ava_cb_map(ava_cbuf *b, size_t n) { head(b, 5, n); }
void ava_cb_null(ava_cbuf *b) { uint8_t x = 0xf6; ava_cb_raw(b, &x, 1); }
void ava_cb_bool(ava_cbuf *b, int v) { uint8_t x = v ? 0xf5 : 0xf4; ava_cb_raw(b, &x, 1); }
void ava_cb_free(ava_cbuf *b) {
  size_t ref_min = b->ref_min;
  free(b->data);
  free(b->refs);
  memset(b, 0, sizeof *b);
  b->ref_min = ref_min;
}

size_t ava_cb_size(const ava_cbuf *b) { return b->len + b->ref_bytes; }
ava_cbmark ava_cb_mark(const ava_cbuf *b) { return (ava_cbmark){ b->len, b->nrefs, b->ref_bytes }; }
void ava_cb_rewind(ava_cbuf *b, ava_cbmark m) {
  b->len = m.len;
  b->nrefs = m.nrefs;
  b->ref_bytes = m.ref_bytes;
}

int ava_cb_pieces(const ava_cbuf *b, const void **base, size_t *len, int max) {
  int k = 0;
  size_t from = 0;
  for (size_t i = 0; i <= b->nrefs; i++) {
    size_t to = i < b->nrefs ? b->refs[i].at : b->len;
    if (to > from) {
      if (k == max) return 0;
      base[k] = b->data + from; len[k] = to - from; k++;
    }
    from = to;
    if (i < b->nrefs && b->refs[i].n > 0) {
      if (k == max) return 0;
      base[k] = b->refs[i].p; len[k] = b->refs[i].n; k++;
    }
  }
  return k;
}

/* ------------------------------------------------------------------------------------------------ reader */

size_t ava_cbor_head(const uint8_t *p, size_t n, uint8_t *major, uint8_t *info, uint64_t *arg) {
  if (n == 0) return 0;
  *major = p[0] >> 5;
  *info = p[0] & 31;
  if (*info < 24) { *arg = *info; return 1; }
  size_t k = *info == 24 ? 1 : *info == 25 ? 2 : *info == 26 ? 4 : *info == 27 ? 8 : 0;
  if (k == 0 || n - 1 < k) return 0; /* indefinite lengths are not part of the wire */
  uint64_t x = 0;
  for (size_t i = 0; i < k; i++) x = x << 8 | p[1 + i];
  *arg = x;
  return 1 + k;
}

typedef struct { const uint8_t *p, *end; int depth; } reader;

static int read_head(reader *r, uint8_t *major, uint8_t *info, uint64_t *v) {
  size_t k = ava_cbor_head(r->p, (size_t)(r->end - r->p), major, info, v);
  r->p += k;
  return k != 0;
}

static double half_to_double(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? m * (1.0 / (1 << 24)) : e == 31 ? (m ? 0.0 / 0.0 : 1.0 / 0.0) : (1024 + m) * ((double)(1ull << e) / (1ull << 25));
  return h & 0x8000 ? -v : v;
}

static int parse(reader *r, ava_cv *out) {
  uint8_t major, info;
  uint64_t v;
  memset(out, 0, sizeof *out);
  if (++r->depth > 16) return 0;
  if (!read_head(r, &major, &info, &v)) return 0;
  int ok = 1;
  switch (major) {
  case 0: out->type = CV_UINT; out->u = v; break;
  case 1: out->type = CV_NEG; out->u = v; break;
  case 2: case 3:
    if (v > (uint64_t)(r->end - r->p)) return 0;
    out->type = major == 2 ? CV_BYTES : CV_TEXT;
    out->p = r->p;
    out->n = (size_t)v;
    r->p += v;
    break;
  case 4: case 5: {
    size_t count = major == 4 ? (size_t)v : (size_t)v * 2;
    if (v > (uint64_t)(r->end - r->p)) return 0; /* every item takes at least one byte */
    out->type = major == 4 ? CV_ARRAY : CV_MAP;
    out->n = (size_t)v;
    if (count) {
      out->items = calloc(count, sizeof(ava_cv));
      if (!out->items) return 0;
      for (size_t i = 0; i < count && ok; i++) ok = parse(r, &out->items[i]);
    }
    break;
  }
  case 7:
    if (info == 20 || info == 21) { out->type = CV_BOOL; out->u = info == 21; }
    else if (info == 22) out->type = CV_NULL;
    else if (info == 25) { out->type = CV_FLOAT; out->f = half_to_double((uint16_t)v); }
    else if (info == 26) { uint32_t bits = (uint32_t)v; float f; memcpy(&f, &bits, 4); out->type = CV_FLOAT; out->f = f; }
    else if (info == 27) { double d; memcpy(&d, &v, 8); out->type = CV_FLOAT; out->f = d; }
    else ok = 0;
    break;
  default: ok = 0; /* tags are not part of the wire */
  }
  r->depth--;
  return ok;
}

static void free_items(ava_cv *v) {
  if (v->type != CV_ARRAY && v->type != CV_MAP) return;
  size_t count = v->type == CV_ARRAY ? v->n : v->n * 2;
  if (v->items) for (size_t i = 0; i < count; i++) free_items(&v->items[i]);
  free(v->items);
  v->items = NULL;
}

ava_cv *ava_cv_parse(const uint8_t *data, size_t len) {
  reader r = { data, data + len, 0 };
  ava_cv *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  if (!parse(&r, v) || r.p != r.end) { free_items(v); free(v); return NULL; }
  return v;
}

void ava_cv_free(ava_cv *v) {
  if (!v) return;
  free_items(v);
  free(v);
}

const ava_cv *ava_cv_get(const ava_cv *m, const char *key) {
  if (!m || m->type != CV_MAP) return NULL;
  size_t klen = strlen(key);
  for (size_t i = 0; i < m->n; i++) {
    const ava_cv *k = &m->items[2 * i];
    if (k->type == CV_TEXT && k->n == klen && memcmp(k->p, key, klen) == 0) return &m->items[2 * i + 1];
  }
  return NULL;
}

int64_t ava_cv_int(const ava_cv *v, int *ok) {
  if (v && v->type == CV_UINT) return (int64_t)v->u;
  if (v && v->type == CV_NEG) return -1 - (int64_t)v->u;
  if (v && v->type == CV_FLOAT && v->f == (double)(int64_t)v->f) return (int64_t)v->f;
  if (v && v->type == CV_BOOL) return (int64_t)v->u;
  if (ok) *ok = 0;
  return 0;
}

int ava_cv_is_text(const ava_cv *v, const char *s) {
  size_t n = strlen(s);
  return v && v->type == CV_TEXT && v->n == n && memcmp(v->p, s, n) == 0;
}
