#!/usr/bin/env bash
# Fails if a library includes what ../shared/ARCHITECTURE.md says it must never depend on.
#   kernels: nothing of ours above it; engine: no Boost, lsp, server, tree-sitter; lsp: no server, Boost.
set -u
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
fail=0
check() {  # check DIR REGEX WHAT
  local hits
  hits=$(grep -rnE --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' "$2" "$root/$1" || true)
  if [ -n "$hits" ]; then
    echo "layering: $1 must not include $3, found:"; echo "$hits"; fail=1
  fi
}
check kernels '#include\s*[<"](engine|lsp|server)/' "engine, lsp or server"
check engine '#include\s*[<"](boost/|lsp/|server/|tree_sitter/)' "Boost, lsp, server or tree-sitter"
check lsp '#include\s*[<"](boost/|server/)' "Boost or server"
if [ $fail = 0 ]; then echo "layering: 1 passed, 0 failed"; fi
exit $fail
