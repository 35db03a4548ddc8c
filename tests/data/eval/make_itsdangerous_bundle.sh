#!/usr/bin/env bash
# Rebuilds itsdangerous.bundle: the history of pallets/itsdangerous (BSD-3-Clause, LICENSE.itsdangerous.txt)
# restricted to its Python sources and tests, one commit per upstream commit that touched them (authors, dates and
# messages kept), for `latent eval replay` (docs/evaluation.md). Usage: make_itsdangerous_bundle.sh UPSTREAM_GIT_DIR OUT.bundle
set -euo pipefail
src="$1" out="$2"
paths=(src/itsdangerous tests/test_itsdangerous)
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
git init -q -b main "$work/repo"
mapfile -t commits < <(git -C "$src" rev-list --no-merges --reverse HEAD -- "${paths[@]}")
for c in "${commits[@]}"; do
  find "$work/repo" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
  mapfile -t present < <(git -C "$src" ls-tree --name-only "$c" -- "${paths[@]}")
  [ "${#present[@]}" -eq 0 ] || git -C "$src" archive "$c" -- "${present[@]}" | tar -x -C "$work/repo"
  find "$work/repo" -path "$work/repo/.git" -prune -o -type f ! -name '*.py' -exec rm -f {} +
  for lic in LICENSE.txt LICENSE.rst LICENSE; do
    if git -C "$src" cat-file -e "$c:$lic" 2>/dev/null; then git -C "$src" show "$c:$lic" >"$work/repo/$lic"; break; fi
  done
  git -C "$work/repo" add -A
  GIT_AUTHOR_NAME="$(git -C "$src" log -1 --format=%an "$c")" GIT_AUTHOR_EMAIL="$(git -C "$src" log -1 --format=%ae "$c")" \
  GIT_AUTHOR_DATE="$(git -C "$src" log -1 --format=%aD "$c")" GIT_COMMITTER_NAME="$(git -C "$src" log -1 --format=%cn "$c")" \
  GIT_COMMITTER_EMAIL="$(git -C "$src" log -1 --format=%ce "$c")" GIT_COMMITTER_DATE="$(git -C "$src" log -1 --format=%cD "$c")" \
    git -C "$work/repo" -c commit.gpgsign=false commit -q --allow-empty -m "$(git -C "$src" log -1 --format=%B "$c")

upstream: $c"
done
git -C "$work/repo" gc -q --aggressive
git -C "$work/repo" bundle create "$out" HEAD main
