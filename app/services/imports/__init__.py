"""Importers of master data files; each upserts, flushes and leaves the commit to the caller."""
from __future__ import annotations

from app.services.imports.certificates import import_certificates
from app.services.imports.divisions import import_divisions
from app.services.imports.errors import ImportFileError, UnknownProvinceError
from app.services.imports.majors import import_majors
from app.services.imports.report import ImportReport
from app.services.imports.schools import import_schools

__all__ = [
    "ImportFileError",
    "ImportReport",
    "UnknownProvinceError",
    "import_certificates",
    "import_divisions",
    "import_majors",
    "import_schools",
]
