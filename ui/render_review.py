"""HTML for the 评测 tab: a question under review, and the run's progress and agreement.

What a review *does* (open or make a run, record a verdict, agreement, export) is in
:mod:`eval.review`; the tab's handlers are in :mod:`ui.tab_review`. This module only turns a
run's rows into HTML, so it is tested without a browser.

It follows :mod:`ui.render`'s rule: every string from a run, a gold file or a document is
escaped before any tag is added (a run's answers quote documents, and an uploaded gold file is
arbitrary text). Citations and evidence reuse ``render.passage_block``, so they look like the
问答 tab's and their "在文档中查看原文" links open the 文档 tab through the same click bridge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from planqa.corpus.documents import Document
from planqa.eval.gold import Evidence, find_quote
from planqa.eval.raters import RaterAgreement
from planqa.eval.review import Review
from planqa.eval.verdict_export import TYPE_NAMES, VERDICT_NAMES
from planqa.eval.verdicts import AgreementPart, HumanVerdict
from planqa.rag.answer import NOT_FOUND
from planqa.ui import render
from planqa.ui.render import esc, one_block, text_html

#: The verdict form's choices (label, stored value); the labels name saved verdicts too.
VERDICT_LABELS = VERDICT_NAMES
VERDICT_CHOICES = [(label, value) for value, label in VERDICT_NAMES.items()]
#: Question types as words: the page shows the word only, the code stays in the export.
TYPE_LABELS = TYPE_NAMES
#: Characters of document text shown on each side of a gold evidence quote.
EVIDENCE_CONTEXT_CHARS = 80


def _yes_no(value: Any) -> str:
    return "不适用" if value is None else ("是" if value else "否")


def _passage(
    documents: Mapping[str, Document],
    *,
    label: str,
    doc: str,
    start: int,
    end: int,
    chapter: str,
    text: str,
    quote: tuple[int, int] | None = None,
) -> str:
    """A passage from a run or gold file, titled from the index's document metadata if known."""
    document = documents.get(doc)
    meta = document.meta if document is not None else None
    return render.passage_block(
        label=label,
        region=meta.region if meta else "",
        title=(meta.title or doc) if meta else doc,
        chapter=chapter,
        doc=doc,
        start=start,
        end=end,
        text=text,
        quote=quote,
    )


def _answer_section(row: Mapping[str, Any], documents: Mapping[str, Document]) -> str:
    parts = ['<div class="pq-answer">']
    if row.get("notice"):
        parts.append(f'<div class="pq-notice">{text_html(row["notice"])}</div>')
    answer = str(row.get("answer") or "")
    if row.get("abstained") and answer.strip() == NOT_FOUND:
        parts.append(f'<div class="pq-notfound">{esc(NOT_FOUND)}</div>')
        closest = list(row.get("retrieved") or [])[: render.REFERENCE_PASSAGES]
        if closest:
            parts.append('<div class="pq-cites-title">最接近的段落（检索结果）：</div>')
            parts.append('<div class="pq-cites">')
            for passage in closest:
                label = f"参考{passage['rank']}" + (" · 含证据" if passage.get("covers") else "")
                parts.append(
                    _passage(
                        documents,
                        label=label,
                        doc=passage["doc"],
                        start=passage["start"],
                        end=passage["end"],
                        chapter=passage.get("chapter", ""),
                        text=passage["text"],
                    )
                )
            parts.append("</div>")
    else:
        parts.append(f'<div class="pq-answer-text">{render.answer_text_html(answer)}</div>')
        citations = list(row.get("citations") or [])
        if citations:
            parts.append(f'<div class="pq-cites-title">引用来源（{len(citations)} 条）</div>')
            parts.append('<div class="pq-cites">')
            for citation in citations:
                hit = "命中证据" if citation.get("hit") else "未命中证据"
                parts.append(
                    _passage(
                        documents,
                        label=f"[{citation['n']}] · {hit}",
                        doc=citation["doc"],
                        start=citation["start"],
                        end=citation["end"],
                        chapter=citation.get("chapter", ""),
                        text=citation["text"],
                        quote=(citation["quote_start"], citation["quote_end"]),
                    )
                )
            parts.append("</div>")
        else:
            parts.append('<div class="pq-uncited">这个回答没有引用。</div>')
    parts.append("</div>")
    return "".join(parts)


