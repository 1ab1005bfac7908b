#!/usr/bin/env bash
# Prints the shell block of README.md between `<!-- NAME: begin` and
# `<!-- NAME: end -->`, without its ``` fences, so that what the README tells
# people to run is what the demo and the tests run.
#
#   scripts/readme-block.sh NAME | bash -euo pipefail
set -euo pipefail
name=${1:?usage: readme-block.sh NAME}
root=$(cd "$(dirname "$0")/.." && pwd)
block=$(awk -v begin="<!-- $name: begin" -v end="<!-- $name: end -->" '
  index($0, begin) == 1 { inside = 1; next }
  index($0, end) == 1 { inside = 0; found = 1 }
  inside && !/^```/ { print }
  END { exit found ? 0 : 1 }' "$root/README.md") || { echo "readme-block: no block $name in README.md" >&2; exit 1; }
printf '%s\n' "$block"
