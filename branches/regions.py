"""Where a customer is: a region name or a free-text address -> a county-level division and its
point. Pure and offline: string matching against data/divisions_cn.csv (2,849 mainland units
with GB/T 2260 codes and one WGS-84 point each: the seat of government, or the area centroid
where no seat is known; built by scripts/build_divisions.py, sources and licences in
data/divisions_cn.LICENSE). No geocoding service is asked.

Names are matched whole or short: 金堂县 or 金堂, 酉阳土家族苗族自治县 or 酉阳, 阿坝藏族羌族自治州
or 阿坝州 or 阿坝, 四川省 or 四川, 广西壮族自治区 or 广西. A name may be prefixed by its province
and city, whole or short (四川省成都市新都区, 成都新都区), and a county's name from before a
rename counts too (郫县 -> 郫都区, 双流县 -> 双流区).

A short county name that also spells a province or a city names the bigger unit and is not
read as the county: 海南 is the province (not 乌海's 海南区), 通化 the city (not 通化县).

Choosing among matches:
- a whole name beats a short one, and a current name a former one;
- what the text says of province and city narrows the candidates (长春市朝阳区, 北京朝阳区);
- a name still shared by several units (朝阳区: 北京 and 长春) is settled by the province hint
  when one of them lies in that province, and otherwise resolves to None: a wrong county
  would send the lead to a branch in another city.

An address resolves only to the county it names. One that names just a city (成都市高新区天府大道)
resolves to None rather than to the city's seat: a prefecture spans 100 km and more (金堂 to
蒲江 is 110 km), so its seat would route the lead to the central branch whatever the county;
the caller's fallback for an unknown region is the honest answer. The four cities that have
no counties (东莞, 中山, 儋州, 嘉峪关) and the province-administered county-level cities
(仙桃, 石河子 …) are units of their own and do resolve.

Inside an address a short county name counts only at the start of the address's place part
(after the province and city, if any) and only when the text ends there or a suffix follows
(双流县, an old name): 北京朝阳门 is in 东城区, not 朝阳区, so 成都金堂赵镇 is None too. A whole
county name counts anywhere (地址：金堂县赵镇…) if it is three characters or more or a
one-character county (郫县): 城区, 郊区 and 矿区 are units and ordinary words alike, so they
count only right after their city (阳泉市城区).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path

from branches.geo import Point

DIVISIONS_CSV = Path(__file__).resolve().parent.parent / "data" / "divisions_cn.csv"
"""The bundled table: adcode, province, city, county, lat, lon, point, former_name."""

_MUNICIPALITIES = frozenset({"11", "12", "31", "50"})  # 直辖市: province and city at once

_ETHNIC_GROUPS = (
    "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白", "土家",
    "哈尼", "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "拉祜", "水", "东乡", "纳西", "景颇",
    "柯尔克孜", "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬", "锡伯", "阿昌",
    "普米", "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克", "德昂", "保安", "裕固", "京", "塔塔尔",
    "独龙", "鄂伦春", "赫哲", "门巴", "珞巴", "基诺", "高山",
)
"""China's 55 minority nationalities, without the 族 that autonomous areas' names may add."""

# Whole forms an ethnic group takes in a name: "X族" always; bare "X" for names of two or more
# characters (巴里坤哈萨克自治县, 察布查尔锡伯自治县), never a bare 回 or 白.
_ETHNIC_SUFFIXES = tuple(sorted(
    [g + "族" for g in _ETHNIC_GROUPS] + [g for g in _ETHNIC_GROUPS if len(g) >= 2],
    key=len, reverse=True,
))

_AUTONOMOUS = ("自治区", "自治州", "自治县", "自治旗")
_PROVINCE_SUFFIXES = ("自治区", "省", "市")
_CITY_SUFFIXES = ("自治州", "地区", "市", "盟")
_COUNTY_SUFFIXES = (
    "行政委员会", "自治县", "自治旗", "新区", "林区", "特区", "县", "区", "市", "旗",
)
_COUNTY_SUFFIX_CHARS = frozenset("县区市旗")
_NOISE = re.compile(r"[\s,，、。.;；:：/\\|\-—_()（）\[\]【】<>《》\"'“”‘’#＃]+")
_LEADING_COUNTRY = ("中华人民共和国", "中国")


@dataclass(frozen=True)
class Division:
    """A county-level division (县, 区, 县级市, 旗 …) and where it is."""

    adcode: str  # GB/T 2260, six digits
    province: str  # 四川省
    city: str  # 成都市; the municipality for 北京/天津/上海/重庆; itself for 东莞市, 仙桃市 …
    county: str  # 金堂县
    point: Point  # WGS-84: the seat of government, or the area centroid where none is known


class _Kind(Enum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"


@dataclass(frozen=True)
class _Name:
    """One spelling of one place."""

    text: str
    kind: _Kind
    code: str  # province: 2 digits; city: 4 digits; county: the adcode
    whole: bool  # the full name (or a former full name), not a short form
    former: bool = False


@dataclass(frozen=True)
class _Match:
    division: Division
    start: int  # where the county's name starts in the text
    end: int  # and where it ends
    whole: bool
    former: bool

    @property
    def rank(self) -> tuple[bool, bool]:
        return (self.whole, not self.former)


@dataclass(frozen=True)
class _Gazetteer:
    divisions: tuple[Division, ...]
    by_adcode: dict[str, Division]
    by_prefix: dict[str, tuple[_Name, ...]]  # first two characters -> names, longest first
    provinces: dict[str, str]  # any spelling -> 2-digit code


# --- names --------------------------------------------------------------------------------------

def _strip_ethnic(stem: str) -> str:
    """酉阳土家族苗族 -> 酉阳; stops before leaving fewer than two characters (鄂伦春)."""
    changed = True
    while changed:
        changed = False
        for suffix in _ETHNIC_SUFFIXES:
            if stem.endswith(suffix) and len(stem) - len(suffix) >= 2:
                stem = stem[: -len(suffix)]
                changed = True
                break
    return stem


def _short_forms(name: str, suffixes: Iterable[str]) -> list[str]:
    """Shorter spellings of ``name``: without its suffix and, for autonomous areas, without
    the nationalities; none shorter than two characters."""
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            stem = name[: -len(suffix)]
            break
    else:
        return []
    forms = [stem]
    if name.endswith(_AUTONOMOUS):
        bare = _strip_ethnic(stem)
        if bare != stem:
            forms.append(bare)
    return forms


def _province_names(province: str, code: str) -> Iterator[_Name]:
    yield _Name(province, _Kind.PROVINCE, code, whole=True)
    for form in _short_forms(province, _PROVINCE_SUFFIXES):
        yield _Name(form, _Kind.PROVINCE, code, whole=False)


def _city_names(city: str, code: str) -> Iterator[_Name]:
    yield _Name(city, _Kind.CITY, code, whole=True)
    for form in _short_forms(city, _CITY_SUFFIXES):
        yield _Name(form, _Kind.CITY, code, whole=False)
        if city.endswith("自治州") and form != city[:-3]:  # 凉山彝族自治州 -> 凉山州
            yield _Name(form + "州", _Kind.CITY, code, whole=False)


def _county_names(division: Division, former_name: str) -> Iterator[_Name]:
    yield _Name(division.county, _Kind.COUNTY, division.adcode, whole=True)
    for form in _short_forms(division.county, _COUNTY_SUFFIXES):
        yield _Name(form, _Kind.COUNTY, division.adcode, whole=False)
    if former_name:
        yield _Name(former_name, _Kind.COUNTY, division.adcode, whole=True, former=True)
        for form in _short_forms(former_name, _COUNTY_SUFFIXES):
            yield _Name(form, _Kind.COUNTY, division.adcode, whole=False, former=True)


def _city_code(division: Division) -> str:
    return division.adcode[:4]


@lru_cache(maxsize=4)  # one table in practice; a test may load another
def _gazetteer(path: Path = DIVISIONS_CSV) -> _Gazetteer:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    divisions = tuple(
        Division(
            adcode=row["adcode"], province=row["province"], city=row["city"],
            county=row["county"], point=Point(float(row["lat"]), float(row["lon"])),
        )
        for row in rows
    )
    names: dict[tuple[str, _Kind, str], _Name] = {}

    def add(name: _Name) -> None:
        key = (name.text, name.kind, name.code)
        held = names.get(key)
        if held is None or (name.whole, not name.former) > (held.whole, not held.former):
            names[key] = name

    for division in divisions:
        for name in _province_names(division.province, division.adcode[:2]):
            add(name)
        if division.adcode[:2] not in _MUNICIPALITIES:
            for name in _city_names(division.city, _city_code(division)):
                add(name)
    # A short county name that spells a province or city names the bigger unit: 海南 is the
    # province, not 乌海's 海南区; 通化 the city, not 通化县. Unless the city is the unit (东莞).
    bigger = {name.text for name in names.values()}
    for division, row in zip(divisions, rows, strict=True):
        own_city = {division.city} | set(_short_forms(division.city, _CITY_SUFFIXES))
        for name in _county_names(division, row.get("former_name") or ""):
            if name.whole or name.text not in bigger or (
                division.city == division.county and name.text in own_city
            ):
                add(name)

    by_prefix: dict[str, list[_Name]] = defaultdict(list)
    for name in names.values():
        by_prefix[name.text[:2]].append(name)
    return _Gazetteer(
        divisions=divisions,
        by_adcode={d.adcode: d for d in divisions},
        by_prefix={
            prefix: tuple(sorted(group, key=lambda n: -len(n.text)))
            for prefix, group in by_prefix.items()
        },
        provinces={
            n.text: n.code for n in names.values() if n.kind is _Kind.PROVINCE
        },
    )


def divisions() -> tuple[Division, ...]:
    """Every county-level division in the bundled table, by adcode (loaded once)."""
    return _gazetteer().divisions


# --- matching -----------------------------------------------------------------------------------

def _normalise(text: str) -> str:
    text = _NOISE.sub("", unicodedata.normalize("NFKC", text))
    for country in _LEADING_COUNTRY:
        if text.startswith(country):
            return text[len(country):]
    return text


def _stands_alone(name: str) -> bool:
    """Whether a whole county name is telling without its city before it: three characters
    or more, or a one-character county (郫县, 忠县); not 城区, 郊区, 矿区, 东区 (words too)."""
    return len(name) >= 3 or name.endswith("县")


def _names_at(g: _Gazetteer, text: str, at: int, kind: _Kind) -> Iterator[_Name]:
    for name in g.by_prefix.get(text[at : at + 2], ()):
        if name.kind is kind and text.startswith(name.text, at):
            yield name


def _anchored(g: _Gazetteer, text: str) -> list[_Match]:
    """County names at the start of ``text``'s place part: after an optional province, then an
    optional city, each consistent with what came before."""
    matches = []
    province_steps: list[tuple[int, str | None]] = [(0, None)]
    province_steps += [(len(n.text), n.code) for n in _names_at(g, text, 0, _Kind.PROVINCE)]
    for at, province in province_steps:
        city_steps: list[tuple[int, str | None]] = [(at, None)]
        city_steps += [
            (at + len(n.text), n.code) for n in _names_at(g, text, at, _Kind.CITY)
            if province is None or n.code[:2] == province
        ]
        for start, city in city_steps:
            for name in _names_at(g, text, start, _Kind.COUNTY):
                division = g.by_adcode[name.code]
                if province is not None and division.adcode[:2] != province:
                    continue
                if city is not None and _city_code(division) != city:
                    continue
                end = start + len(name.text)
                if (name.whole and not _stands_alone(name.text) and province is None
                        and city is None and end != len(text)):
                    continue  # 城区, 郊区, 矿区 lead an address only after their city
                matches.append(_Match(division, start, end, name.whole, name.former))
    return matches


def _suffixed_short(g: _Gazetteer, text: str, match: _Match) -> bool:
    """A short county name followed by a county suffix it does not have (双流县 for 双流区),
    unless a whole province or city name starts there (朝阳市 is a city, not 朝阳县)."""
    if match.whole or match.end >= len(text) or text[match.end] not in _COUNTY_SUFFIX_CHARS:
        return False
    return not any(
        name.whole and len(name.text) > match.end - match.start
        for kind in (_Kind.PROVINCE, _Kind.CITY)
        for name in _names_at(g, text, match.start, kind)
    )


def _province_code(g: _Gazetteer, hint: str | None) -> str | None:
    if not hint:
        return None
    hint = _normalise(hint)
    if hint.isdigit() and len(hint) in (2, 6):
        return hint[:2]
    return g.provinces.get(hint)


def _choose(matches: Iterable[_Match], hint_province: str | None) -> Division | None:
    matches = list(matches)
    if not matches:
        return None
    best = max(m.rank for m in matches)
    found = list({m.division.adcode: m.division for m in matches if m.rank == best}.values())
    if len(found) > 1 and hint_province is not None:
        hinted = [d for d in found if d.adcode[:2] == hint_province]
        if hinted:
            found = hinted
    return found[0] if len(found) == 1 else None


def resolve_region(name: str, hint_province: str | None = None) -> Division | None:
    """The division a region field names, or None when it names none or several.

    ``name``: a county's name, whole or short, maybe after its province and city (金堂县, 金堂,
    成都市新都区, 四川省成都市新都区, 双流县), or an adcode (510121). ``hint_province`` (四川,
    四川省 or 51) settles a name several units share (朝阳区); it never overrides a unique name.
    """
    g = _gazetteer()
    text = _normalise(name)
    if text.isdigit():
        return g.by_adcode.get(text)
    matches = [
        m for m in _anchored(g, text)
        if m.end == len(text) or (m.end + 1 == len(text) and _suffixed_short(g, text, m))
    ]
    return _choose(matches, _province_code(g, hint_province))


def _free_matches(g: _Gazetteer, text: str) -> list[_Match]:
    """Whole county names that stand alone, anywhere in ``text``: the earliest, kept only if
    consistent with the provinces and cities named before them (whole names only)."""
    found: list[tuple[int, _Match]] = []
    provinces: set[str] = set()
    cities: set[str] = set()
    for at in range(len(text) - 1):
        for name in g.by_prefix.get(text[at : at + 2], ()):
            if not (name.whole and text.startswith(name.text, at)):
                continue
            if name.kind is _Kind.PROVINCE:
                provinces.add(name.code)
            elif name.kind is _Kind.CITY:
                cities.add(name.code)
            elif _stands_alone(name.text):
                division = g.by_adcode[name.code]
                if provinces and division.adcode[:2] not in provinces:
                    continue
                if cities and _city_code(division) not in cities:
                    continue
                end = at + len(name.text)
                found.append((at, _Match(division, at, end, True, name.former)))
    if not found:
        return []
    first = min(at for at, _ in found)
    return [m for at, m in found if at == first]


def resolve_address(address: str) -> Division | None:
    """The county a free-text Chinese address is in, or None (no county named, or a name several
    units share with nothing in the address to tell them apart).

    Reads 四川省成都市金堂县赵镇十里大道二段88号, 金堂县赵镇…, 成都新都区…, 地址：郫县犀浦镇…;
    an address that names only a city (成都市高新区…) is None: see the module's docstring.
    """
    g = _gazetteer()
    text = _normalise(address)
    anchored = [
        m for m in _anchored(g, text)
        if m.whole or m.end == len(text) or _suffixed_short(g, text, m)
    ]
    if anchored:
        return _choose(anchored, None)
    return _choose(_free_matches(g, text), None)
