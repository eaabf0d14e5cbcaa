/*
 * The C front's CBOR: a writer into a growing buffer and a reader that parses one frame into a tree. Only the CBOR
 * the wire uses (docs/WIRE.md): integers, floats, byte and text strings, arrays, maps with text keys, null, booleans.
 */
#ifndef AVA_CBOR_H
#define AVA_CBOR_H

#include <stddef.h>
#include <stdint.h>

/** The most byte strings one buffer references (see ava_cbuf); more are copied. */
#define AVA_CB_MAX_REFS 16

/** Bytes a buffer names instead of copying them: they belong in the stream at `at`, before data[at]. */
typedef struct ava_cref {
  size_t at;
  const void *p;
  size_t n;
} ava_cref;

/**
 * A growing output buffer; `failed` is set (and writes stop) when memory runs out. With `ref_min` set, byte strings
 * of at least that many bytes are not copied: the buffer keeps a reference (`refs`), and the caller must keep them
 * unchanged until the buffer is sent (ava_cb_pieces).
 */
typedef struct ava_cbuf {
  uint8_t *data;
  size_t len, cap;
  int failed;
  size_t ref_min;
  ava_cref *refs;
  size_t nrefs, refs_cap;
  size_t ref_bytes; /* bytes the references add to the stream */
} ava_cbuf;

void ava_cb_reserve(ava_cbuf *b, size_t extra);
void ava_cb_raw(ava_cbuf *b, const void *p, size_t n);
void ava_cb_uint(ava_cbuf *b, uint64_t v);
void ava_cb_int(ava_cbuf *b, int64_t v);
void ava_cb_double(ava_cbuf *b, double v);
void ava_cb_bytes(ava_cbuf *b, const void *p, size_t n);
void ava_cb_text(ava_cbuf *b, const char *p, size_t n);
void ava_cb_cstr(ava_cbuf *b, const char *s);
void ava_cb_array(ava_cbuf *b, size_t n);
void ava_cb_map(ava_cbuf *b, size_t n);
void ava_cb_null(ava_cbuf *b);
void ava_cb_bool(ava_cbuf *b, int v);
void ava_cb_free(ava_cbuf *b);
/** Bytes of the whole stream: what was written plus what the references name. */
size_t ava_cb_size(const ava_cbuf *b);
/** A point in a buffer's stream to go back to (ava_cb_rewind), references included. */
typedef struct ava_cbmark { size_t len, nrefs, ref_bytes; } ava_cbmark;
ava_cbmark ava_cb_mark(const ava_cbuf *b);
/** Drops what was written (and referenced) after `m`; ava_cb_rewind(b, (ava_cbmark){ 0 }) empties it (storage kept). */
void ava_cb_rewind(ava_cbuf *b, ava_cbmark m);
/**
 * The stream as pieces in order (written bytes and referenced ones): fills at most `max` of `base`/`len` pairs and
 * returns how many it used, or 0 when `max` is too small.
 */
int ava_cb_pieces(const ava_cbuf *b, const void **base, size_t *len, int max);

/**
 * The head of the CBOR item at `p` (of `n` bytes available): its major type, additional information and argument.
 * Returns the bytes the head takes, or 0 when it runs past `n` or has an indefinite length.
 */
size_t ava_cbor_head(const uint8_t *p, size_t n, uint8_t *major, uint8_t *info, uint64_t *arg);

/** Kinds of parsed values. */
enum ava_cv_type { CV_UINT, CV_NEG, CV_BYTES, CV_TEXT, CV_ARRAY, CV_MAP, CV_FLOAT, CV_BOOL, CV_NULL };

/** A parsed value. Strings point into the parsed bytes; arrays hold `n` items, maps `n` key/value pairs. */
typedef struct ava_cv {
  uint8_t type;
  uint64_t u;          /* CV_UINT value; CV_NEG: the value is -1 - u; CV_BOOL: 0/1 */
  double f;            /* CV_FLOAT */
  const uint8_t *p;    /* CV_BYTES / CV_TEXT */
  size_t n;            /* string length, array items, map pairs */
  struct ava_cv *items; /* arrays: n items; maps: 2n items, key then value */
} ava_cv;

/** Parses `len` bytes holding exactly one value; returns NULL on malformed input. Free with ava_cv_free. */
ava_cv *ava_cv_parse(const uint8_t *data, size_t len);
void ava_cv_free(ava_cv *v);
/** The value of text key `key` in map `m`, or NULL. */
const ava_cv *ava_cv_get(const ava_cv *m, const char *key);
/** Integer value (unsigned, negative or integral float); `ok` cleared when it is not a number. */
int64_t ava_cv_int(const ava_cv *v, int *ok);
/** True when `v` is a text string equal to `s`. */
int ava_cv_is_text(const ava_cv *v, const char *s);

#endif
