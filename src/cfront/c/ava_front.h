/*
 * The C front's descriptor tables: what src/cfront/generate.ts writes for each function of a spec, and what the one
 * generic marshaller (ava_front.c) reads. Nothing here is specific to one function: the generated entry points only
 * pack their arguments into 64-bit slots and call ava_invoke with their descriptor.
 */
#ifndef AVA_FRONT_H
#define AVA_FRONT_H

#include <stddef.h>
#include <stdint.h>

/** Argument roles, in the order of src/spec/types.ts. */
enum ava_role {
  AVA_SCALAR, AVA_COUNT, AVA_HANDLE, AVA_HANDLES, AVA_HANDLE_OUT, AVA_HANDLES_OUT, AVA_BUFFER_IN, AVA_BUFFER_OUT,
  AVA_STRING, AVA_STRINGS, AVA_SCALARS, AVA_PROPERTIES, AVA_SCALAR_OUT, AVA_SCALARS_OUT, AVA_ERRCODE, AVA_INFO,
  AVA_ARG_VALUE, AVA_CALLBACK, AVA_USER_DATA, AVA_MAPPED, AVA_STRUCT
};
/** Scalar types. */
enum ava_type { AVA_I8, AVA_U8, AVA_I16, AVA_U16, AVA_I32, AVA_U32, AVA_I64, AVA_U64, AVA_SIZE, AVA_UINTPTR, AVA_F32, AVA_F64 };
/** Return roles. */
enum ava_ret { AVA_RET_VOID, AVA_RET_STATUS, AVA_RET_SCALAR, AVA_RET_HANDLE, AVA_RET_MAPPED };
/**
 * Length-expression opcodes: a postfix program over the call's argument slots, ended by AVA_OP_END.
 * AVA_OP_FN f n: named length function f (ava_length_fn) of the n values on top; AVA_OP_FIELD i k: field k of struct
 * argument i; AVA_OP_ATTR i k: attribute k of the handle argument i.
 */
enum ava_op { AVA_OP_END, AVA_OP_CONST, AVA_OP_ARG, AVA_OP_MUL, AVA_OP_FN, AVA_OP_FIELD, AVA_OP_ATTR };
/** Named length functions, in the order of LENGTH_FUNCTION_NAMES (src/spec/length.ts). */
enum ava_length_fn { AVA_FN_RECT_EXTENT, AVA_FN_IMAGE_EXTENT, AVA_FN_IMAGE_ELEMENT_SIZE, AVA_FN_IMAGE_SIZE };
/** Attribute slots per object (handle attributes a creating call sets, e.g. an image's element size). */
#define AVA_MAX_ATTRS 4

/** Argument flags. */
#define AVA_ARG_NULLABLE 1u /* nullable or optional */
#define AVA_ARG_PRESERVE 2u /* bufferOut: the caller's bytes travel with the call */
#define AVA_ARG_DELIVERED 4u /* callback: delivered as an event (else only NULL is accepted) */

/** One C argument. */
typedef struct ava_arg {
  const char *name;
  uint8_t role, type, flags;
  int16_t kind;        /* handle kind index, or -1 */
  int16_t length;      /* offset of its length program in the function's `exprs`, or -1 */
  int16_t ref;         /* info: size argument; strings: lengths argument; argValue: size argument; callback: user data */
  int16_t ref2;        /* info: param argument; bufferIn with mirror: flags argument */
  const int64_t *pairs; /* info handle params / properties handle keys: key, kind index, ... */
  uint16_t npairs;
  const int64_t *arrays; /* info pointer arrays: param, sizes param, ... */
  uint16_t narrays;
  const int64_t *props;  /* info property lists: param, key, kind index, ... (handle values under those keys) */
  uint16_t nprops;
  uint64_t mask;       /* bufferIn mirror: flag mask */
  const int64_t *fields; /* struct: offset, type index or -1, kind index or -1 (handle field), ... */
  uint16_t nfields;
  uint32_t size;       /* struct: bytes */
} ava_arg;

/** One function. */
typedef struct ava_fn {
  const char *name;
  uint8_t ret, ret_type;
  int16_t ret_kind;
  int16_t ret_length;  /* mapped return: offset of its length program */
  uint8_t record;      /* index into the record classes of src/spec/types.ts */
  uint8_t async;       /* sent without waiting (enqueues, releases: nothing to give back) */
  uint8_t nargs;
  const ava_arg *args;
  const int64_t *exprs;
  const char *unsupported; /* reason, or NULL */
  const int64_t *sets; /* attributes of the returned handle: attribute index, offset of its length program, ... */
  uint8_t nsets;
  int8_t split[3];     /* a splittable flat transfer: offset, size and data argument indexes, or -1 */
  int8_t deferred[3];  /* a read or map whose bytes may come later: blocking, event and data (-1 for a map) indexes, or -1 */
} ava_fn;

/** A handle kind. */
typedef struct ava_kind {
  const char *name;
  int32_t invalid_status;
  uint8_t interned;
  uint8_t transient;     /* no state, made and released per command (events): the front frees its object at the last release */
  const ava_fn *release; /* the spec's release call of this kind (its one argument: the handle), or NULL */
} ava_kind;

/** What the generated table gives the runtime. */
typedef struct ava_api {
  const char *spec_name;
  const char *spec_hash;
  const ava_kind *kinds;
  int nkinds;
  int32_t success;
  const char *guestd_node;   /* node executable baked in at build time */
  const char *guestd_script; /* the ava-guestd entry baked in at build time */
  const char *guestd_import; /* a module node imports first (tsx, when running from the TypeScript sources), or "" */
  uint64_t max_frame;        /* the wire's frame limit: a larger call is refused here, the session kept */
} ava_api;

extern const ava_api ava_api_desc;

/** Runs one call: `slots` holds the C arguments, each widened to 64 bits. Returns the C return value, widened. */
uint64_t ava_invoke(const ava_fn *fn, uint64_t *slots);

/** Record class indexes (src/spec/types.ts RECORD_CLASSES order). */
enum ava_record { AVA_REC_CREATE, AVA_REC_CONFIGURE, AVA_REC_RETAIN, AVA_REC_RELEASE, AVA_REC_GLOBAL, AVA_REC_TRANSFER, AVA_REC_EXECUTE, AVA_REC_QUERY, AVA_REC_SYNC };

#endif
