#!/usr/bin/env bash
# Vendors Apache ECharts into the branch workspace's static assets, for the marketing map
# (营销地图): branches/web/static/map/vendor/echarts/ (served at /workspace/map-assets/vendor/echarts/).
#
# The copied files are committed, so neither setup nor the tests need npm or a network; run
# this again only to change the version. It needs `npm` and the npm registry, and installs
# nothing: `npm pack` fetches each package's tarball (npm checks the registry's sha512
# integrity) into a temporary directory, and the files below are copied out of it.
#
#   echarts  dist/echarts.min.js (the UMD bundle: window.echarts), LICENSE, NOTICE and
#            licenses/LICENSE-d3 (Apache-2.0; parts of d3, BSD-3-Clause)
#   zrender  LICENSE -> LICENSE-zrender (BSD-3-Clause; bundled inside echarts.min.js)
#   tslib    LICENSE.txt -> LICENSE-tslib (0BSD; its helpers are bundled inside echarts.min.js)
#
# The versions are pinned: zrender and tslib are the exact versions echarts 5.6.0 depends on.
set -euo pipefail

ECHARTS_VERSION=5.6.0
ZRENDER_VERSION=5.6.1
TSLIB_VERSION=2.3.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/branches/web/static/map/vendor/echarts"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack NAME VERSION -> $work/NAME/package
  local name=$1 version=$2
  mkdir -p "$work/$name"
  (cd "$work/$name" && npm pack --silent "$name@$version" >/dev/null && tar xzf ./*.tgz)
}

unpack echarts "$ECHARTS_VERSION"
unpack zrender "$ZRENDER_VERSION"
unpack tslib "$TSLIB_VERSION"

got=$(node -p "require('$work/echarts/package/package.json').dependencies.zrender")
[[ "$got" == "$ZRENDER_VERSION" ]] || { echo "echarts $ECHARTS_VERSION wants zrender $got" >&2; exit 1; }

mkdir -p "$dest"
rm -f "$dest"/*
cp "$work/echarts/package/dist/echarts.min.js" "$dest/echarts.min.js"
cp "$work/echarts/package/LICENSE" "$dest/LICENSE"
cp "$work/echarts/package/NOTICE" "$dest/NOTICE"
cp "$work/echarts/package/licenses/LICENSE-d3" "$dest/LICENSE-d3"
cp "$work/zrender/package/LICENSE" "$dest/LICENSE-zrender"
cp "$work/tslib/package/LICENSE.txt" "$dest/LICENSE-tslib"

sha=$(sha256sum "$dest/echarts.min.js" | cut -d' ' -f1)
cat > "$dest/VERSION" <<EOF
Apache ECharts $ECHARTS_VERSION (npm: echarts@$ECHARTS_VERSION), vendored by scripts/vendor_echarts.sh.
echarts.min.js is the package's dist/echarts.min.js, unchanged (sha256 $sha).
It bundles zrender $ZRENDER_VERSION (LICENSE-zrender) and tslib $TSLIB_VERSION helpers (LICENSE-tslib).
Licence: Apache-2.0 (LICENSE, NOTICE); subcomponents as LICENSE lists (LICENSE-d3).
EOF
echo "vendored echarts $ECHARTS_VERSION into ${dest#"$root"/}:"
ls -l "$dest"
