"""An answer as plain text with its numbered citations: what ``planqa ask`` prints and what the
OpenAI-compatible chat endpoint (ui/api_chat.py) replies, kept apart from the CLI so the API can
use it without importing the command modules (which import the server lazily: a cycle)."""

from __future__ import annotations

from typing import Any


def render_answer(answer: Any) -> str:
    """Plain text for people: the answer, then each citation with where it comes from."""
    from planqa.rag.answer import NOT_FOUND

    lines = [answer.answer]
    if answer.notice:
        lines.insert(0, f"（{answer.notice}）")
    for citation in answer.citations:
        quote = " ".join(citation.text.split())
        chapter = citation.chapter or "（无章节）"
        lines.append(
            f"\n[{citation.n}] {citation.region} ·《{citation.title}》\n    {chapter}"
            f" · {citation.doc} [{citation.start}:{citation.end}]\n    {quote[:300]}"
        )
    if answer.abstained and answer.answer == NOT_FOUND and answer.retrieved:
        lines.append("\n最接近的段落（仅供参考）：")
        for rank, hit in enumerate(answer.retrieved[:3], start=1):
            chunk = hit.chunk
            snippet = " ".join(chunk.text.split())[:120]
            lines.append(
                f"  {rank}. {chunk.region} · {chunk.chapter} [{chunk.start}:{chunk.end}] {snippet}"
            )
    return "\n".join(lines)
