#!/usr/bin/env bash
# The turn-taking models, reproducibly: Silero VAD (MIT, snakers4/silero-vad) and Smart Turn v3
# (BSD-2-Clause, pipecat-ai/smart-turn), two small ONNX files shipped inside the pipecat-ai
# wheel on PyPI. The wheel is downloaded once (no dependencies: nothing of Pipecat is
# installed) into a cache, the two files are taken out of it into models/turn/ and checked
# against pinned SHA-256 sums. voice/vad.py and voice/smart_turn.py run them with onnxruntime.
# models/ is gitignored: the models are never committed.
# Safe to run again: quiet when the models are already there and intact.
set -euo pipefail
cd "$(dirname "$0")/.."

PIPECAT_VERSION=0.0.108
DEST=${OFFERCALL_TURN_MODELS_DIR:-models/turn}
CACHE=${OFFERCALL_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/offercall/wheels}
PYTHON=${PYTHON:-.venv/bin/python}
WHEEL="$CACHE/pipecat_ai-$PIPECAT_VERSION-py3-none-any.whl"

# name in models/turn | path inside the wheel | SHA-256
MODELS=(
  "silero_vad.onnx|pipecat/audio/vad/data/silero_vad.onnx|597d30b3ec076608d059477bb14cfeffdf951bf5cae370d38f65d33bbfe82004"
  "smart-turn-v3.2-cpu.onnx|pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx|2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
)

intact() {  # intact FILE SHA256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

missing=0
for model in "${MODELS[@]}"; do
  IFS='|' read -r name _ sha <<<"$model"
  intact "$DEST/$name" "$sha" || missing=1
done
[ "$missing" -eq 0 ] && exit 0

echo "==> turn-taking models (Silero VAD, Smart Turn v3) from pipecat-ai $PIPECAT_VERSION into $DEST"
mkdir -p "$CACHE" "$DEST"
if [ ! -f "$WHEEL" ]; then
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: "pipecat-ai==$PIPECAT_VERSION" -d "$CACHE"
fi
for model in "${MODELS[@]}"; do
  IFS='|' read -r name inner sha <<<"$model"
  intact "$DEST/$name" "$sha" && continue
  "$PYTHON" - "$WHEEL" "$inner" "$DEST/$name.part" <<'EOF'
import shutil, sys, zipfile
wheel, inner, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(inner) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  if ! intact "$DEST/$name.part" "$sha"; then
    rm -f "$DEST/$name.part"
    echo "error: $name from pipecat-ai $PIPECAT_VERSION does not have the pinned SHA-256 $sha" >&2
    exit 1
  fi
  mv "$DEST/$name.part" "$DEST/$name"
done
cat >"$DEST/NOTICE.txt" <<EOF
Taken from the pipecat-ai $PIPECAT_VERSION wheel (PyPI) by scripts/fetch_turn_models.sh.
silero_vad.onnx           Silero VAD v5, MIT licence (c) Silero Team, github.com/snakers4/silero-vad
smart-turn-v3.2-cpu.onnx  Smart Turn v3.2, BSD-2-Clause (c) Daily, github.com/pipecat-ai/smart-turn
Not committed: models/ is gitignored.
EOF
