"""Checks shared by the robustness catalogue's test modules (test_robustness*.py): the answer
contract, the CLI's error convention, and the small documents they index."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from planqa.rag.answer import NOT_FOUND, Answer

REPO_ROOT = Path(__file__).resolve().parent.parent
IC_QUESTION = "哪个区规划了集成电路测试产业园？"
IC_QUESTION_TRADITIONAL = "哪個區規劃了集成電路測試產業園？"


def assert_cited_or_refused(answer: Answer, documents: dict[str, Any]) -> None:
    """The contract of every answer: citations that quote the document verbatim, or a refusal."""
    assert answer.abstained or answer.citations
    if answer.abstained and not answer.citations:
        assert answer.answer == NOT_FOUND or answer.notice
    for citation in answer.citations:
        text = documents[citation.doc].text
        assert text[citation.start : citation.end] == citation.text
        assert citation.start <= citation.quote_start < citation.quote_end <= citation.end


def assert_user_error(result: Any, exit_code: int, pattern: str) -> None:
    """A CLI failure as the conventions say: exit code, one ``error:`` line, no traceback."""
    output = result.stdout + result.stderr
    assert result.exit_code == exit_code, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    assert result.stderr.startswith("error: "), result.stderr
    assert re.search(pattern, result.stderr), result.stderr


def cli(index_dir: Path, model: str = "hash") -> CliRunner:
    return CliRunner(env={"PLANQA_EMBEDDING_MODEL": model, "PLANQA_INDEX_DIR": str(index_dir)})


def plan_text(region: str, sentinel: str, extra: str = "") -> str:
    """A small planning document whose ``sentinel`` occurs in no other test document."""
    return (
        f"{region}国民经济和社会发展第十四个五年规划纲要\n"
        "第一章 发展基础\n"
        f"“十三五”期间，{region}经济稳步增长，地区生产总值年均增长6.5%。{extra}\n"
        "第二章 重点任务\n"
        f"一、建设{sentinel}\n"
        f"到2025年，{region}将建成{sentinel}，带动就业三千人，年产值突破120亿元。\n"
    )
