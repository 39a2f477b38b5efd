#!/usr/bin/env bash
# Line coverage of the compiled modules' .pyx code by a fuzz corpus.
#
#   bash fuzz/coverage.sh parser                 # seeds + fuzz/build/corpus/parser
#   bash fuzz/coverage.sh parser writer environ  # several targets, one report each
#   bash fuzz/coverage.sh all                    # every target, then all together
#
# Builds the modules for llvm source-based coverage (python fuzz/build.py
# --coverage: fuzz/build/cov/, no sanitizers; cythonized with #line
# directives, which fuzz/pyx_coverage.py maps back to .pyx lines), replays
# each target's corpus once (--replay) and prints the .pyx line coverage
# and llvm-cov's report for the generated C files (Cython's boilerplate
# included). Profiles and an HTML report per target go to
# fuzz/build/coverage/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
ALL=(parser writer websocket handshake environ)
targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=(parser)
[ "${targets[0]}" = all ] && targets=("${ALL[@]}" all)

python fuzz/build.py --coverage >/dev/null
SOS=(fuzz/build/cov/fastbase/*/*.so)
OBJECTS=("${SOS[0]}")
for so in "${SOS[@]:1}"; do OBJECTS+=(-object "$so"); done

for target in "${targets[@]}"; do
  out="fuzz/build/coverage/$target"
  if [ "$target" = all ]; then
    rm -rf "$out"; mkdir -p "$out"
    llvm-profdata merge -o "$out/merged.profdata" fuzz/build/coverage/*/raw/*.profraw
  else
    rm -rf "$out"; mkdir -p "$out/raw"
    corpora=("fuzz/corpus/$target")
    [ -d "fuzz/build/corpus/$target" ] && corpora+=("fuzz/build/corpus/$target")
    LLVM_PROFILE_FILE="$PWD/$out/raw/%m-%p.profraw" FASTBASE_FUZZ_BUILD=cov \
      python "fuzz/fuzz_$target.py" --replay "${corpora[@]}"
    llvm-profdata merge -o "$out/merged.profdata" "$out"/raw/*.profraw
  fi
  echo "== $target: line coverage of the .pyx code (and of the generated C)"
  python fuzz/pyx_coverage.py "$out/merged.profdata" "${SOS[@]}" | tee "$out/pyx.txt"
  llvm-cov report -instr-profile "$out/merged.profdata" "${OBJECTS[@]}" | grep -E "^Filename|fastbase/_" | tee "$out/c.txt"
  llvm-cov show -format=html -output-dir="$out/html" -instr-profile "$out/merged.profdata" "${OBJECTS[@]}" >/dev/null
done
