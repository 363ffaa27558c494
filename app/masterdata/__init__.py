"""Master data: schools, divisions, majors and certificates, and the importers of the public lists."""
