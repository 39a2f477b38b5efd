#!/usr/bin/env bash
# The sanitizer smoke CI runs (.ci/run): build the instrumented modules, run
# every harness for a fixed number of inputs from a fixed seed (compiled-only
# and differential), then the parser/writer/frame/environ tests under ASan.
# A finding fails the script; libFuzzer saves the reproducing input under
# $FUZZ_ARTIFACTS (printed below; default fuzz/build/smoke-findings/).
#
#   bash fuzz/smoke.sh            # from the repository root, in the venv
#   python fuzz/fuzz_parser.py fuzz/build/smoke-findings/parser-crash-...   # replay one
set -euo pipefail
cd "$(dirname "$0")/.."

ARTIFACTS="${FUZZ_ARTIFACTS:-$PWD/fuzz/build/smoke-findings}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$ARTIFACTS"
echo "fuzz smoke: reproducing inputs of any finding go to $ARTIFACTS/"

python fuzz/build.py

# target, compiled-only inputs, differential inputs (fixed: the same work on every run)
TARGETS=(
  "parser 60000 4000"
  "writer 20000 4000"
  "websocket 20000 1000"
  "handshake 10000 3000"
  "environ 20000 3000"
)
for spec in "${TARGETS[@]}"; do
  read -r target runs diff_runs <<<"$spec"
  for mode in fast diff; do
    if [ "$mode" = diff ]; then n=$diff_runs; flag=--diff; else n=$runs; flag=; fi
    mkdir -p "$WORK/$target-$mode"
    start=$SECONDS
    # The corpus grows in $WORK only; the repository's seeds are read, not written.
    if ! python "fuzz/fuzz_$target.py" $flag -runs="$n" -seed=1 -print_final_stats=1 \
        -artifact_prefix="$ARTIFACTS/$target-" "$WORK/$target-$mode" "fuzz/corpus/$target" \
        >"$WORK/$target-$mode.log" 2>&1; then
      tail -n 60 "$WORK/$target-$mode.log"
      echo "FUZZ FINDING in $target ($mode): reproducing input saved in $ARTIFACTS/:"
      ls -l "$ARTIFACTS"
      exit 1
    fi
    echo "  $target ($mode): $n inputs in $((SECONDS - start))s, no finding"
  done
done

echo "parser, writer, WebSocket frame, environ and metrics tally tests under ASan + UBSan"
python fuzz/asan_pytest.py -q tests/test_parser_*.py tests/test_writer*.py tests/test_websocket_frames.py tests/test_environ.py tests/test_tally.py
