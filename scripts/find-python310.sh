#!/usr/bin/env bash
# Print a command that runs Python 3.10 (Lava supports nothing newer).
# Order: $PYTHON310 override, a plain python3.10, pyenv's 3.10.x.
set -u
ok() { "$@" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; }
if [ -n "${PYTHON310:-}" ]; then
    if ok $PYTHON310; then echo "$PYTHON310"; exit 0; fi
    echo "PYTHON310=$PYTHON310 is not a working Python 3.10" >&2; exit 1
fi
if command -v python3.10 >/dev/null 2>&1 && ok python3.10; then echo python3.10; exit 0; fi
if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | sort -rV); do
        p="$(pyenv root)/versions/$v/bin/python3.10"
        if ok "$p"; then echo "$p"; exit 0; fi
    done
fi
echo "no Python 3.10 found: set PYTHON310=/path/to/python3.10 (Lava 0.10 needs 3.10)" >&2
exit 1