def _evidence_section(
    evidence: Sequence[Evidence] | None,
    documents: Mapping[str, Document],
    chapter_of: Callable[[str, int], str],
) -> str:
    if evidence is None:
        return '<div class="pq-empty">（没有找到这次运行对应的金标文件，无法显示证据原文。）</div>'
    if not evidence:
        return ""
    parts = ['<div class="pq-cites">']
    for number, piece in enumerate(evidence, start=1):
        document = documents.get(piece.doc)
        spans = find_quote(piece.quote, document.text) if document is not None else ()
        if not spans or document is None:
            parts.append(
                f'<div class="pq-review-quote"><b>证据{number}</b> {esc(piece.doc)}：'
                f"{text_html(piece.quote)}（未在当前索引的文件中找到）</div>"
            )
            continue
        start, end = spans[0]
        left = max(0, start - EVIDENCE_CONTEXT_CHARS)
        right = min(len(document.text), end + EVIDENCE_CONTEXT_CHARS)
        parts.append(
            _passage(
                documents,
                label=f"证据{number}",
                doc=piece.doc,
                start=left,
                end=right,
                chapter=chapter_of(piece.doc, start),
                text=document.text[left:right],
                quote=(start, end),
            )
        )
    parts.append("</div>")
    return "".join(parts)


def _auto_section(row: Mapping[str, Any]) -> str:
    auto = row.get("verdicts") or {}
    correct = bool(auto.get("correct"))
    verdict = (
        '<span class="pq-ok">✓ 正确</span>' if correct else '<span class="pq-bad">✗ 错误</span>'
    )
    items = [("答案", verdict), ("拒答", esc(_yes_no(row.get("abstained"))))]
    if row.get("answerable"):
        cited = len(row.get("citations") or [])
        hits = auto.get("citations_hitting", 0)
        hitting = f"{_yes_no(auto.get('citation_hit'))}（{hits}/{cited} 条）"
        items.append(("引用命中证据", esc(hitting)))
        rank = auto.get("first_hit_rank")
        items.append(("证据检索排名", esc(rank if rank is not None else "前列未检索到")))
    return "".join(
        f'<span class="pq-fact"><b>{esc(name)}</b>{value}</span>' for name, value in items
    )


def review_item_html(
    review: Review,
    index: int,
    *,
    documents: Mapping[str, Document],
    saved: HumanVerdict | None = None,
    chapter_of: Callable[[str, int], str] = lambda doc, pos: "",
) -> str:
    """One question: position, type, the question, planqa's answer with its citations, the
    gold answers and evidence, the automatic verdict, and this evaluator's saved verdict."""
    index = review.clamp(index)
    row = review.row(index)
    kind = str(row.get("type", ""))
    answerable = bool(row.get("answerable"))
    tags = [
        f'<span class="pq-review-pos">第 {index + 1} / {review.size} 题</span>',
        f'<span class="pq-tag">{esc(row["id"])}</span>',
        f'<span class="pq-tag" title="题型">{esc(TYPE_LABELS.get(kind, kind))}</span>',
        f'<span class="pq-tag">{"可回答" if answerable else "不可回答（应拒答）"}</span>',
    ]
    if saved is not None:
        tags.append(
            f'<span class="pq-tag pq-judged">已评：{esc(VERDICT_LABELS.get(saved.verdict))}'
            f" · {esc(saved.timestamp[:19].replace('T', ' '))} UTC</span>"
        )
    gold_answers = row.get("gold_answers") or []
    gold = (
        "".join(f'<span class="pq-tag pq-gold">{esc(a)}</span>' for a in gold_answers)
        if gold_answers
        else '<span class="pq-empty">（无：文件中没有答案，应拒答）</span>'
    )
    evidence = review.evidence.get(row["id"]) if review.gold_source else None
    return one_block(
        '<div class="pq-review">'
        f'<div class="pq-review-head">{"".join(tags)}</div>'
        f'<div class="pq-review-q">{text_html(str(row.get("question", "")))}</div>'
        '<div class="pq-review-part"><div class="pq-review-title">planqa 的回答</div>'
        f"{_answer_section(row, documents)}</div>"
        '<div class="pq-review-part"><div class="pq-review-title">金标答案与证据</div>'
        f'<div class="pq-review-gold">{gold}</div>'
        f"{_evidence_section(evidence, documents, chapter_of)}</div>"
        '<div class="pq-review-part"><div class="pq-review-title">自动判定</div>'
        f'<div class="pq-facts">{_auto_section(row)}</div></div>'
        "</div>"
    )


