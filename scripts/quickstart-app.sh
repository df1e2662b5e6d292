#!/usr/bin/env bash
# examples/quickstart.cs, the C# file-based app, as a user runs it (`dotnet run examples/quickstart.cs`), against the
# VisualRft package that `dotnet pack VisualRft.Interactive.sln -c Release` left in src/VisualRft/bin/Release
# (scripts/test.sh packs first): a rollout drawn to an HTML page, then two training steps. Output in TestResults/quickstart-app/.
set -euo pipefail
cd "$(dirname "$0")/.."
feed="$PWD/src/VisualRft/bin/Release"
version=$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' Directory.Build.props)
[ -f "$feed/VisualRft.$version.nupkg" ] \
  || { echo "quickstart-app: no $feed/VisualRft.$version.nupkg; run dotnet pack VisualRft.Interactive.sln -c Release first" >&2; exit 1; }
results="$PWD/TestResults/quickstart-app"
rm -rf "$results"
mkdir -p "$results"
# NuGet extracts a package version once and never again (platform-notes.md §3), so a packages folder of its own makes
# the app use this build's package rather than one packed earlier under the same version; the feed is an extra source.
export NUGET_PACKAGES="$results/nuget-packages" RestoreAdditionalProjectSources="$feed"
SECONDS=0
dotnet run --no-cache examples/quickstart.cs -- "$results" | tee "$results/output.txt"
grep -q '^step 2: reward' "$results/output.txt" || { echo "quickstart-app: FAIL: no second training step in the output" >&2; exit 1; }
grep -q 'class="vrft-box vrft-truth"' "$results/rollout.html" || { echo "quickstart-app: FAIL: rollout.html draws no boxes" >&2; exit 1; }
[ -d "$NUGET_PACKAGES/visualrft/$version" ] || { echo "quickstart-app: FAIL: VisualRft $version was not restored from $feed" >&2; exit 1; }
# The folder holds a second copy of libtorch (about 2 GB); once checked it goes, so CI's disk holds one copy less.
rm -rf "$NUGET_PACKAGES"
echo "quickstart-app: passed in $SECONDS s (restore, build and run)"
