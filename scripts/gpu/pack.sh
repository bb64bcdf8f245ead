#!/usr/bin/env bash
# Prepares .gpu/ (ignored through .git/info/exclude) for scripts/gpu/run.sh on a GPU host that has Python + PyTorch but
# no Node: this machine's node binary (xz), the webgpu package's JS + dawn.node, the bench bundled into one ESM file,
# the X11/wayland libraries Dawn's Vulkan path loads (unpacked there into a private folder), and the tiny-llama
# fixture files the parity phase reads. The Vulkan loader and GL dispatch debs go to .gl/ (the device README's recipe).
# Usage (repo root): scripts/gpu/pack.sh        then carry ".gpu" and ".gl" and run scripts/gpu/run.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=.gpu
mkdir -p "$out" .gl
grep -qx '/.gpu/' .git/info/exclude || echo /.gpu/ >>.git/info/exclude
grep -qx '/.gl/' .git/info/exclude || echo /.gl/ >>.git/info/exclude

# 1. node
node_bin=$(node -e 'process.stdout.write(process.execPath)')
[ -s "$out/node.xz" ] && [ "$out/node.xz" -nt "$node_bin" ] || xz -T2 -6 -c "$node_bin" >"$out/node.xz"

# 2. webgpu (Dawn for Node): its index.js + package.json + the linux-x64 dawn.node (xz)
wg=$(ls -d node_modules/.pnpm/webgpu@0.6.2*/node_modules/webgpu | head -1)
mkdir -p "$out/node_modules/webgpu/dist/linux-x64"
cp "$wg/index.js" "$wg/package.json" "$out/node_modules/webgpu/"
[ -s "$out/dawn.node.xz" ] || xz -T2 -6 -c "$wg/dist/linux-x64/dawn.node" >"$out/dawn.node.xz"

# 3. the bench, bundled (webgpu external; tfjs needs require/__dirname in ESM)
esb=$(ls -d node_modules/.pnpm/esbuild@0.27*/node_modules/esbuild/bin/esbuild | head -1)
"$esb" packages/model/bench/gpu/entry.ts --bundle --platform=node --format=esm --target=node20 \
  --external:webgpu --outfile="$out/webgpu-gpu.mjs" --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);"

cp packages/model/bench/gpu/dawn-overhead.mjs "$out/"

# 4. X11/wayland libraries (GPU.md), downloaded once
if ! ls "$out"/x11debs/libx11-6_*.deb >/dev/null 2>&1; then
  mkdir -p "$out/x11debs" /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null
  (cd "$out/x11debs" && apt-get $o download libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 libx11-xcb1 libxext6 libwayland-client0 libffi8)
fi
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

# 5. fixtures (no tokenizer: the parity phase works on token ids)
shared=${POLYGLOT_SHARED:-$root/../shared}
fx="$shared/fixtures/tiny-llama"
dst="$out/fixtures/tiny-llama"
rm -rf "$dst" && mkdir -p "$dst/base"
cp "$fx"/base/{config.json,model.safetensors.index.json,model-0000*-of-00003.safetensors} "$dst/base/"
cp -r "$fx/adapter" "$fx/sft-init-adapter" "$dst/"
cp "$fx"/{reference.json,sft-reference.json,sft-step0-grads.safetensors} "$dst/"
# The cpu side of the parity phase, computed here (deterministic JavaScript): the GPU host runs the webgpu side only.
cp "$wg/dist/linux-x64/dawn.node" "$out/node_modules/webgpu/dist/linux-x64/"
node "$out/webgpu-gpu.mjs" parity "$dst" /dev/null cpu
rm -f "$out/node_modules/webgpu/dist/linux-x64/dawn.node"
du -sh "$out" .gl
