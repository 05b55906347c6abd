#!/usr/bin/env bash
# Set up everything mtlnb needs on a fresh Debian/Ubuntu machine, idempotently:
#   1. the Debian packages libfluidsynth3 and a General MIDI soundfont (fluid-soundfont-gm), when missing;
#   2. a virtual environment .venv with mtlnb and its Python packages (torch pinned: see pyproject.toml);
#   3. the project's notebooks trusted by Jupyter, so that their saved audio players play when opened;
#   4. with --browser (make test): Debian's chromium and chromium-driver, for tests/test_browser.py.
# Re-running it is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

say() { printf '[setup] %s\n' "$*"; }

apt_install() {
  local pkgs=("$@")
  local runner=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then runner=(sudo); else
      say "cannot install ${pkgs[*]}: not root and no password-less sudo."
      say "Install them yourself (sudo apt-get install ${pkgs[*]}) or set MTLNB_SOUNDFONT / use conda (environment.yml)."
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get here: install ${pkgs[*]} with your system's package manager (or use environment.yml with conda)."
    exit 1
  fi
  say "installing Debian packages: ${pkgs[*]}"
  "${runner[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${runner[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

# 1. System libraries: FluidSynth's shared library and a General MIDI soundfont.
missing=()
if ! ldconfig -p 2>/dev/null | grep -q 'libfluidsynth\.so\.3'; then missing+=(libfluidsynth3); fi
if [ -z "${MTLNB_SOUNDFONT:-}" ] && [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] \
   && [ ! -f /usr/share/sounds/sf2/TimGM6mb.sf2 ]; then missing+=(fluid-soundfont-gm); fi
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

# 4. The browser test's Chromium (make test): where it cannot be installed, that test skips, except under CI.
if [ "${1:-}" = "--browser" ]; then
  browser=()
  if [ ! -x /usr/bin/chromium ]; then browser+=(chromium); fi
  if [ ! -x /usr/bin/chromedriver ]; then browser+=(chromium-driver); fi
  if [ ${#browser[@]} -gt 0 ]; then (apt_install "${browser[@]}") || say "continuing without ${browser[*]}"; fi
fi

# 2. The virtual environment. The stamp holds a hash of pyproject.toml: reinstall only when it changed.
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.mtlnb-installed"
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing mtlnb and its packages into $VENV (torch==2.13.0 pinned; this takes a few minutes the first time)"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e ".[test,lab]"
  echo "$want" > "$stamp"
fi
# 3. Trust the notebooks: JupyterLab removes embedded audio from the outputs of an untrusted notebook.  A notebook
#    changed since (edited, pulled) is untrusted again until this runs again.
"$VENV/bin/jupyter" trust notebooks/*.ipynb >/dev/null 2>&1 || say "could not mark the notebooks trusted (jupyter trust)"

say "ready: $("$VENV/bin/python" -c 'import torch, mtlnb; print("mtlnb", mtlnb.__version__, "torch", torch.__version__)')"
