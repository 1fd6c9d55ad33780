#!/usr/bin/env bash
# Fails if a file under ceremony-specs/vectors/ is never named by a test, so
# that a vector cannot sit in the tree unchecked. (Lighthouse's ef_tests has
# the same guard in check_all_files_accessed.py.)
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
while IFS= read -r -d '' file; do
  rel=${file#ceremony-specs/vectors/}
  if ! grep -rqF -- "\"$rel\"" tests src benches 2>/dev/null; then
    echo "vector never read by a test: $file" >&2
    status=1
  fi
done < <(find ceremony-specs/vectors -type f -print0)
if [ "$status" -eq 0 ]; then
  echo "every vector file is read by a test"
fi
exit "$status"
