#!/usr/bin/env bash
# The CI gate recipe (docs/ci-gate.md) as one script: the workflow in
# docs/github-actions-gate.yml runs it, and tests/test_ci_recipe.py runs it against the
# committed baseline, so the recipe that is documented is the one that is tested.
#
#   BASELINE   committed baseline run folder (default results/baselines/smollm2-135m-instruct__default)
#   CANDIDATE  run folder the candidate is evaluated into (default results/candidate)
#   RUN_ARGS   how `ifharness run` evaluates the candidate, e.g. "--model checkpoints/ckpt-1200"
#              or "--backend openai --base-url http://127.0.0.1:8000/v1 --model NAME"
#   TASK       task of the baseline (default: read from the baseline's run.json)
#   MAX_DROP   largest tolerated drop (default 2pt); ALPHA significance level (default 0.05)
#   OUT        folder for gate.json and gate.md (default results)
#   IFHARNESS  the ifharness command (default .venv/bin/ifharness, else ifharness on PATH)
#
# Exit status: the gate's (0 no significant regression, 1 regression, 2 usage or data error),
# or the failing step's when the baseline is missing or the evaluation fails.
set -euo pipefail

BASELINE=${BASELINE:-results/baselines/smollm2-135m-instruct__default}
CANDIDATE=${CANDIDATE:-results/candidate}
MAX_DROP=${MAX_DROP:-2pt}
ALPHA=${ALPHA:-0.05}
OUT=${OUT:-results}
if [ -z "${IFHARNESS:-}" ]; then
  if [ -x .venv/bin/ifharness ]; then IFHARNESS=.venv/bin/ifharness; else IFHARNESS=ifharness; fi
fi

# 1. the baseline must be committed: only the candidate is generated in CI
for f in run.json verdicts.jsonl; do
  if [ ! -f "$BASELINE/$f" ]; then
    echo "ci-gate: baseline run $BASELINE has no $f; commit it (see docs/ci-gate.md)" >&2
    exit 2
  fi
done
if [ -z "${TASK:-}" ]; then
  TASK=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["task"])' \
    "$BASELINE/run.json")
fi

# 2. evaluate the candidate on the baseline's task (same data, same sampling settings)
# shellcheck disable=SC2086  # RUN_ARGS is a list of flags on purpose
"$IFHARNESS" run --task "$TASK" ${RUN_ARGS:-} --out "$CANDIDATE"

# 3. the gate: a JSON verdict and a Markdown summary for the pull request
mkdir -p "$OUT"
set +e
"$IFHARNESS" gate --baseline "$BASELINE" --candidate "$CANDIDATE" \
  --max-drop "$MAX_DROP" --alpha "$ALPHA" --json "$OUT/gate.json" --markdown "$OUT/gate.md"
code=$?
set -e
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$OUT/gate.md" ]; then
  cat "$OUT/gate.md" >>"$GITHUB_STEP_SUMMARY"
fi

# 4. the candidate's report (every answer next to its verdicts), for the artifact
"$IFHARNESS" report "$CANDIDATE" >/dev/null || true
exit "$code"
