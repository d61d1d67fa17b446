"""The result table of a benchmark: markdown for the report, plain values for the JSON."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from ...utils.misc import to_plain

__all__ = ['BenchmarkTable']


@dataclass
class BenchmarkTable:
    """A result table (markdown-ready) plus per-case details for the JSON output."""

    name: str
    title: str
    columns: List[str]
    rows: List[List] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    details: Dict = field(default_factory=dict)

    def add_unavailable_row(self, lead: List, message: str):
        """A row for a method that cannot run here (e.g. an optional dependency is missing):
        ``lead`` fills the first columns (method, group), ``message`` the next one and ``-``
        the rest; the message is also added to the notes. The row stays in the table, so a
        reader sees the method was asked for and why it has no numbers."""
        rest = len(self.columns) - len(lead)
        self.rows.append(list(lead) + [message] + ['-'] * max(rest - 1, 0))
        note = f'{lead[0]}: {message}'
        if note not in self.notes:
            self.notes.append(note)

    def to_markdown(self) -> str:
        """The table as GitHub markdown (title, table, notes)."""
        def fmt(v):
            if isinstance(v, float):
                return 'n/a' if not np.isfinite(v) else f'{v:.3f}' if abs(v) < 1 else f'{v:.2f}'
            return str(v)

        lines = [f'### {self.title}', '']
        if self.rows:
            lines.append('| ' + ' | '.join(self.columns) + ' |')
            lines.append('|' + '|'.join('---' for _ in self.columns) + '|')
            lines += ['| ' + ' | '.join(fmt(v) for v in row) + ' |' for row in self.rows]
        else:
            lines.append('(no results)')
        if self.notes:
            lines.append('')
            lines += [f'- {n}' for n in self.notes]
        return '\n'.join(lines) + '\n'

    def to_dict(self) -> Dict:
        """The table as plain JSON-ready values (numpy -> Python, NaN -> None)."""
        return dict(name=self.name, title=self.title, columns=self.columns,
                    rows=to_plain(self.rows, nan_to_none=True), notes=self.notes,
                    details=to_plain(self.details, nan_to_none=True))
