#!/usr/bin/env bash
# `make test-py38`, first part: JetPack 5's install exactly as docs/jetson.md gives it.
#
#   bash scripts/jetpack5_steps.sh ROOT PY38      # the environment ends up in ROOT/home/p2p
#
# JetPack 5 is Ubuntu 20.04: `python3` is Python 3.8 and a new venv has pip 20.0.2. Here
# `python3` is PY38 (a wrapper in ROOT/bin) and HOME is ROOT/home, so the doc's ~/p2p is
# ROOT/home/p2p. Between the doc's first line (the venv) and the rest, the venv is made what
# Ubuntu 20.04 + JetPack 5 give: pip 20.0.2, and numpy 1.17.3 / OpenCV 4.5.5 standing in for
# JetPack's (its system packages, seen through --system-site-packages). The doc's lines come
# from scripts/doc_commands.py, so the doc and this check cannot drift apart.
# Afterwards: nothing was installed over JetPack's numpy, and `pix2pix export trt` gets past
# onnx to the TensorRT that this machine lacks (exit 5 naming TensorRT, not onnx).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(realpath -m "$1")
py38=$(command -v "$2")
standins="numpy==1.17.3 opencv-python==4.5.5.64"
marker="make test-py38 runs this block"
mapfile -t steps < <(python3 scripts/doc_commands.py docs/jetson.md "$marker")
rm -rf "$root"
mkdir -p "$root/bin" "$root/home"
printf '#!/bin/sh\nexec "%s" "$@"\n' "$py38" > "$root/bin/python3"
chmod +x "$root/bin/python3"
{
    echo "set -ex"
    echo "${steps[0]}"
    # what Ubuntu 20.04's venv and JetPack 5 give: pip 20.0.2, numpy 1.17, OpenCV 4.5
    echo "python3 -m pip install -q pip==20.0.2 $standins"
    printf '%s\n' "${steps[@]:1}"
} > "$root/steps.sh"
echo "jetpack5_steps: docs/jetson.md's JetPack 5 block, as on Ubuntu 20.04: $root/steps.sh" >&2
PIP_CACHE_DIR=${PIP_CACHE_DIR:-$HOME/.cache/pip} HOME="$root/home" PATH="$root/bin:$PATH" \
    bash "$root/steps.sh"

bin="$root/home/p2p/bin"
"$bin/python" -c "import sys, numpy; assert sys.version_info[:2] == (3, 8), sys.version; \
assert numpy.__version__ == '1.17.3', 'numpy %s replaced JetPack 5\'s 1.17' % numpy.__version__"
set +e
out=$("$bin/pix2pix" export trt tests/data/tiny.onnx -o "$root/tiny.engine" 2>&1)
rc=$?
set -e
if [ "$rc" -ne 5 ] || ! grep -q "TensorRT is not installed" <<< "$out"; then
    echo "FAIL: after the JetPack 5 steps, pix2pix export trt should stop at the missing" \
         "TensorRT (exit 5); got exit $rc: $out" >&2
    exit 1
fi
echo "jetpack5_steps: OK (numpy 1.17.3 kept; export trt reaches TensorRT: $out)" >&2
