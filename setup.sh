#!/usr/bin/env bash
# Installs everything derive needs on a fresh Debian machine, into the active Python:
#   Debian fonts (a CJK font for Chinese figures, a math font) and the derive package.
#   ./setup.sh         derive itself
#   ./setup.sh --dev   derive plus what the tests and benchmarks use (pytest, Chromium, Jupyter Book,
#                      and, from npm into .node/, KaTeX and mystmd for the pages' tests)
set -euo pipefail
cd "$(dirname "$0")"

debian_packages=(fonts-wqy-microhei fonts-dejavu-extra)
missing=()
optional=()  # only some tests need these: a failure to install them is a warning
if [ "${1:-}" = "--dev" ]; then
  debian_packages+=(chromium)  # the browser test drives Debian's Chromium
  # node and npm run KaTeX and mystmd in the tests; a node from elsewhere (nodesource) will do
  command -v node >/dev/null 2>&1 || optional+=(nodejs)
  command -v npm >/dev/null 2>&1 || optional+=(npm)
fi
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_install() {
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}"
  else
    echo "setup: warning: no apt-get; install a CJK font (WenQuanYi Micro Hei) by hand" >&2
  fi
fi
if [ ${#optional[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || command -v sudo >/dev/null 2>&1; }; then
    echo "setup: installing Debian packages: ${optional[*]}"
    apt_install "${optional[@]}" \
      || echo "setup: warning: could not install ${optional[*]}; the KaTeX and mystmd tests will be skipped" >&2
  else
    echo "setup: warning: no ${optional[*]}; the KaTeX and mystmd tests will be skipped" >&2
  fi
fi

extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet -e ".${extra}"
if [ "${1:-}" = "--dev" ]; then
  if command -v npm >/dev/null 2>&1; then  # into .node/ (git-ignored)
    npm install --silent --no-audit --no-fund --prefix .node katex@0.19.1 mystmd@1.8.3 \
      || echo "setup: warning: npm could not install KaTeX and mystmd; their tests will be skipped" >&2
  else
    echo "setup: warning: no npm; the KaTeX and mystmd tests will be skipped" >&2
  fi
fi
echo "setup: done"
