#!/usr/bin/env bash
# One notebook end to end, as a user runs it:
#   1. packs VisualRft and VisualRft.Interactive from this working tree into a local folder feed, with a version of its
#      own (re-packing one version is not picked up: NuGet keeps the copy it extracted first; platform-notes.md §3);
#   2. executes the notebook in the real client — Debian's `jupyter nbconvert --execute` on the stock .NET Interactive
#      kernel — with its `#r "nuget: VisualRft.Interactive"` pointed at that feed and version, into an empty NuGet
#      packages folder, so the run also measures what a notebook user's first #r downloads and leaves on disk;
#      checks that the kernel's HTTP API listens on loopback only;
#   3. executes the small smoke notebook (tests/e2e/smoke.ipynb, or VRFT_E2E_DECOY_NOTEBOOK) with a decoy libtorch on
#      LD_LIBRARY_PATH (the package must still load its own);
#   4. exports the executed notebook with `jupyter nbconvert --to html`, and runs the notebook with `vrft run`;
#   5. opens both pages in headless Chromium with the network off (scripts/browser-check.py): EXPECTATIONs (CSS
#      selectors with counts) must hold, no script errors; full-page screenshots go to TestResults/screenshots/.
# Usage: scripts/notebook-e2e.sh [NOTEBOOK.ipynb] [EXPECTATION...]   (default: the smoke notebook and its expectations)
# Needs scripts/install-notebook-client.sh (scripts/test.sh runs it first). In the nbconvert export, the stock kernel's
# bootstrap output asks for its own script and HTTP API, and the template for MathJax: those requests may fail.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/notebook-env.sh
notebook=$(realpath "${1:-tests/e2e/smoke.ipynb}")
shift || true
expectations=("$@")
[ ${#expectations[@]} -gt 0 ] || expectations=('svg rect.vrft-box' '.vrft-plotly .main-svg .scatterlayer .trace')
name=$(basename "$notebook" .ipynb)
results="$VRFT_ROOT/TestResults/e2e/$name"
screenshots="$VRFT_ROOT/TestResults/screenshots"
rm -rf "$results"
mkdir -p "$results" "$screenshots"
step() { echo "== $1 ($SECONDS s)"; }

step "pack"
version="0.1.0-ci.$(date -u +%Y%m%d%H%M%S)"
for project in src/VisualRft src/VisualRft.Interactive; do
  dotnet pack "$project" -c Release -p:PackageVersion="$version" -o "$results/feed" --nologo -v quiet
done

# The notebooks as a user's copy would read: the feed, then the package at this version.
prepare() {   # prepare SOURCE TARGET
/usr/bin/python3 - "$1" "$2" "$results/feed" "$version" <<'EOF'
import json, re, sys
source, target, feed, version = sys.argv[1:]
nb = json.load(open(source))
reference = re.compile(r'^\s*#r\s+"nuget:\s*VisualRft\.Interactive\s*(,[^"]*)?"\s*$', re.M)
found = 0
for cell in nb["cells"]:
    text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    if cell["cell_type"] == "code" and reference.search(text):
        found += 1
        cell["source"] = reference.sub(f'#i "nuget: {feed}"\n#r "nuget: VisualRft.Interactive, {version}"', text)
if not found:
    sys.exit(f"{source}: no #r \"nuget: VisualRft.Interactive\" line to point at the local feed")
nb["metadata"]["kernelspec"] = {"display_name": ".NET (C#)", "language": "C#", "name": ".net-csharp"}
json.dump(nb, open(target, "w"), indent=1)
EOF
}
prepare "$notebook" "$results/$name.ipynb"
decoy_notebook=$(realpath "${VRFT_E2E_DECOY_NOTEBOOK:-tests/e2e/smoke.ipynb}")
prepare "$decoy_notebook" "$results/decoy.ipynb"

# The kernel gets a home and a NuGet packages folder of its own: nothing of the user's is read or written. The home lies
# outside the repository: #r restores through a project made under it, which must not pick up our Directory.*.props.
user_home=$HOME
kernel_home=$(mktemp -d -t vrft-kernel-home.XXXXXX)
trap 'rm -rf "$kernel_home"' EXIT
export HOME="$kernel_home" NUGET_PACKAGES="$results/nuget-packages"
execute() {   # execute NOTEBOOK OUTPUT-NAME [env assignments...]
  local input=$1 output=$2; shift 2
  env "$@" /usr/bin/jupyter nbconvert --to notebook --execute "$input" --output "$output" \
    --ExecutePreprocessor.kernel_name=.net-csharp --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.startup_timeout=300 \
    2> >(grep -v -e 'Debugger warning' -e 'frozen modules' -e 'make the debugger miss' -e 'Debugging will proceed' >&2)
}
libtorch_used() {   # the libtorch folder that TorchRuntime.Describe() printed in the executed notebook
  grep -o 'libtorch [0-9.+a-z]* ([^)]*) from [^,]*' "$results/$1.ipynb" | head -1 | sed 's/.* from //'
}

step "nbconvert --execute on the stock kernel (empty NuGet folder)"
execute "$results/$name.ipynb" "$name.executed" &
jupyter_pid=$!
# The kernel's HTTP API: sample its listening sockets while it runs; every one must be on loopback.
while kill -0 "$jupyter_pid" 2>/dev/null; do
  ss -Hltnp 2>/dev/null | grep 'dotnet-interact' >> "$results/kernel-sockets.txt" || true
  sleep 0.5
done
wait "$jupyter_pid"
executed_at=$SECONDS
sort -u "$results/kernel-sockets.txt" -o "$results/kernel-sockets.txt"
[ -s "$results/kernel-sockets.txt" ] || { echo "FAIL: saw no listening socket of the kernel" >&2; exit 1; }
if awk '{print $4}' "$results/kernel-sockets.txt" | grep -v -E '^(127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):'; then
  echo "FAIL: the kernel listens beyond loopback (kernel.json lacks --http-local-only?)" >&2; exit 1
fi
echo "kernel sockets, loopback only: $(awk '{print $4}' "$results/kernel-sockets.txt" | tr '\n' ' ')"
expected_libtorch="$NUGET_PACKAGES/libtorch-cpu-linux-x64/2.10.0/runtimes/linux-x64/native"
[ "$(libtorch_used "$name.executed")" = "$expected_libtorch" ] \
  || { echo "FAIL: libtorch came from '$(libtorch_used "$name.executed")', expected $expected_libtorch" >&2; exit 1; }

step "what the first #r left (also in footprint.txt)"
{
  echo "downloaded (.nupkg files): $(find "$NUGET_PACKAGES" -name '*.nupkg' -printf '%s\n' | awk '{s+=$1} END {printf "%.0f MB", s/1e6}')"
  echo "on disk: $(du -sm "$NUGET_PACKAGES" | cut -f1) MB"
  for package in "$NUGET_PACKAGES"/*/; do
    printf '  %6s MB  %s\n' "$(du -sm "$package" | cut -f1)" "$(basename "$package")/$(ls "$package" | head -1)"
  done | sort -rn
  consolidated=$(find "$NUGET_PACKAGES/torchsharp" -path '*/lib/*/cpu' -type d 2>/dev/null | head -1)
  echo "TorchSharp's consolidated native copy (lib/*/cpu): ${consolidated:+present, $(du -sm "$consolidated" | cut -f1) MB}${consolidated:-absent}"
} | tee "$results/footprint.txt"

step "$(basename "$decoy_notebook") with a decoy libtorch on LD_LIBRARY_PATH"
decoys="$results/decoy-libs"
mkdir -p "$decoys"
gomp=$(ls "$expected_libtorch"/libgomp*.so* | head -1)
for library in libtorch_cpu.so libc10.so libtorch.so; do cp "$gomp" "$decoys/$library"; done
execute "$results/decoy.ipynb" "decoy.executed" LD_LIBRARY_PATH="$decoys"
[ "$(libtorch_used "decoy.executed")" = "$expected_libtorch" ] || { echo "FAIL: with the decoy, libtorch came from '$(libtorch_used "decoy.executed")'" >&2; exit 1; }
decoy_at=$SECONDS
# The kernel's packages folder (its own libtorch, about 2 GB) was measured above; nothing later reads it.
rm -rf "$NUGET_PACKAGES"

step "nbconvert --to html, and vrft run"
/usr/bin/jupyter nbconvert --to html "$results/$name.executed.ipynb" --output "$name.nbconvert" --log-level=WARN
export HOME=$user_home
unset NUGET_PACKAGES
dotnet build src/VisualRft.Cli -c Release --nologo -v quiet
dotnet src/VisualRft.Cli/bin/Release/net10.0/vrft.dll run "$notebook" --out "$results/vrft-run"
cp "$results/vrft-run/$name.html" "$results/$name.vrft-run.html"
run_at=$SECONDS

step "headless Chromium, network off"
export VRFT_BROWSER_PROFILE="$results/chromium-profile" VRFT_BROWSER_LOG="$results/chromium.log"
isolate=()
# A network namespace of its own takes the browser off every network; where unshare is not allowed, Chromium's flags do.
if unshare -n true 2>/dev/null; then isolate=(unshare -n); fi
"${isolate[@]}" /usr/bin/python3 scripts/browser-check.py --screenshots "$screenshots" \
  "$results/$name.vrft-run.html" "${expectations[@]}" 'pre.error=0' \
  --allow-failed-requests '^file:///usr/share/javascript/mathjax/|resources/dotnet-interactive\.js$|^http://127\.0\.0\.1:[0-9]+/discovery$' \
  "$results/$name.nbconvert.html" "${expectations[@]}"

echo "e2e $name: passed in $SECONDS s (pack + first run ${executed_at} s, decoy run $((decoy_at - executed_at)) s, export + vrft run $((run_at - decoy_at)) s, browser $((SECONDS - run_at)) s)"
