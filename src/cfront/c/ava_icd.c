/*
 * The OpenCL Installable Client Driver face of the C front: the two symbols the ICD loader looks up
 * (clIcdGetPlatformIDsKHR, clGetExtensionFunctionAddress), the KHR dispatch table every object starts with, and the
 * platform's names, which say that it is remoted. Everything else in the table is a generated entry point.
 */
/* CL_TARGET_OPENCL_VERSION and CL_USE_DEPRECATED_* come from the build flags (src/cfront/build.ts). */
#include <CL/cl_icd.h>
#include <CL/cl_ext.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ava_front.h"

#define EXPORT __attribute__((visibility("default")))

void ava_fill_dispatch(cl_icd_dispatch *d);
cl_int ava_clGetPlatformIDs(uintptr_t num_entries, uintptr_t platforms, uintptr_t num_platforms);
cl_int ava_clGetPlatformInfo(uintptr_t platform, uintptr_t param, uintptr_t size, uintptr_t value, uintptr_t size_ret);

/** What the platform's name starts with, so a user sees that the platform is remoted. */
static const char NAME_PREFIX[] = "AvA remoted: ";
/** The ICD suffix of our extension functions (we have none) */
static const char ICD_SUFFIX[] = "AVA";

static cl_icd_dispatch table;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Entries the spec does not have (OpenCL 2.x and extensions): a program that calls them gets an error, not a crash. */
static cl_int missing_entry(void) { return CL_INVALID_OPERATION; }

EXPORT cl_int CL_API_CALL clIcdGetPlatformIDsKHR(cl_uint num_entries, cl_platform_id *platforms, cl_uint *num_platforms);
EXPORT void *CL_API_CALL clGetExtensionFunctionAddress(const char *name);
EXPORT void *CL_API_CALL clGetExtensionFunctionAddressForPlatform(cl_platform_id platform, const char *name);
EXPORT cl_int CL_API_CALL clGetPlatformInfo(cl_platform_id platform, cl_platform_info param, size_t size, void *value, size_t *size_ret);

static void *CL_API_CALL extension_address_for_platform(cl_platform_id platform, const char *name) {
  (void)platform;
  return clGetExtensionFunctionAddress(name);
}

/* Answers with `text` as an info value, with OpenCL's size rules. */
static cl_int info_text(const char *text, size_t size, void *value, size_t *size_ret) {
  size_t n = strlen(text) + 1;
  if (value && size < n) return CL_INVALID_VALUE;
  if (value) memcpy(value, text, n);
  if (size_ret) *size_ret = n;
  return CL_SUCCESS;
}

static cl_int CL_API_CALL platform_info(cl_platform_id platform, cl_platform_info param, size_t size, void *value, size_t *size_ret) {
  if (param == CL_PLATFORM_ICD_SUFFIX_KHR) {
    cl_int st = ava_clGetPlatformInfo((uintptr_t)platform, CL_PLATFORM_VERSION, 0, 0, 0); /* checks the platform */
    return st != CL_SUCCESS ? st : info_text(ICD_SUFFIX, size, value, size_ret);
  }
  if (param != CL_PLATFORM_NAME) return ava_clGetPlatformInfo((uintptr_t)platform, param, size, (uintptr_t)value, (uintptr_t)size_ret);
  size_t n = 0;
  cl_int st = ava_clGetPlatformInfo((uintptr_t)platform, param, 0, 0, (uintptr_t)&n);
  if (st != CL_SUCCESS) return st;
  char *name = malloc(sizeof NAME_PREFIX + n);
  if (!name) return CL_OUT_OF_HOST_MEMORY;
  memcpy(name, NAME_PREFIX, sizeof NAME_PREFIX);
  st = ava_clGetPlatformInfo((uintptr_t)platform, param, n, (uintptr_t)(name + sizeof NAME_PREFIX - 1), 0);
  if (st == CL_SUCCESS) st = info_text(name, size, value, size_ret);
  free(name);
  return st;
}

static void fill(void) {
  void (**slots)(void) = (void (**)(void))&table;
  for (size_t i = 0; i < sizeof table / sizeof *slots; i++) slots[i] = (void (*)(void))missing_entry;
  ava_fill_dispatch(&table);
  table.clGetPlatformInfo = platform_info;
  table.clGetExtensionFunctionAddress = clGetExtensionFunctionAddress;
  table.clGetExtensionFunctionAddressForPlatform = extension_address_for_platform;
}

/** The dispatch table objects start with (ava_front.c). */
const void *ava_dispatch(void) {
  pthread_once(&once, fill);
  return &table;
}

EXPORT cl_int CL_API_CALL clIcdGetPlatformIDsKHR(cl_uint num_entries, cl_platform_id *platforms, cl_uint *num_platforms) {
  ava_dispatch();
  return ava_clGetPlatformIDs(num_entries, (uintptr_t)platforms, (uintptr_t)num_platforms);
}

EXPORT void *CL_API_CALL clGetExtensionFunctionAddress(const char *name) {
  if (name && strcmp(name, "clIcdGetPlatformIDsKHR") == 0) return (void *)clIcdGetPlatformIDsKHR;
  return NULL;
}

EXPORT void *CL_API_CALL clGetExtensionFunctionAddressForPlatform(cl_platform_id platform, const char *name) {
  return extension_address_for_platform(platform, name);
}

/* The loader may look this one up by name as well (cl_khr_icd lists it beside the two above). */
EXPORT cl_int CL_API_CALL clGetPlatformInfo(cl_platform_id platform, cl_platform_info param, size_t size, void *value, size_t *size_ret) {
  return platform_info(platform, param, size, value, size_ret);
}
