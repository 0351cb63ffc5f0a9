# The CUDA emulator build (-DEVOC_CUDA_EMULATE=ON): the CUDA backend, the device tasks and the simulation's device
# loop are built as on a GPU machine, but every .cu file is rewritten by cu2cc.py and compiled as C++ against a
# fake CUDA runtime and cuBLAS (tests/cuda_emu/*.cc) that run kernels on the CPU. The GPU tests then run here,
# without a GPU: they check the host logic (plans, graph capture rules, pointer kinds, cuBLAS arguments) and the
# kernels' indexing and block/warp synchronisation. Not a substitute for scripts/gpu_check.sh on a real GPU:
# timing, memory ordering and CUDA's own math functions are not modelled. See tests/cuda_emu/README.md.
if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  message(FATAL_ERROR "EVOC_CUDA_EMULATE: the emulator's fiber switch is x86-64 only (this is ${CMAKE_SYSTEM_PROCESSOR})")
endif()
enable_language(CXX)
find_package(CUDAToolkit REQUIRED) # headers only: nothing links libcudart
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_FLAGS_RELEASE "-O2 -DNDEBUG")
set(EVOC_EMU_DIR ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda_emu)
# -mfma only where this CPU runs it (the emulated kernels run here).
set(EVOC_EMU_FMA OFF)
if(EXISTS /proc/cpuinfo)
  file(STRINGS /proc/cpuinfo cpu_flags REGEX "^flags.* fma( |$)" LIMIT_COUNT 1)
  if(cpu_flags)
    set(EVOC_EMU_FMA ON)
  endif()
endif()
message(STATUS "evoc: emulated kernels contract a*b+c into FMAs: ${EVOC_EMU_FMA}")
add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:-g;-Wall;-Wno-unused-function;-Wno-unused-parameter>")
if(EVOC_SANITIZE)
  add_compile_options(
    "$<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined;-fno-omit-frame-pointer;-fno-sanitize-recover=undefined>")
endif()

add_library(evoc_cuda_emu STATIC ${EVOC_EMU_DIR}/emu_exec.cc ${EVOC_EMU_DIR}/emu_runtime.cc
            ${EVOC_EMU_DIR}/emu_cublas.cc)
target_include_directories(evoc_cuda_emu PUBLIC ${CUDAToolkit_INCLUDE_DIRS} ${EVOC_EMU_DIR})
set_target_properties(evoc_cuda_emu PROPERTIES POSITION_INDEPENDENT_CODE ON)

# evoc_emulate_cu(OUT a.cu b.cu ...): OUT = the rewritten C++ files to compile instead.
function(evoc_emulate_cu out_var)
  set(out)
  foreach(cu ${ARGN})
    file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR} ${cu})
    set(cc ${CMAKE_BINARY_DIR}/cuda_emu/${rel}.cc)
    get_filename_component(dir ${cu} DIRECTORY)
    add_custom_command(OUTPUT ${cc}
                       COMMAND ${Python3_EXECUTABLE} ${EVOC_EMU_DIR}/cu2cc.py ${cu} ${cc}
                       DEPENDS ${cu} ${EVOC_EMU_DIR}/cu2cc.py VERBATIM)
    # The original's folder for its relative includes. FMA contraction as nvcc does it: a*b+c fused (where this
    # CPU has FMA) unless the file is in EVOC_CU_NO_FMAD (--fmad=false), so a test that wants the host's bits
    # from a kernel built with contraction fails here as it would on a GPU.
    set(contract -ffp-contract=off)
    if(EVOC_EMU_FMA AND NOT cu IN_LIST EVOC_CU_NO_FMAD)
      set(contract -mfma -ffp-contract=fast)
    endif()
    set_source_files_properties(${cc} PROPERTIES INCLUDE_DIRECTORIES ${dir}
                                COMPILE_OPTIONS "-include;${EVOC_EMU_DIR}/cuda_emu.h;${contract};-Wno-unknown-pragmas")
    list(APPEND out ${cc})
  endforeach()
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()

# The emulator's own test (tests/CMakeLists.txt adds it to ctest).
function(evoc_emulator_test crit_lib)
  evoc_emulate_cu(cc ${EVOC_EMU_DIR}/test_cuda_emu.cu)
  add_executable(test_cuda_emu ${cc})
  target_link_libraries(test_cuda_emu PRIVATE evoc_cuda_emu ${crit_lib})
  add_test(NAME test_cuda_emu COMMAND test_cuda_emu --jobs=1)
endfunction()
