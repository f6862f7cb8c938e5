"""Chunks: exact offsets, one section each, bounded length, sentence-aligned ends, full coverage."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from pathlib import Path

import pytest

from planqa.corpus.chunking import Chunk, chunk_document, split_sentences
from planqa.corpus.documents import Document, DocumentMeta
from planqa.corpus.errors import InputError
from planqa.corpus.structure import Section, parse_structure

DOCUMENTS = Path(__file__).resolve().parent.parent / "corpus" / "documents"
PREFIXES = ("000", "001", "002", "003", "004")
#: A TOC entry: a heading line ending in a page number (``-11-``, ``- 2-``, ``……5``, `` 50``).
TOC_LINE_RE = re.compile(r"(?:[-—–－]\s*\d{1,3}\s*[-—–－]|[.．·…]{2,}\s*\d{1,3})\s*$")


def make_document(text: str, name: str = "doc.txt") -> Document:
    return Document(DocumentMeta(file=name, region="某区", title="某区规划"), text)


def read_document(prefix: str) -> Document:
    """Read exactly as decoded (``newline=""`` keeps ``\\r\\n``) so offsets index the real text."""
    (path,) = DOCUMENTS.glob(f"{prefix}_*.txt")
    with open(path, encoding="utf-8", newline="") as handle:
        return make_document(handle.read(), path.name)


def section_of(chunk: Chunk, sections: tuple[Section, ...]) -> Section:
    (section,) = [s for s in sections if s.start <= chunk.start and chunk.end <= s.end]
    return section


def oversize_sentence_at(document: Document, section: Section, offset: int, limit: int) -> bool:
    """Whether ``offset`` falls strictly inside a sentence longer than ``limit``."""
    spans = split_sentences(document.text[section.start : section.end], section.start)
    return any(s < offset < e and e - s > limit for s, e in spans)


def assert_chunk_invariants(document: Document, chunks: list[Chunk], max_chars: int) -> None:
    text = document.text
    structure = parse_structure(text)
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert 0 < len(chunk.text) <= max_chars
        section = section_of(chunk, structure.sections)
        assert chunk.chapter == " > ".join(section.path)
        sentence_ends = {
            e for _, e in split_sentences(text[section.start : section.end], section.start)
        }
        assert (
            chunk.end in sentence_ends
            or chunk.end == section.end
            or oversize_sentence_at(document, section, chunk.end, max_chars)
        ), chunk.text[-30:]
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def assert_body_covered(document: Document, chunks: list[Chunk]) -> None:
    """Every non-whitespace character of every section is in at least one chunk."""
    covered = bytearray(len(document.text))
    for chunk in chunks:
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    for section in parse_structure(document.text).sections:
        for offset in range(section.start, section.end):
            if not document.text[offset].isspace():
                assert covered[offset], repr(document.text[offset : offset + 30])


# --- the five real documents ---


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("max_chars", [500, 120])
def test_real_documents(prefix: str, max_chars: int) -> None:
    document = read_document(prefix)
    chunks = chunk_document(document, max_chars=max_chars, overlap_chars=max_chars // 6)
    assert chunks
    assert_chunk_invariants(document, chunks, max_chars)
    assert_body_covered(document, chunks)
    assert len({c.id for c in chunks}) == len(chunks)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_no_toc_line_in_any_chunk(prefix: str) -> None:
    for chunk in chunk_document(read_document(prefix)):
        for line in chunk.text.splitlines():
            assert not TOC_LINE_RE.search(line), line


def test_toc_entries_of_000_and_002_are_not_chunked() -> None:
    text_000 = "\n".join(c.text for c in chunk_document(read_document("000")))
    for entry in ("-11-", "- 2-", "-42-", "\n前 言\n"):
        assert entry not in text_000
    assert "目录" not in text_000.splitlines()
    text_002 = "\n".join(c.text for c in chunk_document(read_document("002")))
    for entry in ("八、确保规划的全面实施 50", "(一)取得的主要成就 1", "当前位置", "• 收藏"):
        assert entry not in text_002


def test_chapters_of_real_documents() -> None:
    chapters = {c.chapter for c in chunk_document(read_document("000"))}
    assert "七、建设现代产业体系,力促经济高质量发展 > (一)做大做强先进制造业" in chapters
    chapters = {c.chapter for c in chunk_document(read_document("001"))}
    assert "第一章发展基础与形势 > 第一节发展基础" in chapters
    chunks = chunk_document(read_document("004"))
    assert chunks[0].chapter == ""
    assert chunks[-1].chapter == "聚焦民生关切 创造富足安康的美好生活"
    assert "本报记者" not in chunks[-1].text


def test_real_chunks_are_idempotent() -> None:
    document = read_document("001")
    first, second = chunk_document(document), chunk_document(document)
    assert first == second
    chunk = first[3]
    key = f"{chunk.doc}\0{chunk.start}\0{chunk.end}\0{chunk.text}".encode()
    assert chunk.id == hashlib.sha256(key).hexdigest()[:16]
    assert (chunk.doc, chunk.region, chunk.title) == (document.meta.file, "某区", "某区规划")


# --- packing rules on synthetic text ---


def sentences(count: int, length: int) -> list[str]:
    """Distinct sentences of exactly ``length`` characters, each ending in 。."""
    return [f"第{i:02d}句" + "文" * (length - 5) + "。" for i in range(count)]


def test_a_section_that_fits_is_one_chunk() -> None:
    document = make_document("一、总则\n短正文。\n二、目标\n十个字的正文内容。")
    chunks = chunk_document(document)
    assert [(c.chapter, c.text) for c in chunks] == [
        ("一、总则", "短正文。"),
        ("二、目标", "十个字的正文内容。"),
    ]


def test_long_section_splits_at_sentences_with_overlap() -> None:
    body = "".join(sentences(12, 50))
    document = make_document("一、总则\n" + body)
    chunks = chunk_document(document, max_chars=200, overlap_chars=60)
    assert_chunk_invariants(document, chunks, 200)
    assert_body_covered(document, chunks)
    # Sentences 0-3, 3-6, 6-9, 9-11: each piece re-reads the previous piece's last sentence.
    assert [len(c.text) for c in chunks] == [200, 200, 200, 150]
    for before, after in itertools.pairwise(chunks):
        # The last sentence (50 chars ≤ 60) of a piece opens the next piece.
        assert after.text.startswith(before.text[-50:])


def test_no_overlap_when_the_last_sentence_is_longer_than_overlap() -> None:
    body = "".join(sentences(6, 100))
    document = make_document(body)
    chunks = chunk_document(document, max_chars=250, overlap_chars=80)
    assert [c.text for c in chunks] == [body[0:200], body[200:400], body[400:600]]


def test_pieces_prefer_paragraph_ends() -> None:
    first = "".join(sentences(3, 40))
    second = "".join(sentences(3, 40)[::-1])
    document = make_document(f"{first}\n{second}")
    chunks = chunk_document(document, max_chars=200, overlap_chars=0)
    assert [c.text for c in chunks] == [first, second]


def test_oversize_sentence_is_cut_after_commas() -> None:
    clause = "推动产业转型升级" * 5 + ","  # 41 characters
    sentence = clause * 20 + "完成目标。"
    document = make_document(sentence)
    chunks = chunk_document(document, max_chars=100, overlap_chars=0)
    assert "".join(c.text for c in chunks) == sentence
    assert all(c.text.endswith(",") for c in chunks[:-1])
    assert all(len(c.text) <= 100 for c in chunks)
    assert_chunk_invariants(document, chunks, 100)


def test_oversize_sentence_without_commas_is_hard_cut() -> None:
    sentence = "无标点" * 100 + "。"
    document = make_document(sentence)
    chunks = chunk_document(document, max_chars=120, overlap_chars=20)
    assert [len(c.text) for c in chunks] == [120, 120, 61]
    assert "".join(c.text for c in chunks) == sentence
    assert_chunk_invariants(document, chunks, 120)


def test_chunks_never_cross_sections() -> None:
    text = "一、甲\n" + "".join(sentences(5, 30)) + "\n二、乙\n" + "".join(sentences(5, 30))
    document = make_document(text)
    chunks = chunk_document(document, max_chars=100, overlap_chars=30)
    assert {c.chapter for c in chunks} == {"一、甲", "二、乙"}
    assert_chunk_invariants(document, chunks, 100)
    assert_body_covered(document, chunks)


def test_crlf_document_offsets_are_exact() -> None:
    text = "一、总则\r\n" + "\r\n".join(sentences(8, 45)) + "\r\n\r\n二、目标\r\n目标正文。\r\n"
    document = make_document(text)
    chunks = chunk_document(document, max_chars=100, overlap_chars=50)
    assert_chunk_invariants(document, chunks, 100)
    assert_body_covered(document, chunks)
    assert all(not c.text.endswith("\r") and not c.text.startswith("\n") for c in chunks)
    assert chunks[-1].text == "目标正文。"


def test_nbsp_lines_and_empty_documents() -> None:
    assert chunk_document(make_document("")) == []
    assert chunk_document(make_document("\xa0\n\u3000\r\n \n")) == []
    chunks = chunk_document(make_document("\xa0\n正文一。\n\xa0\n正文二。\n\xa0"))
    assert [c.text for c in chunks] == ["正文一。\n\xa0\n正文二。"]
    assert chunks[0].chapter == ""


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(InputError):
        chunk_document(make_document("正文。"), max_chars=0)
    with pytest.raises(InputError):
        chunk_document(make_document("正文。"), overlap_chars=-1)


# --- split_sentences ---


def test_split_sentences_offsets_and_closers() -> None:
    text = "  他说:“要发展。”然后呢?好!第三;\n最后一句没有标点"
    spans = split_sentences(text, start=100)
    pieces = [text[s - 100 : e - 100] for s, e in spans]
    assert pieces == ["他说:“要发展。”", "然后呢?", "好!", "第三;", "最后一句没有标点"]


def test_split_sentences_on_line_breaks_and_crlf() -> None:
    text = "第一段没有句号\r\n\r\n第二段。\n\xa0\n"
    assert [text[s:e] for s, e in split_sentences(text)] == ["第一段没有句号", "第二段。"]
    assert split_sentences("") == [] and split_sentences(" \n\xa0") == []


# --- randomised documents ---

FRAGMENTS = (
    "一、总则",
    "二、目标",
    "（一）甲",
    "(二)乙",
    "1、丙",
    "2.丁",
    "（1）戊",
    "第一章 总论",
    "第一节 现状",
    "专栏1 项目",
    "前 言",
    "目 录",
    "一、总则 1",
    "(一)甲 -3-",
    "- 4 -",
    "本报记者 张三",
    "当前位置: 首页 > 信息",
    "• 打印",
    "一是加强领导。",
    "(三)发展定位。高举旗帜,推动发展。",
    "推动产业转型升级,提高发展质量,",
    "实现目标。",
    "完成任务!",
    "是否可行?",
    "分号;",
    "没有标点的长句子" * 9,
    "\xa0",
    "\u3000",
    "",
    " ",
)


@pytest.mark.parametrize("seed", range(40))
def test_random_documents_keep_every_invariant(seed: int) -> None:
    rng = random.Random(seed)
    newline = rng.choice(["\n", "\r\n"])
    lines = [
        "".join(rng.choices(FRAGMENTS, k=rng.randint(1, 4))) for _ in range(rng.randint(0, 60))
    ]
    document = make_document(newline.join(lines))
    max_chars = rng.choice([20, 60, 150, 500])
    chunks = chunk_document(document, max_chars=max_chars, overlap_chars=rng.choice([0, 10, 80]))
    assert_chunk_invariants(document, chunks, max_chars)
    assert_body_covered(document, chunks)
