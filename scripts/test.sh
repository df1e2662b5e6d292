#!/usr/bin/env bash
# The test command of the README. Installs what the tests need (idempotently), builds, runs the default suite.
# Heavy checks are opt-in: VRFT_HEAVY=1 adds them.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
filter="Category!=Heavy"
[ "${VRFT_HEAVY:-0}" = "1" ] && filter=""
dotnet build VisualRft.Interactive.sln -c Release
dotnet test VisualRft.Interactive.sln -c Release --no-build ${filter:+--filter "$filter"} --logger "console;verbosity=normal"
