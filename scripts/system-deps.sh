#!/usr/bin/env bash
# Install the Debian packages MedGAN Studio needs, when we can (root + apt-get).
#   scripts/system-deps.sh gui    Qt runtime libraries for a real or offscreen window
#   scripts/system-deps.sh test   the above plus the independent DICOM/NIfTI judges used by the tests
# Without root or apt-get it only reports what is missing and carries on.
set -uo pipefail
what=${1:-gui}
gui_pkgs="libegl1 libgl1 libopengl0 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1"
test_pkgs="dcmtk dicom3tools dcm2niix orthanc orthanc-dicomweb chromium"
pkgs=$gui_pkgs
[ "$what" = test ] && pkgs="$gui_pkgs $test_pkgs"

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
    echo "warning: apt-get could not install:$missing" >&2; exit 0; }
else
  echo "note: these system packages are missing; install them with your package manager:$missing" >&2
fi
exit 0
