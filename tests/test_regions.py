"""branches.regions: region names and addresses -> county-level divisions, offline."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from branches.geo import Point, distance_km
from branches.regions import DIVISIONS_CSV, Division, divisions, resolve_address, resolve_region

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIANFU_SQUARE = Point(30.657, 104.066)

CHENGDU = {  # the regions the project's own data uses
    "金堂县": "510121", "新都区": "510114", "郫都区": "510117", "双流区": "510116",
    "大邑县": "510129", "蒲江县": "510131", "锦江区": "510104",
}


def _adcode(division: Division | None) -> str | None:
    return None if division is None else division.adcode


# --- the bundled table --------------------------------------------------------------------------

def test_the_table_has_every_county_once_with_a_point_inside_china() -> None:
    with DIVISIONS_CSV.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == [
        "adcode", "province", "city", "county", "lat", "lon", "point", "former_name",
    ]
    assert 2800 <= len(rows) <= 3200
    codes = [row["adcode"] for row in rows]
    assert len(set(codes)) == len(codes)
    for row in rows:
        assert len(row["adcode"]) == 6 and row["adcode"].isdigit(), row
        if row["adcode"].endswith("00"):  # 东莞市, 中山市, 儋州市, 嘉峪关市: no counties below
            assert row["city"] == row["county"], row
        assert 3.5 <= float(row["lat"]) <= 53.6, row
        assert 73.4 <= float(row["lon"]) <= 135.1, row
        assert row["point"] in {"seat", "centroid"}, row
        assert row["province"] and row["city"] and row["county"], row
    assert sum(row["point"] == "seat" for row in rows) / len(rows) > 0.95
    assert not {row["adcode"][:2] for row in rows} & {"71", "81", "82"}  # mainland only


def test_divisions_load_once_as_typed_values() -> None:
    assert divisions() is divisions()
    assert len(divisions()) == len({d.adcode for d in divisions()})
    jintang = next(d for d in divisions() if d.adcode == "510121")
    assert jintang == Division("510121", "四川省", "成都市", "金堂县", jintang.point)
    assert isinstance(jintang.point, Point)
    assert distance_km(jintang.point, Point(30.862, 104.412)) < 2  # 赵镇, the county seat


def test_chengdus_districts_lie_around_tianfu_square() -> None:
    chengdu = [d for d in divisions() if d.city == "成都市"]
    assert {d.county for d in chengdu} >= set(CHENGDU)
    assert len(chengdu) == 20
    for division in chengdu:
        km = distance_km(TIANFU_SQUARE, division.point)
        assert km < (60 if division.county.endswith("区") else 80), (division.county, km)


def test_municipalities_and_cities_without_counties_name_their_city() -> None:
    assert resolve_region("朝阳区", "北京").city == "北京市"  # type: ignore[union-attr]
    assert resolve_region("东莞").city == "东莞市"  # type: ignore[union-attr]
    assert resolve_region("仙桃市").city == "仙桃市"  # type: ignore[union-attr]


# --- region fields ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "path", ["data/whitelist_sample.csv", "data/demo_whitelist.csv", "data/branches.csv"]
)
def test_every_region_in_the_projects_data_resolves_to_its_county(path: str) -> None:
    with (PROJECT_ROOT / path).open(encoding="utf-8", newline="") as handle:
        regions_used = {row["region"] for row in csv.DictReader(handle)}
    assert regions_used
    for region in regions_used:
        division = resolve_region(region)
        assert division is not None, region
        assert (division.province, division.city, division.county) == ("四川省", "成都市", region)
        assert division.adcode == CHENGDU[region]


@pytest.mark.parametrize(("name", "adcode"), [
    ("金堂县", "510121"),
    ("金堂", "510121"),
    ("新都区", "510114"),
    ("新都", "510114"),
    ("成都市新都区", "510114"),
    ("成都新都区", "510114"),
    ("四川省成都市新都区", "510114"),
    ("四川成都新都", "510114"),
    ("四川省-成都市-金堂县", "510121"),
    (" 金堂县 ", "510121"),
    ("中国四川省成都市金堂县", "510121"),
    ("郫县", "510117"),  # the name before 2016
    ("成都市郫县", "510117"),
    ("双流县", "510116"),  # a former suffix on the short name
    ("510121", "510121"),
    ("酉阳土家族苗族自治县", "500242"),
    ("酉阳", "500242"),
    ("鄂伦春自治旗", "150723"),
    ("鄂伦春", "150723"),
    ("巴里坤", "650521"),
    ("浦东新区", "310115"),
    ("浦东", "310115"),
    ("上海浦东新区", "310115"),
    ("神农架", "429021"),
    ("东莞", "441900"),
    ("东莞市", "441900"),
    ("广东省东莞市", "441900"),
    ("阳泉市城区", "140302"),
    ("长春市朝阳区", "220104"),
    ("北京朝阳区", "110105"),
    ("北京市朝阳区", "110105"),
    ("吉林省通化县", "220521"),
])
def test_region_names_whole_short_and_prefixed(name: str, adcode: str) -> None:
    assert _adcode(resolve_region(name)) == adcode


@pytest.mark.parametrize(("name", "hint", "adcode"), [
    ("朝阳区", None, None),  # 北京 and 长春
    ("朝阳区", "北京", "110105"),
    ("朝阳区", "北京市", "110105"),
    ("朝阳区", "11", "110105"),
    ("朝阳区", "吉林省", "220104"),
    ("朝阳", "辽宁", None),  # 辽宁's city 朝阳市, not its 朝阳县
    ("朝阳县", None, "211321"),
    ("河口", None, None),  # 东营's 河口区 and 云南's 河口瑶族自治县
    ("河口", "云南", "532532"),
    ("朝阳区", "四川", None),  # the hint names neither
    ("城区", None, None),  # 阳泉 and 晋城
    ("城区", "山西", None),  # both in 山西
    ("鼓楼区", "江苏", None),  # 南京 and 徐州
    ("南京市鼓楼区", None, "320106"),
    ("金堂县", "北京", "510121"),  # a unique name is not overridden by a hint
    ("江北区", "重庆", "500105"),
])
def test_ambiguous_names_need_a_hint_or_a_prefix(
    name: str, hint: str | None, adcode: str | None
) -> None:
    assert _adcode(resolve_region(name, hint_province=hint)) == adcode


@pytest.mark.parametrize("name", [
    "四川省", "四川", "成都市", "成都", "朝阳市",
    "海南",  # the province, not 乌海's 海南区
    "通化",  # the city, not 通化县
    "吉林", "吉林市",
])
def test_provinces_and_cities_are_not_counties(name: str) -> None:
    assert resolve_region(name) is None


@pytest.mark.parametrize("garbage", [
    "", "   ", "xx", "hello world", "123", "999999", "！！！", "中国", "县", "区区区",
    "金堂县赵镇十里大道",  # an address is not a region field: resolve_address reads it
])
def test_garbage_regions_are_none(garbage: str) -> None:
    assert resolve_region(garbage) is None


def test_every_division_resolves_from_its_prefixed_name_and_unique_names_alone() -> None:
    counts: dict[str, int] = {}
    for division in divisions():
        counts[division.county] = counts.get(division.county, 0) + 1
    for division in divisions():
        prefix = division.province if division.city in (division.province, division.county) \
            else division.province + division.city
        assert resolve_region(prefix + division.county) == division
        assert resolve_region(division.adcode) == division
        if counts[division.county] == 1:
            assert resolve_region(division.county) == division
        else:
            assert resolve_region(division.county) is None


# --- addresses ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "adcode"), [
    ("四川省成都市金堂县赵镇十里大道二段88号", "510121"),
    ("金堂县赵镇十里大道二段88号3栋2单元", "510121"),
    ("成都新都区新都大道8号", "510114"),
    ("成都市 新都区 桂湖街道 新都大道 8 号", "510114"),
    ("收货地址：四川省，成都市，锦江区，红星路三段1号", "510104"),
    ("地址：郫县犀浦镇百草路", "510117"),  # a former name, anywhere
    ("中国四川省成都市双流县东升镇", "510116"),  # a former suffix
    ("四川省成都市大邑县晋原街道", "510129"),
    ("蒲江县鹤山镇", "510131"),
    ("北京市朝阳区建国路88号", "110105"),
    ("吉林省长春市朝阳区人民大街", "220104"),
    ("辽宁省朝阳市双塔区", "211302"),  # 朝阳市 is the city here, not 朝阳县
    ("阳泉市城区北大街", "140302"),
    ("广东省东莞市长安镇", "441900"),
    ("湖北仙桃市沔阳大道", "429004"),
    ("湖南省长沙市长沙县星沙镇", "430121"),
    ("福建三明沙县区凤岗街道", "350405"),
    ("重庆忠县忠州镇", "500233"),
    ("上海浦东新区世纪大道", "310115"),
    ("ＳＨ上海市浦东新区", "310115"),  # full-width letters
    ("四川省成都市", None),  # only a city: no county, no guess
    ("成都市高新区天府大道北段", None),  # 高新区 is not a county
    ("朝阳区建国路88号", None),  # 北京 or 长春: nothing tells
    ("北京朝阳门内大街", None),  # 朝阳门 is in 东城区: a short name inside a word is not read
    ("成都金堂赵镇", None),  # short names count only at the end or before a suffix
    ("金堂城区", None),
    ("城区北大街", None),  # 城区 alone is a word
    ("", None),
    ("随便写的地址", None),
    ("hello 123", None),
])
def test_addresses(address: str, adcode: str | None) -> None:
    assert _adcode(resolve_address(address)) == adcode


def test_every_division_resolves_from_a_full_address() -> None:
    for division in divisions():
        prefix = division.province if division.city in (division.province, division.county) \
            else division.province + division.city
        assert resolve_address(f"{prefix}{division.county}某某路1号") == division


def test_an_address_takes_well_under_a_millisecond() -> None:
    divisions()  # loaded once, outside the timing
    addresses = [
        "四川省成都市金堂县赵镇十里大道二段88号",
        "收货地址是某某小区附近的金堂县赵镇十里大道二段88号3栋2单元",
        "成都市高新区天府大道北段1700号环球中心",
        "随便写的一些没有地名的文字" * 3,
    ] * 250
    started = time.perf_counter()
    for address in addresses:
        resolve_address(address)
    assert (time.perf_counter() - started) / len(addresses) < 1e-3
