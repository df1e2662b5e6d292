#!/usr/bin/env bash
# Executes every notebook in notebooks/ and notebooks/tables/ with `vrft run` (in-process, the package hosted by the runner) into
# TestResults/notebooks/: the executed .ipynb and the HTML report of each. A notebook whose metadata says
# "vrft": {"heavy": true} runs only with VRFT_HEAVY=1. Stops at the first notebook that fails.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
notebooks=(notebooks/*.ipynb notebooks/*.dib notebooks/tables/*.ipynb)
if [ ${#notebooks[@]} -eq 0 ]; then echo "run-notebooks: no notebooks in notebooks/"; exit 0; fi
dotnet build src/VisualRft.Cli -c Release --nologo -v quiet
for notebook in "${notebooks[@]}"; do
  if [ "${VRFT_HEAVY:-0}" != "1" ] && [ "${notebook##*.}" = ipynb ] \
     && /usr/bin/python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["metadata"].get("vrft", {}).get("heavy") else 1)' "$notebook"; then
    echo "run-notebooks: $notebook is heavy (VRFT_HEAVY=1 runs it)"
    continue
  fi
  dotnet src/VisualRft.Cli/bin/Release/net10.0/vrft.dll run "$notebook" --out TestResults/notebooks
done
