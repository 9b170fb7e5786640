#!/usr/bin/env bash
# One prepared run for a lent GPU machine (see DEVELOPERS.md): the test suite on the hardware
# adapter (both kernel variants are exercised by the tests), then the kernel benchmark with the
# adapter's default (tiled) kernels, the training step, the sparse suite (SpMM/SDDMM vs dense,
# top-k, sparse vs masked-dense steps) and the regblock kernels. Results land in $OUT. The whole
# script fits the 10-minute command limit; each part has its own timeout.
#
#   bash ../shared/tools/device-bundle.sh          # here, once
#   device run, carry [".device"]:  source .device/boot.sh && bash bench/device_run.sh
set -uo pipefail
out=${OUT:-bench/results}
mkdir -p "$out"
export SELFISH_ADAPTER=hardware NO_COLOR=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null |
  tee "$out/gpu.txt"
timeout 240 deno task test 2>&1 | tail -n 40 | tee "$out/tests-gpu.log"
timeout 90 deno task bench kernels --out "$out/kernels-gpu-tiled.csv" 2>&1 | tail -n 14
timeout 100 deno task bench train --out "$out/train-gpu.csv" 2>&1 | tail -n 14
timeout 120 deno task bench sparse --out "$out/sparse-gpu.csv" 2>&1 | tail -n 50
timeout 60 deno task bench kernels --variant regblock --out "$out/kernels-gpu-regblock.csv" 2>&1 |
  tail -n 14
