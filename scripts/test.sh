#!/usr/bin/env bash
# The test command of the README. Installs what the tests need (idempotently), builds, packs the release (the README's
# "What is published") and runs examples/quickstart.cs against it (scripts/quickstart-app.sh), runs the default suite,
# then the notebooks: every notebook in notebooks/ with `vrft run`, and one notebook end to end in the real client (the
# stock Jupyter kernel, a browser with the network off; scripts/notebook-e2e.sh).
# Heavy checks are opt-in: VRFT_HEAVY=1 adds them (tests in Category=Heavy, notebooks marked "vrft": {"heavy": true}).
# VRFT_E2E_NOTEBOOK picks the notebook that runs in the real client.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
filter="Category!=Heavy"
[ "${VRFT_HEAVY:-0}" = "1" ] && filter=""
bash scripts/install-notebook-client.sh
dotnet build VisualRft.Interactive.sln -c Release
# The release command, exactly as a maintainer runs it: it fails where a package would be broken (NU5104 and the like).
dotnet pack VisualRft.Interactive.sln -c Release
bash scripts/quickstart-app.sh
dotnet test VisualRft.Interactive.sln -c Release --no-build ${filter:+--filter "$filter"} --logger "console;verbosity=normal"
bash scripts/run-notebooks.sh
# '.vrft-plotly svg.vrft-figure=0': the embedded plotly.js bundle drew every chart (none kept its static SVG).
bash scripts/notebook-e2e.sh "${VRFT_E2E_NOTEBOOK:-notebooks/00-quickstart.ipynb}" \
  'svg rect.vrft-truth>=10' 'svg rect.vrft-prediction>=10' '.vrft-plotly .main-svg .scatterlayer .trace>=8' \
  '.vrft-plotly .main-svg .barlayer .trace>=1' '.vrft-plotly svg.vrft-figure=0' 'span.tok>=100' '.vrft-comparison'
