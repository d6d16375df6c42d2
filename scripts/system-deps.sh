#!/usr/bin/env bash
# Debian packages the test suite needs beyond Python:
#   chromium                      prints summary.pdf (pipeline/reports/pdf.py); the page test too
#   fonts-dejavu-core, fonts-liberation   fonts for the HTML/PDF summaries and the screenshot
#   libpango-1.0-0, libpangoft2-1.0-0, libharfbuzz-subset0   WeasyPrint, the PDF peer of benchmarks/report_render.py
#   poppler-utils                 pdftoppm, to look at summary.pdf as PNG pages by hand
# Idempotent: exits at once when every package is installed; otherwise one apt-get update and
# one install. Needs root (CI and the developers' machines run as root); prints what it does.
set -euo pipefail

PACKAGES=(
  chromium
  fonts-dejavu-core
  fonts-liberation
  libpango-1.0-0
  libpangoft2-1.0-0
  libharfbuzz-subset0
  poppler-utils
)

missing=()
for package in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)"
  if [[ "$status" != "installed" ]]; then
    missing+=("$package")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "system-deps: installing ${missing[*]}"
if [[ "$(id -u)" -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
