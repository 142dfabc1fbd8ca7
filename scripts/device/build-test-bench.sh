#!/usr/bin/env bash
# On the GPU machine (CUDA, CMake, ninja; no Debian -dev packages, no network): builds the engine-only tree
# against the carried Debian packages (.device-deps, made by scripts/device/stage-deps.sh), runs every test
# (GPU parity included) and the benchmarks, and leaves logs and tables under $OUT.
#
#   scripts/device/build-test-bench.sh [tests] [bench] [e2e]     (default: all three)
# NIBBLE_SHARED points at a copy of ../shared carried along (default .device-shared); NIBBLE_DECODE_BATCHES
# (default 1,8,32) are decode_bench's batch sizes.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/nibble-out}
mkdir -p "$out"
steps=${*:-tests bench e2e}
export NIBBLE_SHARED=${NIBBLE_SHARED:-$PWD/.device-shared}
# The carried shared libraries' own dependencies (absl's) are not on any RUNPATH.
export LD_LIBRARY_PATH="$PWD/.device-deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
jobs=$(nproc)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release -DNIBBLE_ENGINE_ONLY=ON -DNIBBLE_CUDA=ON \
  -DNIBBLE_CUDA_ARCHITECTURES=90a -DCMAKE_PREFIX_PATH="$PWD/.device-deps/usr" >"$out/configure.log" 2>&1 \
  || { tail -30 "$out/configure.log"; exit 1; }
cmake --build build-device -j "$jobs" >"$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -40; exit 1; }
echo "build ok"

status=0
if [[ " $steps " == *" tests "* ]]; then
  ctest --test-dir build-device -j 8 --output-on-failure --timeout 600 >"$out/tests.log" 2>&1 || status=1
  grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/tests.log" | head -40
fi
if [[ " $steps " == *" bench "* ]]; then
  build-device/bench/w4a16_bench | tee "$out/w4a16_bench.md" || status=1
fi
if [[ " $steps " == *" e2e "* ]]; then
  build-device/bench/decode_bench --preset llama2-7b --group 128 --prompt 512 --decode 128 \
    --batches "${NIBBLE_DECODE_BATCHES:-1,8,32}" \
    | tee "$out/decode_bench.md" || status=1
fi
if [[ " $steps " == *" profile "* ]]; then
  # Nsight Compute on the batch-1 W4A16 kernel of two shapes (graph nodes profiled one by one).
  for shape in qkv o; do
    ncu --graph-profiling node --kernel-name regex:w4a16_mma --launch-skip 2 --launch-count 1 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats \
      --section SchedulerStats --section LaunchStats --metrics \
      smsp__average_warp_latency_issue_stalled_long_scoreboard,smsp__average_warp_latency_issue_stalled_barrier,smsp__average_warp_latency_issue_stalled_membar,smsp__average_warp_latency_issue_stalled_short_scoreboard,smsp__average_warp_latency_issue_stalled_wait,smsp__average_warp_latency_issue_stalled_math_pipe_throttle,smsp__average_warp_latency_issue_stalled_lg_throttle,smsp__average_warp_latency_issue_stalled_mio_throttle,smsp__average_warp_latency_issue_stalled_no_instruction,smsp__average_warp_latency_issue_stalled_not_selected,smsp__average_warp_latency_issue_stalled_selected,smsp__average_warp_latency_issue_stalled_dispatch_stall,smsp__average_warp_latency_issue_stalled_drain,smsp__average_warp_latency_issue_stalled_sleeping,dram__bytes_read.sum,lts__t_sectors_srcunit_tex_op_read.sum,smsp__inst_executed.sum \
      build-device/bench/w4a16_bench --only "$shape" --ms 1 --reps 4 >"$out/ncu-$shape.txt" 2>&1
    grep -E "Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Eligible|Issued Warp|No Eligible|Active Warps|stalled|dram__bytes|lts__t_sectors|inst_executed|Mem Busy" "$out/ncu-$shape.txt" | head -40
  done
fi
exit $status
