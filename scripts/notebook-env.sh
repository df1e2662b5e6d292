# Sourced by the notebook scripts: where the real client lives (.tools/, git-ignored) and a private Jupyter/kernel home,
# so that neither the user's Jupyter configuration nor their kernelspecs are read or written.
VRFT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export VRFT_TOOLS="$VRFT_ROOT/.tools"
export VRFT_DOTNET_INTERACTIVE_VERSION=1.0.712001
export VRFT_DOTNET_INTERACTIVE="$VRFT_TOOLS/dotnet-interactive/dotnet-interactive"
export JUPYTER_DATA_DIR="$VRFT_TOOLS/jupyter"
export JUPYTER_CONFIG_DIR="$VRFT_TOOLS/jupyter/config"
export JUPYTER_RUNTIME_DIR="$VRFT_TOOLS/jupyter/runtime"
export JUPYTER_PATH="$JUPYTER_DATA_DIR"
export JUPYTER_PLATFORM_DIRS=1
export IPYTHONDIR="$VRFT_TOOLS/jupyter/ipython"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_INTERACTIVE_CLI_TELEMETRY_OPTOUT=1
export PYDEVD_DISABLE_FILE_VALIDATION=1