def _percent(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 100:.1f}%"


def _kappa(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def _cells(part: AgreementPart) -> str:
    return f"<td>{part.pairs}</td><td>{_percent(part.share)}</td><td>{_kappa(part.kappa)}</td>"


#: Two header rows: what is compared (answers, citations), then its three numbers.
_AGREE_HEAD = (
    '<tr><th rowspan="2">{first}</th><th rowspan="2">{count}</th>'
    '<th colspan="3">答案判定</th><th colspan="3">引用是否支持</th></tr>'
    "<tr>" + "<th>成对</th><th>一致率</th><th>κ</th>" * 2 + "</tr>"
)


def agreement_html(result: RaterAgreement) -> str:
    """One row per evaluator against the automatic verdicts (never pooled: one lenient
    evaluator would hide in a pooled figure), then one row per two evaluators who judged the
    same questions, or a line saying that needs a second evaluator."""
    if not result.evaluators:
        return '<div class="pq-empty">还没有人工判定：保存第一条判定后这里显示一致性。</div>'
    rows = "".join(
        f"<tr><td>{esc(row.evaluator)}</td><td>{row.verdicts}</td>"
        f"{_cells(row.answers)}{_cells(row.citations)}</tr>"
        for row in result.evaluators
    )
    parts = [
        "<div><b>各评测人与自动判定的一致性</b>（“部分正确”计为错误）</div>",
        '<table class="pq-agree" id="pq-agree-auto">',
        _AGREE_HEAD.format(first="评测人", count="判定数"),
        rows,
        "</table>",
    ]
    if result.between:
        pairs = "".join(
            f"<tr><td>{esc(pair.first)} × {esc(pair.second)}</td><td>{pair.common}</td>"
            f"{_cells(pair.answers)}{_cells(pair.citations)}</tr>"
            for pair in result.between
        )
        parts += [
            "<div><b>评测人之间的一致性</b>（两人都评过的题目；正确 / 部分正确 / 错误 三类）</div>",
            '<table class="pq-agree" id="pq-agree-between">',
            _AGREE_HEAD.format(first="评测人", count="共同评的题"),
            pairs,
            "</table>",
        ]
    else:
        parts.append('<div class="pq-empty">评测人之间的一致性：需要两位评测人评过同一题目。</div>')
    parts.append(
        '<div class="pq-foot">κ：卡帕系数，扣除偶然一致后的一致程度；无法计算时为 -。</div>'
    )
    return "".join(parts)


def review_status_html(
    review: Review, *, evaluator: str, judged_count: int, result: RaterAgreement
) -> str:
    """The run, this evaluator's progress, and agreement: each evaluator with the automatic
    verdicts, and evaluators with each other."""
    gold = (
        f"证据来自 {esc(review.gold_source.name)}"
        if review.gold_source
        else "没有对应的金标文件（只显示金标答案）"
    )
    return one_block(
        '<div class="pq-review-status">'
        f"<div><b>运行</b> <code>{esc(review.run_id)}</code> · {review.size} 题 · {gold}</div>"
        f'<div id="pq-review-progress"><b>进度</b> {esc(evaluator or "-")} 已评 '
        f"{judged_count} / {review.size} 题</div>"
        f"{agreement_html(result)}"
        "</div>"
    )
