"""Master data: divisions, schools, certificates, majors."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import now
from app.core.db import Base

LEVEL_PROVINCE = "province"
LEVEL_PREFECTURE = "prefecture"
LEVEL_COUNTY = "county"

# 新疆生产建设兵团 is a province-level unit in education administration without a GB/T 2260 code.
BINGTUAN_CODE = "660000"
BINGTUAN_NAME = "新疆生产建设兵团"

MAJOR_LEVELS = ("中职", "高职专科", "职教本科")
CERTIFICATE_LEVELS = ("初级", "中级", "高级")


class Division(Base):
    """An administrative division (GB/T 2260): province, prefecture or county."""

    __tablename__ = "division"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16), index=True)
    province_code: Mapped[str] = mapped_column(String(6), index=True)
    parent_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    # 1+X officer of the province, shown to schools that cannot find themselves in the list.
    officer_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    officer_phone: Mapped[str | None] = mapped_column(String(32), nullable=True)


class School(Base):
    """A school from the official Ministry of Education list (or added by a province)."""

    __tablename__ = "school"
    __table_args__ = (Index("ix_school_province_name", "province_code", "name"),
                      Index("ix_school_province_name_sort", "province_code", "name_sort"))

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # 学校标识码
    name: Mapped[str] = mapped_column(String(128))
    # The name in pinyin (set with the name, see below): lists sort schools by it, as Chinese readers expect.
    name_sort: Mapped[str] = mapped_column(String(512), default="")
    province_code: Mapped[str] = mapped_column(String(6), ForeignKey("division.code"))
    city_code: Mapped[str | None] = mapped_column(String(6), ForeignKey("division.code"), nullable=True)
    location: Mapped[str | None] = mapped_column(String(64), nullable=True)  # 所在地 as published
    department: Mapped[str | None] = mapped_column(String(128), nullable=True)  # 主管部门
    list_level: Mapped[str | None] = mapped_column(String(16), nullable=True)  # 本科/专科/成人/中职
    remark: Mapped[str | None] = mapped_column(String(128), nullable=True)  # 民办 …
    # 基础信息 completed by the school (第一步)
    education_level: Mapped[str | None] = mapped_column(String(16), nullable=True)  # MAJOR_LEVELS
    ownership: Mapped[str | None] = mapped_column(String(16), nullable=True)  # 公办/民办
    contact_name: Mapped[str | None] = mapped_column(String(32), nullable=True)
    contact_phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    address: Mapped[str | None] = mapped_column(String(256), nullable=True)
    student_count: Mapped[int | None] = mapped_column(nullable=True)
    teacher_count: Mapped[int | None] = mapped_column(nullable=True)
    introduction: Mapped[str | None] = mapped_column(Text, nullable=True)
    info_completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)

    province: Mapped[Division] = relationship(foreign_keys=[province_code])
    city: Mapped[Division | None] = relationship(foreign_keys=[city_code])


class Certificate(Base):
    """A 1+X vocational skill level certificate and its training evaluation organisation."""

    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    organization: Mapped[str] = mapped_column(String(256))  # 培训评价组织
    batch: Mapped[int | None] = mapped_column(nullable=True)
    levels: Mapped[str] = mapped_column(String(32), default="初级,中级,高级")

    def level_list(self) -> list[str]:
        """Return the levels this certificate is issued at."""
        return [lv for lv in self.levels.split(",") if lv]


class Major(Base):
    """A major of the vocational education catalog."""

    __tablename__ = "major"
    __table_args__ = (UniqueConstraint("code", name="uq_major_code"), Index("ix_major_level", "level"))

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(16))  # MAJOR_LEVELS
    category: Mapped[str | None] = mapped_column(String(64), nullable=True)  # 专业大类
    subcategory: Mapped[str | None] = mapped_column(String(64), nullable=True)  # 专业类
    remark: Mapped[str | None] = mapped_column(String(64), nullable=True)


def name_sort_key(name: str) -> str:
    """Return the key that orders names by their pinyin ("重庆…" as chong qing, "长沙…" as chang sha), then as written.

    pypinyin is loaded on first use (its dictionaries take some 50 MB), so processes that never set a name skip it.
    """
    from pypinyin import lazy_pinyin

    return " ".join(syllable.lower() for syllable in lazy_pinyin(name))[:500]


@event.listens_for(School.name, "set", propagate=True)
def _school_name_set(target: School, value: str | None, _old: object, _initiator: object) -> None:
    target.name_sort = name_sort_key(value or "")
