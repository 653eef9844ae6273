#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every C source and header follows the repository's .clang-format (kernel style, 100
# columns). The test VM's guest (lib/testvm/guest/) is left out: it is freestanding code
# with inline assembly laid out by hand. SKIP (77) without clang-format.
set -u
top=${1:?usage: check-format.sh SOURCE_ROOT}
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed"; exit 77; }
cd "$top" || exit 1
files=$(git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^lib/testvm/guest/')
[ -n "$files" ] || files=$(find cli lib include tests fuzz -name '*.[ch]' | grep -v 'lib/testvm/guest/')
bad=0
for f in $files; do
	[ -e "$f" ] || continue # deleted, not yet committed
	if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "FAIL: $f is not formatted (clang-format -i $f)"
		bad=$((bad + 1))
	fi
done
echo "$(echo "$files" | wc -w) files checked, $bad not formatted"
[ "$bad" -eq 0 ]
