/**
 * Every function that `CL/cl.h` declares and that exists in OpenCL 1.2 or earlier: 89 names, in header order.
 *
 * Extraction (re-run it when the header changes; `test/apis/opencl-spec.test.ts` does the same and fails on a
 * difference):
 *
 * ```js
 * const src = fs.readFileSync('/usr/include/CL/cl.h', 'utf8');
 * const re = /\b(cl[A-Z]\w*)\s*\(([^;]*?)\)\s*CL_(?:API|EXT)_SUFFIX__VERSION_(\d)_(\d)(_DEPRECATED)?\s*;/gs;
 * // keep a declaration when its suffix's version is <= 1.2:
 * //   CL_API_SUFFIX__VERSION_1_0 / _1_1 / _1_2                  (core 1.0 .. 1.2)
 * //   CL_API_SUFFIX__VERSION_1_0_DEPRECATED                      (clSetCommandQueueProperty: removed in 1.1, still
 * //                                                              declared under CL_USE_DEPRECATED_OPENCL_1_0_APIS
 * //                                                              and exported by the ICD loader)
 * //   CL_API_SUFFIX__VERSION_1_1_DEPRECATED                      (clCreateImage2D/3D, clEnqueueMarker,
 * //                                                              clEnqueueWaitForEvents, clEnqueueBarrier,
 * //                                                              clUnloadCompiler, clGetExtensionFunctionAddress)
 * //   CL_API_SUFFIX__VERSION_1_2_DEPRECATED                      (1.0 functions deprecated by 2.0:
 * //                                                              clCreateCommandQueue, clCreateSampler, clEnqueueTask)
 * // and drop _2_0, _2_1, _2_2, _3_0 (clCreateCommandQueueWithProperties, SVM, pipes, IL, ...).
 * ```
 * (Older headers spell the deprecated suffixes `CL_EXT_SUFFIX__VERSION_1_1_DEPRECATED`; the pattern accepts both.)
 * With the Khronos header of OpenCL 3.0 (installed by `scripts/install-opencl.sh`) this gives 89 of its 114 declarations.
 */
export const OPENCL_12_FUNCTIONS: readonly string[] = Object.freeze([
  'clGetPlatformIDs', 'clGetPlatformInfo', 'clGetDeviceIDs', 'clGetDeviceInfo', 'clCreateSubDevices',
  'clRetainDevice', 'clReleaseDevice', 'clCreateContext', 'clCreateContextFromType', 'clRetainContext',
  'clReleaseContext', 'clGetContextInfo', 'clRetainCommandQueue', 'clReleaseCommandQueue', 'clGetCommandQueueInfo',
  'clCreateBuffer', 'clCreateSubBuffer', 'clCreateImage', 'clRetainMemObject', 'clReleaseMemObject',
  'clGetSupportedImageFormats', 'clGetMemObjectInfo', 'clGetImageInfo', 'clSetMemObjectDestructorCallback',
  'clRetainSampler', 'clReleaseSampler', 'clGetSamplerInfo', 'clCreateProgramWithSource',
  'clCreateProgramWithBinary', 'clCreateProgramWithBuiltInKernels', 'clRetainProgram', 'clReleaseProgram',
  'clBuildProgram', 'clCompileProgram', 'clLinkProgram', 'clUnloadPlatformCompiler', 'clGetProgramInfo',
  'clGetProgramBuildInfo', 'clCreateKernel', 'clCreateKernelsInProgram', 'clRetainKernel', 'clReleaseKernel',
  'clSetKernelArg', 'clGetKernelInfo', 'clGetKernelArgInfo', 'clGetKernelWorkGroupInfo', 'clWaitForEvents',
  'clGetEventInfo', 'clCreateUserEvent', 'clRetainEvent', 'clReleaseEvent', 'clSetUserEventStatus',
  'clSetEventCallback', 'clGetEventProfilingInfo', 'clFlush', 'clFinish', 'clEnqueueReadBuffer',
  'clEnqueueReadBufferRect', 'clEnqueueWriteBuffer', 'clEnqueueWriteBufferRect', 'clEnqueueFillBuffer',
  'clEnqueueCopyBuffer', 'clEnqueueCopyBufferRect', 'clEnqueueReadImage', 'clEnqueueWriteImage',
  'clEnqueueFillImage', 'clEnqueueCopyImage', 'clEnqueueCopyImageToBuffer', 'clEnqueueCopyBufferToImage',
  'clEnqueueMapBuffer', 'clEnqueueMapImage', 'clEnqueueUnmapMemObject', 'clEnqueueMigrateMemObjects',
  'clEnqueueNDRangeKernel', 'clEnqueueNativeKernel', 'clEnqueueMarkerWithWaitList', 'clEnqueueBarrierWithWaitList',
  'clGetExtensionFunctionAddressForPlatform', 'clSetCommandQueueProperty', 'clCreateImage2D', 'clCreateImage3D',
  'clEnqueueMarker', 'clEnqueueWaitForEvents', 'clEnqueueBarrier', 'clUnloadCompiler',
  'clGetExtensionFunctionAddress', 'clCreateCommandQueue', 'clCreateSampler', 'clEnqueueTask',
]);

/**
 * The functions `CL/cl.h` (OpenCL 3.0) declares for OpenCL 2.0 to 3.0: 25 names, in header order (the same
 * extraction, keeping the `_2_x` and `_3_0` suffixes). Programs built against a current header call some of them
 * whenever the platform reports 2.0 or later (PoCL and NVIDIA report 3.0): the Khronos C++ bindings, whose default
 * target is 3.0, make every command queue with clCreateCommandQueueWithProperties.
 */
export const OPENCL_LATER_FUNCTIONS: readonly string[] = Object.freeze([
  'clSetDefaultDeviceCommandQueue', 'clGetDeviceAndHostTimer', 'clGetHostTimer', 'clSetContextDestructorCallback',
  'clCreateCommandQueueWithProperties', 'clCreatePipe', 'clCreateBufferWithProperties', 'clCreateImageWithProperties',
  'clGetPipeInfo', 'clSVMAlloc', 'clSVMFree', 'clCreateSamplerWithProperties', 'clCreateProgramWithIL',
  'clSetProgramReleaseCallback', 'clSetProgramSpecializationConstant', 'clCloneKernel', 'clSetKernelArgSVMPointer',
  'clSetKernelExecInfo', 'clGetKernelSubGroupInfo', 'clEnqueueSVMFree', 'clEnqueueSVMMemcpy', 'clEnqueueSVMMemFill',
  'clEnqueueSVMMap', 'clEnqueueSVMUnmap', 'clEnqueueSVMMigrateMem',
]);
