"""第一步：完善院校基础信息."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app import clock
from app.accounts.models import ROLE_SCHOOL, User
from app.accounts.services import normalize_phone
from app.core.errors import Forbidden, NotFound, ServiceError
from app.forms import Field, FormSpec, build_form, parse_submission, validate
from app.masterdata.models import School

FORM_NAME = "school-info-form.json"
FIELDS = ("education_level", "ownership", "contact_name", "contact_phone", "address", "student_count",
          "teacher_count", "introduction")


def info_form(forms: Mapping[str, Any]) -> FormSpec:
    """Build the school information form."""
    return build_form(forms[FORM_NAME])


def own_school(session: Any, user: User) -> School:
    """Return the user's school."""
    if user.role != ROLE_SCHOOL or user.school_id is None:
        raise Forbidden("只有院校账号可以填写院校信息")
    school = session.get(School, user.school_id)
    if school is None:
        raise NotFound("院校不存在")
    return school


def current_values(school: School) -> dict[str, Any]:
    """Return the school's stored information as form values."""
    values = {name: getattr(school, name) for name in FIELDS}
    if not values["education_level"]:
        values["education_level"] = {"专科": "高职专科", "本科": "职教本科", "中职": "中职"}.get(school.list_level or "", "")
    return {k: ("" if v is None else v) for k, v in values.items()}


def save_info(session: Any, user: User, form: FormSpec, values: Mapping[str, Any]) -> School:
    """Validate and store the school's basic information."""
    school = own_school(session, user)
    if isinstance(values.get("contact_phone"), str):
        values = {**values, "contact_phone": normalize_phone(values["contact_phone"])}
    errors = validate(form, values)
    if errors:
        raise ServiceError("院校信息有误，请按提示修改", errors)
    for name in FIELDS:
        setattr(school, name, values.get(name))
    school.info_completed_at = clock.now()
    return school


def known_values(school: School, user: User) -> dict[str, Any]:
    """Return what is known of the school without asking: its stored information, the Ministry list's level and
    the account's phone (a legacy weekly-report account brings one)."""
    values = current_values(school)
    if not values["contact_phone"] and user.phone:
        values["contact_phone"] = user.phone
    return {k: v for k, v in values.items() if v != ""}


def missing_fields(form: FormSpec, school: School, user: User) -> list[Field]:
    """Return the fields still to ask of a school whose basic information is not complete (none once it is)."""
    if school.info_completed_at is not None:
        return []
    wrong = validate(form, known_values(school, user))
    return [f for f in form.fields if f.name in wrong]


def save_missing(user: User, form: FormSpec, school: School, posted: Any, complete: bool,
                 ) -> tuple[dict[str, str], dict[str, Any]]:
    """Store what the declaration form asked of the school's basic information; mark the information complete
    when nothing is missing any more. complete: every missing field must be filled in now (提交审核), else only
    their format is checked (a draft). Return (field errors, what was typed)."""
    if school.info_completed_at is not None:
        return {}, {}
    asked = {f.name for f in missing_fields(form, school, user)}
    parsed, errors, typed = parse_submission(form, posted, required=asked if complete else ())
    if isinstance(parsed.get("contact_phone"), str):
        parsed["contact_phone"] = normalize_phone(parsed["contact_phone"])
    errors = {name: message for name, message in errors.items() if name in asked}
    typed = {name: value for name, value in typed.items() if name in asked}
    if errors:
        return errors, typed
    merged = {**known_values(school, user), **{k: v for k, v in parsed.items() if k in asked}}
    for name in FIELDS:
        if name in merged:
            setattr(school, name, merged[name])
    if not validate(form, merged):
        school.info_completed_at = clock.now()
    return {}, typed
