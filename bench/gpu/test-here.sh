#!/usr/bin/env bash
# What of bench/gpu can be checked on a build machine without a GPU or PyTorch:
#   1. bash -n of the scripts; prepare.sh's carry/ exists (made now when missing) and is under 64 MiB;
#   2. the carried app on the carried runtime (no SDK on PATH) runs check and every step configuration at --cpu --tiny,
#      with VRFT_LIBTORCH naming the NuGet cache's libtorch-cpu, as run.sh names a PyTorch's torch/lib, maps only the
#      shim VRFT_TORCHSHARP_NATIVE names, and refuses without a GPU (unless --cpu) and without VRFT_LIBTORCH;
#   3. run.sh with a fake python3 on PATH whose "torch" is that libtorch-cpu folder: as 2.10.0 it keeps the package's
#      shim and runs check and the steps (on the CPU, at tiny shapes); as 2.11.0+cu130 it builds the shim, which cannot
#      compile here (no torch headers), says so and skips the .NET runs. transformers is not there: hf_step.py fails.
#      Without VRFT_DEVICE=cpu the .NET runs refuse (no CUDA device); with a 10 s budget the parts are skipped.
# Exit 0 when every expectation held; each failed one is printed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
libtorch=${VRFT_TEST_LIBTORCH:-$HOME/.nuget/packages/libtorch-cpu-linux-x64/2.10.0/runtimes/linux-x64/native}
real_python=$(command -v python3)
bad=0
expect() {   # expect WHAT FILE PATTERN
    if grep -qE -- "$3" "$2"; then echo "ok: $1"; else echo "FAILED: $1 (no /$3/ in $2)"; bad=1; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for s in run.sh prepare.sh test-here.sh; do
    if bash -n "$here/$s"; then echo "ok: bash -n $s"; else echo "FAILED: bash -n $s"; bad=1; fi
done
[ -f "$here/carry/vrft-gpu.tar.gz" ] || bash "$here/prepare.sh" || { echo "FAILED: prepare.sh"; exit 1; }
size=$(du -cb "$here"/carry/* | tail -1 | cut -f1)
if [ "$size" -lt $((64 << 20)) ]; then echo "ok: carry/ is $size bytes"; else echo "FAILED: carry/ is $size bytes, over 64 MiB"; bad=1; fi

# 2. the carried app, directly
tar -xzf "$here/carry/vrft-gpu.tar.gz" -C "$tmp"
direct() { env -i HOME="$HOME" PATH=/usr/bin:/bin DOTNET_ROOT="$tmp/vrft-gpu/dotnet" VRFT_LIBTORCH="$libtorch" VRFT_THREADS=1 \
    ${DOTNET_SYSTEM_GLOBALIZATION_INVARIANT:+DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=$DOTNET_SYSTEM_GLOBALIZATION_INVARIANT} \
    ${VRFT_TORCHSHARP_NATIVE:+VRFT_TORCHSHARP_NATIVE=$VRFT_TORCHSHARP_NATIVE} \
    "$tmp/vrft-gpu/dotnet/dotnet" "$tmp/vrft-gpu/app/GpuBench.dll" "$@"; }
direct check --cpu > "$tmp/check.log" 2>&1
expect "carried app: check --cpu" "$tmp/check.log" "agree within 1E-004: yes"
for config in $(direct list); do
    direct step "$config" --cpu --tiny > "$tmp/step-$config.log" 2>&1
    expect "carried app: step $config --cpu --tiny" "$tmp/step-$config.log" '^RESULT \{"stack":"visualrft","config":"'"$config"'"'
done
# run.sh sets this where the machine has no libicu (PyTorch container images)
DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 direct step full --cpu --tiny > "$tmp/invariant.log" 2>&1
expect "carried app: step full --cpu --tiny without ICU (globalization-invariant mode)" "$tmp/invariant.log" '^RESULT \{"stack":"visualrft","config":"full"'
DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 direct check --cpu > "$tmp/invariant-check.log" 2>&1
expect "carried app: check --cpu without ICU" "$tmp/invariant-check.log" "agree within 1E-004: yes"
# a shim outside the app folder, as run.sh names the one it built: the process maps it and not the app's copy
mkdir -p "$tmp/built" && cp "$tmp/vrft-gpu/app/libLibTorchSharp.so" "$tmp/built/"
VRFT_TORCHSHARP_NATIVE=$tmp/built/libLibTorchSharp.so direct check --cpu > "$tmp/named-shim.log" 2>&1
expect "carried app: check --cpu with VRFT_TORCHSHARP_NATIVE" "$tmp/named-shim.log" "agree within 1E-004: yes"
expect "... the named shim is mapped" "$tmp/named-shim.log" "^mapped: $tmp/built/libLibTorchSharp.so$"
if grep -q "^mapped: .*/app/libLibTorchSharp.so$" "$tmp/named-shim.log"; then echo "FAILED: ... the app's shim is mapped beside it"; bad=1
else echo "ok: ... the app's shim is not mapped"; fi
direct step full > "$tmp/no-gpu.log" 2>&1
echo "exit $?" >> "$tmp/no-gpu.log"
expect "carried app: without --cpu and without a GPU it refuses with exit 2" "$tmp/no-gpu.log" "no CUDA device is usable.*|exit 2"
expect "... exit 2" "$tmp/no-gpu.log" "^exit 2$"

env -i HOME="$HOME" PATH=/usr/bin:/bin DOTNET_ROOT="$tmp/vrft-gpu/dotnet" "$tmp/vrft-gpu/dotnet/dotnet" "$tmp/vrft-gpu/app/GpuBench.dll" check --cpu > "$tmp/no-libtorch.log" 2>&1
echo "exit $?" >> "$tmp/no-libtorch.log"
expect "carried app: without VRFT_LIBTORCH it refuses with exit 2" "$tmp/no-libtorch.log" "^VRFT_LIBTORCH is not set"
expect "... exit 2" "$tmp/no-libtorch.log" "^exit 2$"

# 3. run.sh with a fake python3
fake() {   # fake VERSION: a site folder whose torch/lib is the NuGet libtorch-cpu, and a python3 that reports it
    local site=$tmp/site-$1
    mkdir -p "$site/torch/lib" "$site/torch/share/cmake" "$tmp/bin-$1"
    ln -sf "$libtorch"/* "$site/torch/lib/"
    echo "__version__ = '$1'" > "$site/torch/version.py"
    cat > "$tmp/bin-$1/python3" <<PY
#!/usr/bin/env bash
case "\${1:-}" in
    -c) printf '%s\n' "$1" "$site/torch/lib" "$site/torch/share/cmake" 1 "False 0 None" ;;
    *summary.py) exec "$real_python" "\$@" ;;
    *) echo "fake python3: no torch or transformers here (\$*)" >&2; exit 1 ;;
esac
PY
    chmod +x "$tmp/bin-$1/python3"
}
fake 2.10.0
PATH=$tmp/bin-2.10.0:$PATH VRFT_DEVICE=cpu VRFT_GPU_BENCH_FLAGS="--cpu --tiny" VRFT_THREADS=1 VRFT_GPU_WORK=$tmp/work-2.10 \
    bash "$here/run.sh" > "$tmp/run-2.10.log" 2>&1
echo "exit $?" >> "$tmp/run-2.10.log"
expect "run.sh, PyTorch 2.10.0: keeps the package's shim" "$tmp/run-2.10.log" "shim: the package's"
expect "run.sh, PyTorch 2.10.0: check passes" "$tmp/run-2.10.log" "check: the shim loaded"
expect "run.sh, PyTorch 2.10.0: step full" "$tmp/run-2.10.log" "step full: done"
expect "run.sh, PyTorch 2.10.0: step checkpointing" "$tmp/run-2.10.log" "step checkpointing: done"
expect "run.sh, PyTorch 2.10.0: step lora" "$tmp/run-2.10.log" "step lora: done"
expect "run.sh, PyTorch 2.10.0: the summary table" "$tmp/run-2.10.log" "^\| full \| visualrft \|"
expect "run.sh, PyTorch 2.10.0: transformers fails without transformers" "$tmp/run-2.10.log" "transformers: failed with exit 1"
expect "run.sh, PyTorch 2.10.0: exit 1" "$tmp/run-2.10.log" "^exit 1$"

PATH=$tmp/bin-2.10.0:$PATH VRFT_GPU_WORK=$tmp/work-nogpu bash "$here/run.sh" > "$tmp/run-nogpu.log" 2>&1
expect "run.sh without a GPU: check and steps refuse (exit 2, no CUDA device)" "$tmp/run-nogpu.log" "step full: failed with exit 2: .*no CUDA device is usable"

PATH=$tmp/bin-2.10.0:$PATH VRFT_GPU_BUDGET_S=10 VRFT_GPU_WORK=$tmp/work-budget bash "$here/run.sh" > "$tmp/run-budget.log" 2>&1
expect "run.sh, a 10 s budget: the runs are skipped, not started" "$tmp/run-budget.log" "check: failed with exit 124: skipped: -?[0-9]+ s of the 10 s budget left"

fake 2.11.0+cu130
PATH=$tmp/bin-2.11.0+cu130:$PATH VRFT_GPU_WORK=$tmp/work-2.11 bash "$here/run.sh" > "$tmp/run-2.11.log" 2>&1
echo "exit $?" >> "$tmp/run-2.11.log"
expect "run.sh, PyTorch 2.11.0: configures TorchSharp's CMakeLists with Torch_DIR" "$tmp/run-2.11.log" "shim \(torchsharp\): cmake -S .*Torch_DIR=.*/torch/share/cmake/Torch"
expect "run.sh, PyTorch 2.11.0: TorchSharp's CMakeLists does not configure without a torch (find_package)" "$tmp/run-2.11.log" "shim \(torchsharp\): did not configure"
expect "run.sh, PyTorch 2.11.0: falls back to shim/CMakeLists.txt" "$tmp/run-2.11.log" "shim \(headers-c\+\+17\): cmake -S $here/shim"
expect "run.sh, PyTorch 2.11.0: says the shim did not compile, naming the missing header" "$tmp/run-2.11.log" "shim \(headers-c\+\+17\): did NOT compile.*torch/torch.h"
expect "run.sh, PyTorch 2.11.0: skips the .NET runs" "$tmp/run-2.11.log" "skipping the .NET runs: no shim for PyTorch 2.11.0\+cu130"
expect "run.sh, PyTorch 2.11.0: exit 1" "$tmp/run-2.11.log" "^exit 1$"
if [ "$bad" -ne 0 ] || [ -n "${VRFT_TEST_KEEP_LOGS:-}" ]; then
    mkdir -p "$here/carry/test-logs" && cp "$tmp"/*.log "$here/carry/test-logs/"
    echo "logs kept in $here/carry/test-logs"
fi
exit "$bad"
