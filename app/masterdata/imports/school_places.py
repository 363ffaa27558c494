"""Find the province and city of a school among the imported divisions."""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.masterdata.models import (
    LEVEL_COUNTY,
    LEVEL_PREFECTURE,
    LEVEL_PROVINCE,
    Division,
)

# Endings of prefecture names; 所在地 often shortens 临夏回族自治州 to 临夏州.
SUFFIXES = ("自治州", "地区", "市", "州", "盟")


class Places:
    """Province and city lookups over all divisions, loaded with one query."""

    def __init__(self, session: Session) -> None:
        self.provinces: dict[str, str] = {}
        self.prefectures: dict[str, dict[str, str]] = defaultdict(dict)
        counties: dict[str, dict[str, set[str | None]]] = defaultdict(lambda: defaultdict(set))
        levels: dict[str, str] = {}
        divisions = session.scalars(select(Division)).all()
        for division in divisions:
            levels[division.code] = division.level
            if division.level == LEVEL_PROVINCE:
                self.provinces[division.name] = division.code
            elif division.level == LEVEL_PREFECTURE:
                self.prefectures[division.province_code][division.name] = division.code
        for division in divisions:
            if division.level == LEVEL_COUNTY:
                parent = division.parent_code
                city = parent if parent and levels.get(parent) == LEVEL_PREFECTURE else None
                counties[division.province_code][division.name].add(city)
        self.county_cities = counties

    def province_code(self, name_or_code: str) -> str | None:
        """Return the code of a province given its exact name or its code."""
        if name_or_code in self.provinces:
            return self.provinces[name_or_code]
        return name_or_code if name_or_code in self.provinces.values() else None

    def province_from_school_code(self, school_code: str) -> str | None:
        """Return the province that digits 3-4 of a 学校标识码 name, if it exists.

        Usually right, not always (吉利学院 4111012802 is in 四川省).
        """
        code = school_code[2:4] + "0000"
        return code if len(school_code) >= 4 and code in self.provinces.values() else None

    def city_code(self, province_code: str, location: str) -> str | None:
        """Return the prefecture-level division a 所在地 names within a province, if any."""
        if not location or location in self.provinces:
            # 直辖市 list the municipality itself as 所在地: no city below the province.
            return None
        prefectures = self.prefectures.get(province_code, {})
        if location in prefectures:
            return prefectures[location]
        stem, suffix = _split_suffix(location)
        candidates = {
            code
            for name, code in prefectures.items()
            if name.startswith(stem) and name.endswith(suffix or SUFFIXES)
        }
        if len(candidates) == 1:
            return next(iter(candidates))
        # A county-level city (西昌市, 昆山市) belongs to the prefecture above it.
        cities = self.county_cities.get(province_code, {}).get(location, set())
        if len(cities) == 1:
            return next(iter(cities))
        return None


def _split_suffix(location: str) -> tuple[str, str]:
    for suffix in SUFFIXES:
        if location.endswith(suffix) and len(location) > len(suffix):
            return location[: -len(suffix)], suffix
    return location, ""
