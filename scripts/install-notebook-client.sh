#!/usr/bin/env bash
# Installs the real notebook client for the end-to-end checks, idempotently (a few seconds when everything is there):
#   - Debian's Jupyter (nbconvert, nbclient, jupyter_client, ipykernel), Chromium, python3, iproute2 (ss) and require.js
#     (nbconvert's HTML loads it from /usr/share/javascript, as Jupyter's classic front end has it: plotly must draw with
#     an AMD loader on the page too) — apt, with sudo only when not root;
#   - the stock kernel: the Microsoft.dotnet-interactive 1.0.712001 dotnet tool in .tools/dotnet-interactive;
#   - its .net-csharp kernelspec in .tools/jupyter/kernels, started by absolute path and with HTTP bound to loopback
#     (--http-local-only; the stock kernelspec listens on every interface).
# Nothing global is touched beyond the apt packages: scripts/notebook-env.sh points Jupyter and the kernel at .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/notebook-env.sh

packages=(jupyter-nbconvert python3-nbconvert jupyter-client python3-nbclient jupyter-core python3-ipykernel chromium python3 iproute2 libjs-requirejs)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install-notebook-client: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    as_root=(sudo -n)
  fi
  echo "installing ${missing[*]}"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VRFT_DOTNET_INTERACTIVE" ]; then
  dotnet tool install --tool-path "$VRFT_TOOLS/dotnet-interactive" Microsoft.dotnet-interactive --version "$VRFT_DOTNET_INTERACTIVE_VERSION"
fi

spec="$JUPYTER_DATA_DIR/kernels/.net-csharp/kernel.json"
if ! grep -q -- "--http-local-only" "$spec" 2>/dev/null || ! grep -qF "$VRFT_DOTNET_INTERACTIVE" "$spec"; then
  mkdir -p "$JUPYTER_DATA_DIR/kernels"
  "$VRFT_DOTNET_INTERACTIVE" jupyter install --path "$JUPYTER_DATA_DIR/kernels" >/dev/null
  # The tool writes argv as `dotnet interactive jupyter …`, which needs the tool on PATH; start it by absolute path and
  # keep its HTTP API on loopback.
  /usr/bin/python3 - "$spec" "$VRFT_DOTNET_INTERACTIVE" <<'EOF'
import json, sys
path, tool = sys.argv[1], sys.argv[2]
spec = json.load(open(path))
argv = spec["argv"]
assert argv[:3] == ["dotnet", "interactive", "jupyter"], argv
spec["argv"] = [tool, "jupyter", *argv[3:], "--http-local-only"]
json.dump(spec, open(path, "w"), indent=2)
EOF
fi
specs=$(/usr/bin/jupyter kernelspec list)
grep -q '\.net-csharp' <<<"$specs" || { echo "install-notebook-client: .net-csharp kernelspec not found" >&2; exit 1; }
echo "notebook client ready: $(/usr/bin/jupyter nbconvert --version | head -1) nbconvert, dotnet-interactive $VRFT_DOTNET_INTERACTIVE_VERSION, $(chromium --version 2>/dev/null | head -1)"
