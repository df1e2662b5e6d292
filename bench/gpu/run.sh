#!/usr/bin/env bash
# The GPU check of issue 17 item 6, on a Linux machine with an NVIDIA GPU, python3 with a CUDA PyTorch and
# transformers, and no .NET SDK (README.md beside this file). bench/gpu/prepare.sh made carry/ on the build machine.
#   1. finds python3's torch/lib; for a PyTorch other than 2.10.x builds TorchSharp 0.107's shim against it (cmake,
#      ninja or make, a C++17 compiler) and has GpuBench load it (VRFT_TORCHSHARP_NATIVE);
#   2. GpuBench check: the tiny model's logits on the CPU and on CUDA in one process, within 1e-4;
#   3. GpuBench step CONFIG, one process per configuration (GpuBench list names them): the GRPO step at the reference
#      shape, MemoryPlan beside the peak;
#   4. hf_step.py: the same step with transformers (full parameters, and with gradient checkpointing); then
#      summary.py's table against the targets of issue 17.
# It goes on after a failed part and says which failed; logs go to $VRFT_GPU_WORK/logs (and $OUT/logs when set).
# Exit: 0 all parts ran, 1 a part failed (a missing GPU among them), 2 no carry/ or no python3 with torch.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
carry=$here/carry
python=${PYTHON:-python3}
work=${VRFT_GPU_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/vrft-gpu.XXXXXX")}
logs=$work/logs
mkdir -p "$logs"
start=$SECONDS
failed=0
summary=()
# The whole script must fit in 8 minutes so that a failed first try leaves time for one rerun: each part's time limit is
# cut to what is left of VRFT_GPU_BUDGET_S, and a part that would get under 20 s is skipped.
budget=${VRFT_GPU_BUDGET_S:-480}
limit() {   # limit SECONDS: the part's limit, or what is left of the budget when that is less
    local left=$((budget - (SECONDS - start)))
    echo $((left < $1 ? left : $1))
}
say() { echo "[run.sh +$((SECONDS - start))s] $*"; }
note() { summary+=("$*"); say "$*"; }
finish() {
    echo
    echo "== summary"
    printf '%s\n' "${summary[@]}"
    [ -f "$logs/results.jsonl" ] && "$python" "$here/summary.py" "$logs/results.jsonl"
    if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then cp -r "$logs" "$OUT/"; fi
    say "logs in $logs"
    exit "$1"
}

# -- 0. what this machine has
if [ ! -f "$carry/vrft-gpu.tar.gz" ]; then
    note "no $carry/vrft-gpu.tar.gz: run bench/gpu/prepare.sh on the build machine and copy bench/gpu/ with its carry/ folder"
    finish 2
fi
if ! info=$("$python" -c 'import os, torch, torch.utils
print(torch.__version__)
print(os.path.join(os.path.dirname(torch.__file__), "lib"))
print(torch.utils.cmake_prefix_path)
print(int(torch.compiled_with_cxx11_abi()))
print(torch.cuda.is_available(), torch.cuda.device_count(), torch.version.cuda)' 2> "$logs/python.err"); then
    note "$python cannot import torch: $(tail -1 "$logs/python.err")"
    finish 2
fi
{ read -r torch_version; read -r torch_lib; read -r cmake_prefix; read -r cxx11_abi; read -r cuda_line; } <<< "$info"
note "PyTorch $torch_version from $torch_lib (CUDA available, devices, CUDA version: $cuda_line)"
command -v nvidia-smi > /dev/null && note "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"

tar -xzf "$carry/vrft-gpu.tar.gz" -C "$work"
export DOTNET_ROOT=$work/vrft-gpu/dotnet
# The .NET runtime needs ICU for culture data unless told to do without; container images of PyTorch often lack it, and
# the bench formats and parses with the invariant culture only (test-here.sh runs it in this mode too).
if ! ldconfig -p 2> /dev/null | grep -q 'libicuuc\.so'; then
    export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
    note "no libicu on this machine: .NET runs in globalization-invariant mode"
fi
app=$work/vrft-gpu/app
bench=("$DOTNET_ROOT/dotnet" "$app/GpuBench.dll")   # an array, not a function: timeout runs it
# VRFT_GPU_BENCH_FLAGS: options for GpuBench check and step (test-here.sh passes --cpu --tiny to run this script here)
read -r -a bench_flags <<< "${VRFT_GPU_BENCH_FLAGS:-}"
export VRFT_LIBTORCH=$torch_lib
export VRFT_DEVICE=${VRFT_DEVICE:-cuda}
# The wheel loads some of its libraries later by bare name (libtorch_cuda_linalg.so: platform-notes.md §20).
export LD_LIBRARY_PATH=$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# -- 1. the shim
attempt() {   # attempt NAME BUILD_DIR LIBRARY CMAKE_ARGS...: configure and build; the library's path on success
    local name=$1 dir=$2 library=$3 t0=$SECONDS
    shift 3
    say "shim ($name): cmake $*"
    if ! cmake -B "$dir" -G "$generator" -DCMAKE_BUILD_TYPE=Release "$@" > "$logs/shim-$name-configure.log" 2>&1; then
        note "shim ($name): did not configure: $(grep -m1 -iE 'error|could not|not found' "$logs/shim-$name-configure.log" | cut -c1-200)"
        return 1
    fi
    local seconds
    seconds=$(limit 360)
    if [ "$seconds" -lt 20 ]; then note "shim ($name): skipped, $seconds s of the $budget s budget left"; return 1; fi
    if ! timeout "$seconds" cmake --build "$dir" --target LibTorchSharp -j "$(nproc 2> /dev/null || echo 8)" > "$logs/shim-$name-build.log" 2>&1; then
        note "shim ($name): did NOT compile ($((SECONDS - t0)) s): $(grep -m1 -E 'error' "$logs/shim-$name-build.log" | cut -c1-240)"
        return 1
    fi
    note "shim ($name): compiled in $((SECONDS - t0)) s against PyTorch $torch_version"
    built=$dir/$library
}
build_shim() {
    local src=$work/torchsharp native archive
    archive=$(ls "$carry"/TorchSharp-0.107.0-native.tar.gz "$carry"/TorchSharp-0.107.0.tar.gz 2> /dev/null | head -1)
    if [ -z "$archive" ]; then
        note "shim: no TorchSharp 0.107.0 source in $carry (prepare.sh puts TorchSharp-0.107.0-native.tar.gz there, or save https://github.com/dotnet/TorchSharp/archive/refs/tags/v0.107.0.tar.gz as TorchSharp-0.107.0.tar.gz)"
        return 1
    fi
    mkdir -p "$src"
    tar -xzf "$archive" -C "$src" --strip-components=1 --wildcards '*/src/Native/*'
    native=$src/src/Native
    if ! command -v cmake > /dev/null; then note "shim: no cmake on this machine (pip install cmake ninja, or the distribution's packages)"; return 1; fi
    if command -v ninja > /dev/null; then generator=Ninja; else generator="Unix Makefiles"; note "shim: no ninja, building with make"; fi
    # A newer PyTorch's headers warn where 2.10's did not (deprecations); a warning must not stop the build.
    sed -i 's/^\( *\)add_definitions(-Werror)/\1# add_definitions(-Werror): dropped by bench\/gpu\/run.sh/' "$native/CMakeLists.txt"
    built=""
    # TorchSharp's own CMakeLists (find_package(Torch) with Torch_DIR), then bench/gpu/shim/CMakeLists.txt with the
    # headers and libraries alone (no CUDA toolkit needed), in C++17 as TorchSharp builds it and in C++20 should the
    # newer headers ask for it.
    __CMakeBinDir=$work/shim-install attempt torchsharp "$work/shim-torchsharp" LibTorchSharp/libLibTorchSharp.so -S "$native" \
        -DTorch_DIR="$cmake_prefix/Torch" -DLIBTORCH_PATH="$cmake_prefix/Torch" \
        || attempt headers-c++17 "$work/shim-17" libLibTorchSharp.so -S "$here/shim" -DTORCH_ROOT="$(dirname "$torch_lib")" \
            -DTORCHSHARP_NATIVE="$native" -DTORCH_CXX11_ABI="$cxx11_abi" -DTORCHSHARP_CXX_STANDARD=17 \
        || { grep -qiE 'c\+\+ ?20|c\+\+2a|requires c\+\+' "$logs/shim-headers-c++17-build.log" 2> /dev/null \
            && attempt headers-c++20 "$work/shim-20" libLibTorchSharp.so -S "$here/shim" -DTORCH_ROOT="$(dirname "$torch_lib")" \
                -DTORCHSHARP_NATIVE="$native" -DTORCH_CXX11_ABI="$cxx11_abi" -DTORCHSHARP_CXX_STANDARD=20; } \
        || return 1
    # LibTorchBackend loads it first and names it LibTorchSharp.so (its soname), so TorchSharp's own load by name returns it
    # instead of mapping the package's copy in the app folder beside it (NativeShim).
    export VRFT_TORCHSHARP_NATIVE=$built
    command -v nm > /dev/null && note "shim: exports $(nm -D --defined-only "$built" | grep -c ' T THS') THS functions (the 0.107.0 package's: 1164)"
}
dotnet_ok=1
case $torch_version in
    2.10.*) note "shim: the package's (PyTorch $torch_version is the libtorch TorchSharp 0.107 was built for)" ;;
    *) if ! build_shim; then failed=1; dotnet_ok=0; note "skipping the .NET runs: no shim for PyTorch $torch_version"; fi ;;
