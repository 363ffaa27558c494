"""Importers of master data files; each upserts, flushes and leaves the commit to the caller."""
from __future__ import annotations

from app.masterdata.imports.certificates import import_certificates
from app.masterdata.imports.divisions import import_divisions
from app.masterdata.imports.errors import ImportFileError, UnknownProvinceError
from app.masterdata.imports.majors import import_majors
from app.masterdata.imports.report import ImportReport
from app.masterdata.imports.schools import import_schools

__all__ = [
    "ImportFileError",
    "ImportReport",
    "UnknownProvinceError",
    "import_certificates",
    "import_divisions",
    "import_majors",
    "import_schools",
]
