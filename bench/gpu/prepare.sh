#!/usr/bin/env bash
# Makes bench/gpu/carry/ (ignored by git), what a GPU machine without a .NET SDK needs for bench/gpu/run.sh:
#   vrft-gpu.tar.gz                  app/: a framework-dependent publish of GpuBench for linux-x64 (TorchSharp managed
#                                    only, no libtorch natives); dotnet/: this machine's .NET runtime (the muxer, host/,
#                                    shared/Microsoft.NETCore.App/10.x). gzip, because the runtime alone is 79 MB and a
#                                    GPU machine is sent at most 64 MiB; nothing is trimmed from it.
#   TorchSharp-0.107.0-native.tar.gz src/Native of dotnet/TorchSharp at its 0.107.0 release, from which run.sh builds the
#                                    shim against a PyTorch other than 2.10 (taken from a local git copy, see below).
# Usage: bash bench/gpu/prepare.sh   (TORCHSHARP_GIT=<a git directory of dotnet/TorchSharp> to take the source from there)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
carry=$here/carry
limit=$((64 << 20))

# TorchSharp 0.107.0: the snapshot we read has no tags; this commit sets version 0.107.0 (build/BranchInfo.props) and
# holds its release notes, and each of the 1,164 THS functions that the NuGet 0.107.0 shim exports is declared in its
# headers (which declare four more that are not compiled: inside #if 0, commented out, or never defined).
torchsharp_commit=c20b6a1cc574d690707638a488d2583f3b8b983f
torchsharp_git=${TORCHSHARP_GIT:-/work/.mirror/dotnet+TorchSharp/repo}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$carry"
mkdir -p "$carry"

echo "== publish GpuBench (framework-dependent, linux-x64)"
dotnet publish "$here/GpuBench" -c Release -r linux-x64 --self-contained false -p:PublishDocumentationFile=false \
    -o "$work/vrft-gpu/app" -nologo -v quiet
if compgen -G "$work/vrft-gpu/app/libtorch*" > /dev/null || compgen -G "$work/vrft-gpu/app/libc10*" > /dev/null; then
    echo "prepare.sh: libtorch natives reached the publish ($(ls "$work/vrft-gpu/app" | grep -E '^lib(torch|c10)' | head -3 | tr '\n' ' ')); GpuBench.csproj must exclude libtorch-cpu-linux-x64" >&2
    exit 1
fi

echo "== copy the .NET runtime"
dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
runtime=$(dotnet --list-runtimes | awk '$1 == "Microsoft.NETCore.App" && $2 ~ /^10\./ { v = $2 } END { print v }')
if [ -z "$runtime" ] || [ ! -d "$dotnet_root/shared/Microsoft.NETCore.App/$runtime" ]; then
    echo "prepare.sh: no Microsoft.NETCore.App 10.x under $dotnet_root/shared (dotnet --list-runtimes)" >&2
    exit 1
fi
mkdir -p "$work/vrft-gpu/dotnet/shared/Microsoft.NETCore.App"
cp -a "$dotnet_root/dotnet" "$dotnet_root/host" "$work/vrft-gpu/dotnet/"
cp -a "$dotnet_root/shared/Microsoft.NETCore.App/$runtime" "$work/vrft-gpu/dotnet/shared/Microsoft.NETCore.App/"
for f in LICENSE.txt ThirdPartyNotices.txt; do [ -f "$dotnet_root/$f" ] && cp "$dotnet_root/$f" "$work/vrft-gpu/dotnet/"; done
echo "Microsoft.NETCore.App $runtime from $dotnet_root; app and runtime: $(du -sm "$work/vrft-gpu" | cut -f1) MB unpacked"
tar -C "$work" -czf "$carry/vrft-gpu.tar.gz" vrft-gpu

echo "== TorchSharp 0.107.0 src/Native"
if git -C "$torchsharp_git" cat-file -e "$torchsharp_commit^{commit}" 2> /dev/null; then
    git -C "$torchsharp_git" archive --format=tar.gz --prefix=TorchSharp-0.107.0/ "$torchsharp_commit" src/Native > "$carry/TorchSharp-0.107.0-native.tar.gz"
    echo "from $torchsharp_git at $torchsharp_commit"
else
    echo "not found here ($torchsharp_git has no commit $torchsharp_commit): run.sh needs it only for a PyTorch other than 2.10.x;"
    echo "put GitHub's archive of the tag there: https://github.com/dotnet/TorchSharp/archive/refs/tags/v0.107.0.tar.gz saved as"
    echo "  $carry/TorchSharp-0.107.0.tar.gz   (run.sh reads src/Native from either archive)"
fi

size=$(du -cb "$carry"/* | tail -1 | cut -f1)
ls -l "$carry"
echo "carry: $size bytes = $(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1048576 }') MiB (limit 64 MiB)"
if [ "$size" -ge "$limit" ]; then
    echo "prepare.sh: $carry is over 64 MiB" >&2
    exit 1
fi