esac

# -- 2-4. the runs
run() {   # run NAME SECONDS COMMAND...: output to the console and logs/NAME.log, its RESULT lines to logs/results.jsonl
    local name=$1 seconds rc
    seconds=$(limit "$2")
    shift 2
    : > "$logs/$name.log"
    if [ "$seconds" -lt 20 ]; then echo "skipped: $seconds s of the $budget s budget left" | tee "$logs/$name.log"; return 124; fi
    say "$name (at most $seconds s): $*"
    timeout "$seconds" "$@" 2>&1 | tee "$logs/$name.log"
    rc=${PIPESTATUS[0]}
    grep '^RESULT ' "$logs/$name.log" | cut -c8- >> "$logs/results.jsonl"
    [ "$rc" -eq 124 ] && note "$name: stopped after $seconds s"
    return "$rc"
}
if [ "$dotnet_ok" -eq 1 ]; then
    if run check 180 "${bench[@]}" check ${bench_flags[@]+"${bench_flags[@]}"}; then note "check: the shim loaded and the tiny model's logits agree between the CPU and $VRFT_DEVICE ($(grep -m1 'max |difference|' "$logs/check.log" | sed 's/.*max/max/'))"
    else rc=$?; failed=1; note "check: failed with exit $rc: $(grep -v '^mapped' "$logs/check.log" | tail -1 | cut -c1-240)"; fi
    for config in $("${bench[@]}" list); do
        if run "step-$config" 240 "${bench[@]}" step "$config" ${bench_flags[@]+"${bench_flags[@]}"}; then note "step $config: done"
        else rc=$?; failed=1; note "step $config: failed with exit $rc$([ "$rc" -eq 3 ] && echo ' (out of memory)'): $(tail -1 "$logs/step-$config.log" | cut -c1-240)"; fi
    done
fi
if "${bench[@]}" config > "$work/config.json" 2> "$logs/config.err"; then
    if run hf 300 "$python" "$here/hf_step.py" "$work/config.json" full checkpointing; then note "transformers: done"
    else rc=$?; failed=1; note "transformers: failed with exit $rc: $(tail -1 "$logs/hf.log" | cut -c1-240)"; fi
else
    failed=1
    note "transformers: not run, GpuBench could not print the config ($(tail -1 "$logs/config.err"))"
fi
say "done in $((SECONDS - start)) s"
finish "$failed"
