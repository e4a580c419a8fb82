#!/usr/bin/env bash
# Install resnest_mm and the OpenMMLab stack into the active Python environment.
#
# Idempotent: each step checks first and does nothing when it is already done,
# so a second run takes seconds. The pinned stack (docs/en/get_started.md):
#   torch 2.14.1 + torchvision 0.29.1, mmcv 2.1.0 (built here with its compiled
#   ops), mmengine 0.10.7, mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain 1.2.0.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH=2.14.1
TORCHVISION=0.29.1
MMCV=2.1.0
PY=${PYTHON:-python}
PIP="$PY -m pip --disable-pip-version-check"
log() { printf '[install] %s\n' "$*"; }

# True when every "name==version" given is installed at exactly that version.
have() {
  "$PY" - "$@" <<'PYEOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for spec in sys.argv[1:]:
    name, wanted = spec.split('==')
    try:
        found = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if found.split('+')[0] != wanted:
        sys.exit(1)
PYEOF
}

# mmcv works when its compiled ops load against the installed torch and run.
mmcv_works() {
  "$PY" - <<'PYEOF' >/dev/null 2>&1
import torch
from mmcv.ops import nms, roi_align
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
keep = nms(boxes, torch.tensor([0.9, 0.8]), 0.5)[1]
assert keep.tolist() == [0]
out = roi_align(torch.ones(1, 1, 8, 8), torch.tensor([[0., 0., 0., 4., 4.]]),
                (2, 2), 1.0, 0, 'avg', True)
assert out.shape == (1, 1, 2, 2)
PYEOF
}

# Build tools: torch's extension builder wants setuptools >= 77, and mmengine
# 0.10.7 / mmcv 2.1.0 still import pkg_resources (removed in setuptools 81).
"$PY" -c "import pkg_resources, setuptools, ninja, wheel, sys; \
v = tuple(map(int, setuptools.__version__.split('.')[:2])); \
sys.exit(not (77, 0) <= v < (81, 0))" 2>/dev/null \
  || { log 'build tools'; $PIP install -q 'setuptools>=77,<81' wheel ninja; }

if ! have "torch==$TORCH" "torchvision==$TORCHVISION"; then
  log "torch $TORCH + torchvision $TORCHVISION"
  $PIP install -q "torch==$TORCH" "torchvision==$TORCHVISION"
fi

# mmcv is built with --no-deps (pip must not touch torch), so its runtime
# dependencies come first: mmengine (which brings opencv-python) and the rest
# of mmcv's requirements/runtime.txt. The build check below imports them.
if ! have mmengine==0.10.7 \
    || ! "$PY" -c 'import addict, cv2, packaging, PIL, yaml, yapf' 2>/dev/null; then
  log "mmengine 0.10.7 and mmcv's runtime dependencies"
  $PIP install -q mmengine==0.10.7 addict numpy packaging Pillow pyyaml yapf \
    opencv-python
fi

if ! have "mmcv==$MMCV" || ! mmcv_works; then
  log "building mmcv $MMCV with compiled ops (several minutes)"
  build=$(mktemp -d)
  $PIP download -q --no-deps --no-binary :all: --no-build-isolation \
    -d "$build" "mmcv==$MMCV"
  tar -xzf "$build/mmcv-$MMCV.tar.gz" -C "$build"
  # torch >= 2.10's headers need C++20; mmcv 2.1.0 hard-codes -std=c++17.
  sed -i "s/-std=c++17/-std=c++20/" "$build/mmcv-$MMCV/setup.py"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} $PIP install -q \
    --no-build-isolation --no-cache-dir --force-reinstall --no-deps \
    "$build/mmcv-$MMCV"
  rm -rf "$build"
  mmcv_works || { echo 'mmcv.ops still fails after the build' >&2; exit 1; }
fi

if ! have mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 resnest==0.0.5 \
    mmpretrain==1.2.0 timm==1.0.31 onnx==1.23.2 onnxruntime==1.32.0 \
    scikit-image==0.25.2 seaborn==0.13.2 pytest-xdist==3.8.0 \
    || ! "$PY" -c 'import ftfy, regex, pytest, mmcv.cnn' 2>/dev/null; then
  log 'mmengine, mmdet, mmsegmentation, mmpretrain and test dependencies'
  # mmseg 1.2.2 imports ftfy and regex without declaring them; mmpretrain
  # 1.2.0 runs the classification configs (they inherit its mmpretrain::
  # ResNeSt ImageNet configs) and the toy classifier, and its own ResNeSt is
  # what the registration and converter tests compare against (1.2.0 is the
  # version tested; setup.py's 'cls' extra allows 1.2.x); scikit-image
  # ships the sample photographs the pictures and tests use (no downloads);
  # mmdet's and mmseg's analyze_logs.py import seaborn without declaring it;
  # onnxruntime 1.32.0 runs the shipped fp32 and int8 models
  # (tools/deployment/export_model.py --precision) and the int8 backbone:
  # on the whole Faster R-CNN S-50 its int8 file ran 3.0x mmdet's fp32 model
  # against OpenVINO's 2.7x on the same file and torch.compile's 1.3x (fp32)
  # (an AVX2 EPYC, docs/en/deployment.md); those two stay out of the install;
  # pytest-xdist runs the suite on two workers (pytest.ini).
  $PIP install -q mmengine==0.10.7 "mmcv==$MMCV" mmdet==3.3.0 \
    mmsegmentation==1.2.2 ftfy regex pytest resnest==0.0.5 mmpretrain==1.2.0 \
    timm==1.0.31 onnx==1.23.2 onnxruntime==1.32.0 scikit-image==0.25.2 \
    seaborn==0.13.2 pytest-xdist==3.8.0
fi

# openmim (`mim search resnest_mm`, `mim train resnest_mm CONFIG`;
# tests/test_mim_package.py) without its declared dependencies: opendatalab
# pulls openxlab, which downgrades setuptools to 60.2 (mmcv's build needs
# >= 77) and pins requests; mim never imports it. What mim does import comes
# on the second line (all but tabulate are already there with mmengine, mmdet
# and seaborn).
if ! have openmim==0.3.9 tabulate==0.10.0 \
    || ! "$PY" -c 'import click, modelindex, pandas, requests, rich' 2>/dev/null; then
  log 'openmim 0.3.9 (without opendatalab)'
  $PIP install -q --no-deps openmim==0.3.9
  $PIP install -q tabulate==0.10.0 click model-index pandas requests rich
fi

# Editable install of this checkout (looked up from outside it, so the
# current directory cannot stand in for an install).
installed_at=$(cd / && "$PY" -c 'import os, resnest_mm; print(os.path.dirname(os.path.dirname(os.path.abspath(resnest_mm.__file__))))' 2>/dev/null || true)
if [ "$installed_at" != "$PWD" ]; then
  log 'resnest_mm (editable)'
  $PIP install -q --no-build-isolation --no-deps -e .
fi
log "ready: $("$PY" -c 'from importlib.metadata import version as v; print(", ".join(f"{p} {v(p)}" for p in ("torch", "mmcv", "mmengine", "mmdet", "mmsegmentation", "resnest_mm")))')"
