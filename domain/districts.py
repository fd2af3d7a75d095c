"""Districts (地区) of Tama Ward: a versioned reference table, not names scattered in code."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import UnknownReference


@dataclass(frozen=True)
class District:
    id: str
    name_ja: str
    name_en: str


@dataclass(frozen=True)
class DistrictTable:
    version: str
    districts: tuple[District, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(district.id for district in self.districts)

    def get(self, district_id: str) -> District:
        for district in self.districts:
            if district.id == district_id:
                return district
        known = ", ".join(self.ids)
        raise UnknownReference(f"unknown district {district_id!r}; known districts: {known}")


DEFAULT_DISTRICTS = DistrictTable(
    version="districts-2026.1",
    districts=(
        District("noborito", "登戸地区", "Noborito"),
        District("inada", "稲田地区", "Inada"),
        District("suge", "菅地区", "Suge"),
        District("nakanoshima", "中野島地区", "Nakanoshima"),
        District("ikuta", "生田地区", "Ikuta"),
    ),
)
