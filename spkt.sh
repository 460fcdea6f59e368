#!/usr/bin/env bash
# Bootstrap and run: creates .venv (Python 3.11) on first use, installs the project when
# pyproject.toml changed, then runs the `spkt` CLI. `./spkt.sh test [pytest args]` runs the tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${SPKT_VENV:-$here/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

if [ ! -x "$venv/bin/python" ]; then
  echo "spkt: creating the virtual environment in $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.spkt-installed"
want="$(cat "$here/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "spkt: installing the project and its dependencies (first run takes a minute)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e "$here[dev]"
  echo "$want" > "$stamp"
fi

# The consoles' map library (Leaflet, from npm; no CDN at run time), when its lock file changed.
console="$here/services/api/console"
console_stamp="$console/node_modules/.spkt-installed"
if [ ! -f "$console_stamp" ] || [ "$console/package-lock.json" -nt "$console_stamp" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "spkt: installing the consoles' map library (npm ci)" >&2
    if npm ci --prefix "$console" --no-audit --no-fund --silent >&2; then
      touch "$console_stamp"
    else
      echo "spkt: warning: npm ci failed; the consoles work but show no map until it succeeds" >&2
    fi
  else
    echo "spkt: warning: npm not found; the consoles' map needs it (apt-get install npm), the rest runs" >&2
  fi
fi

if [ "${1:-}" = "test" ]; then
  shift
  cd "$here"
  # Fetch the broker jars before the clock of any test starts (cached after the first run).
  "$venv/bin/spkt" kafka fetch
  exec "$venv/bin/python" -m pytest "$@"
fi
exec "$venv/bin/spkt" "$@"
