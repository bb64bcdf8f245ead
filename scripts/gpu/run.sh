#!/usr/bin/env bash
# The WebGPU bench on a GPU host (issue #14), after scripts/gpu/pack.sh: carry .gpu and .gl, run from the repo root.
# Unpacks the Vulkan loader / GL dispatch libraries, the X11 libraries Dawn loads and the node binary, checks the
# WebGPU adapter (exits at once without a hardware one), then runs, each phase under its own time box:
#   parity (cpu vs webgpu vs the fixtures) → ~1.1B config: ours (webgpu) then PyTorch (fp32, TF32 off)
#   → the Llama-2-7B shape, ours then PyTorch, only while enough of the time budget is left.
# Results: $OUT/*.json and $OUT/log.txt. Env: OUT (default ./gpu-out), GPU_BUDGET_S (default 480), CONFIGS
# (default "1b 7b"), PLAIN_AB=1 (also the op-by-op kernels, decode b1, for an A/B figure), NODE (a node binary to use instead of the carried one), PY (default python3); for a rehearsal
# on a CPU machine: ALLOW_SOFTWARE=1 (lavapipe), TORCH_DEVICE=cpu, CONFIGS=tiny.
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
T0=$(date +%s)
BUDGET=${GPU_BUDGET_S:-480}
CONFIGS=${CONFIGS-"1b 7b"}
PY=${PY:-python3}
left() { echo $((BUDGET - ($(date +%s) - T0))); }
phase() { echo "=== [$(($(date +%s) - T0)) s] $*"; }

phase setup
if [ -z "${NODE:-}" ]; then
  if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  mkdir -p /tmp/x11
  for f in .gpu/x11debs/*.deb; do dpkg -x "$f" /tmp/x11; done
  export LD_LIBRARY_PATH=/tmp/x11/usr/lib/x86_64-linux-gnu:/tmp/x11/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do [ -f "$f" ] && export VK_DRIVER_FILES=$f; done
  for f in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; do
    [ -f "$f" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$f
  done
  xz -dc .gpu/node.xz >/tmp/node && chmod +x /tmp/node
  NODE=/tmp/node
fi
mkdir -p .gpu/node_modules/webgpu/dist/linux-x64
[ -s .gpu/node_modules/webgpu/dist/linux-x64/dawn.node ] ||
  xz -dc .gpu/dawn.node.xz >.gpu/node_modules/webgpu/dist/linux-x64/dawn.node
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null
"$NODE" --version
B=.gpu/webgpu-gpu.mjs

phase adapter
"$NODE" $B adapter | tee "$OUT/adapter.json"
if ! grep -q '"software":false' "$OUT/adapter.json" && ! { [ "${ALLOW_SOFTWARE:-}" = 1 ] && grep -q '"software":true' "$OUT/adapter.json"; }; then
  echo "no hardware WebGPU adapter: stopping (see the README's 'Running on a GPU server')"
  exit 3
fi

phase "dawn overhead"
timeout 30 "$NODE" .gpu/dawn-overhead.mjs | tee "$OUT/dawn-overhead.json"

phase parity
timeout 90 "$NODE" $B parity .gpu/fixtures/tiny-llama "$OUT/parity.json" webgpu || echo "parity failed or timed out ($?)"

for cfg in $CONFIGS; do
  # A config needs its own time: ~1.1B ≈ 150 s for both sides, 7B ≈ 300 s.
  need=120
  [ "$cfg" = 7b ] && need=${NEED_7B:-200}
  if [ "$(left)" -lt "$need" ]; then
    phase "skip $cfg: $(left) s left"
    continue
  fi
  own=$(($(left) * ${OWN_PCT:-60} / 100))
  [ "$cfg" = 1b ] && [ "$own" -gt "${OWN_1B:-140}" ] && own=${OWN_1B:-140}
  reps=3
  [ "$cfg" = 7b ] && reps=2
  phase "webgpu $cfg (budget $own s)"
  if [ "$cfg" = 7b ]; then
    timeout $((own + 30)) "$NODE" --max-old-space-size=16384 $B perf "$cfg" "$OUT/webgpu-$cfg.json" webgpu "$own" "$reps" "${VARIANT_7B:-all}" ||
      echo "webgpu $cfg exited $?"
  else
    # Separate processes, so that the LoRA step is measured whatever decoding costs.
    timeout $((own * 2 / 3 + 30)) "$NODE" $B perf "$cfg" "$OUT/webgpu-$cfg.json" webgpu $((own * 2 / 3)) "$reps" fused ||
      echo "webgpu $cfg exited $?"
    phase "webgpu $cfg LoRA step"
    timeout $((own / 3 + 30)) "$NODE" $B perf "$cfg" "$OUT/webgpu-$cfg-sft.json" webgpu $((own / 3)) "$reps" sft ||
      echo "webgpu $cfg sft exited $?"
  fi
  if [ "${PLAIN_AB:-}" = 1 ] && [ "$cfg" != 7b ] && [ "$(left)" -gt 90 ]; then
    phase "webgpu $cfg, op-by-op kernels (A/B)"
    timeout 70 "$NODE" $B perf "$cfg" "$OUT/webgpu-$cfg-plain.json" webgpu 45 1 plain || echo "plain $cfg exited $?"
  fi
  tb=$(($(left) - 10))
  [ "$cfg" = 1b ] && [ "$tb" -gt 90 ] && tb=90
  [ "$tb" -lt 30 ] && { phase "skip torch $cfg"; continue; }
  phase "torch $cfg (budget $tb s)"
  PYTHONUNBUFFERED=1 timeout $((tb + 20)) "$PY" packages/model/bench/gpu/torch_gpu.py "$cfg" "$OUT/torch-$cfg.json" \
    --budget "$tb" ${TORCH_DEVICE:+--device $TORCH_DEVICE} || echo "torch $cfg exited $?"
done
phase done
