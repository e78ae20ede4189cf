#!/usr/bin/env bash
# make test-gpu: run scripts/gpu_check.py with the Python that has a CUDA build of torch.
# The project's .venv holds the CPU build; a GPU machine usually has CUDA torch in its own
# Python. Candidates, in order: $GPU_PYTHON, python3 / python on PATH, .venv/bin/python.
# The first whose torch sees CUDA wins; else the first that runs at all (the check then says
# what is missing). Installs nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
candidates=()
[ -n "${GPU_PYTHON:-}" ] && candidates+=("$GPU_PYTHON")
for c in python3 python .venv/bin/python; do
    command -v "$c" >/dev/null 2>&1 && candidates+=("$(command -v "$c")")
done
chosen=""
for py in "${candidates[@]}"; do
    if "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
        chosen="$py"; break
    fi
done
if [ -z "$chosen" ]; then
    for py in "${candidates[@]}"; do "$py" -c "" 2>/dev/null && { chosen="$py"; break; }; done
fi
if [ -z "$chosen" ]; then
    echo "FAIL: no Python found (set GPU_PYTHON=/path/to/python)" >&2
    exit 1
fi
echo "gpu_check: using $chosen" >&2
exec "$chosen" scripts/gpu_check.py "$@"
