"""The outcome of one import run."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImportReport:
    """Counts of added/updated/unchanged/rejected rows and the rejected lines."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    # Rows left out on purpose (another province than the one asked for), not errors.
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def reject(self, line: int, message: str) -> None:
        """Record a rejected row with its 1-based line number and a Chinese message."""
        self.rejected += 1
        self.errors.append((line, message))

    def in_line_order(self) -> ImportReport:
        """Sort the rejected lines by line number and return the report."""
        self.errors.sort(key=lambda error: error[0])
        return self

    def summary(self) -> str:
        """Return the one-line Chinese summary of the counts."""
        text = f"新增 {self.added}，更新 {self.updated}，未变 {self.unchanged}，拒绝 {self.rejected}"
        if self.skipped:
            text += f"，跳过 {self.skipped}（不属于所选省份）"
        return text
