"""Readings of a parsed heading tree shared by test_structure.py (the real documents) and
test_structure_synthetic.py: heading texts, section paths, a section's text."""

from __future__ import annotations

from planqa.corpus.structure import DocumentStructure, Heading


def texts(headings: tuple[Heading, ...] | list[Heading], level: int | None = None) -> list[str]:
    return [h.text for h in headings if level is None or h.level == level]


def section_paths(structure: DocumentStructure) -> set[tuple[str, ...]]:
    return {s.path for s in structure.sections}


def section_text(text: str, structure: DocumentStructure, path: tuple[str, ...]) -> str:
    return "\n".join(text[s.start : s.end] for s in structure.sections if s.path == path)
