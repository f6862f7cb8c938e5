"""Measure how fast planqa reads PDFs and OCRs scans, and the memory of indexing a long PDF.

Run from the repository root (numbers go to stdout as JSON, and are quoted in
docs/file-formats.md):

    .venv/bin/python bench/file_formats_bench.py            # all three measurements
    .venv/bin/python bench/file_formats_bench.py --no-index # skip the 200-page index build

1. Text PDFs: the five bundled documents drawn as PDFs (reportlab, a header and page number on
   every page), read by ``read_document``: pages per second.
2. OCR: a PDF of scanned pages (text drawn onto 200-dpi images): pages per second.
3. A 200-page PDF indexed by ``planqa index`` in a child process: its wall time and peak RSS
   (the child's ``ru_maxrss``), against the same text as a .txt indexed the same way.

The PDFs are made in a temporary folder, so nothing is fetched or kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_file_formats_fixtures import scanned_pdf, text_pdf  # noqa: E402

from planqa.corpus.loader import read_document  # noqa: E402
from planqa.corpus.settings import Settings  # noqa: E402

BUNDLED = ROOT / "corpus" / "documents"


def text_pdfs(folder: Path) -> dict[str, float]:
    pages = seconds = 0.0
    for source in sorted(BUNDLED.glob("*.txt")):
        path = folder / f"{source.stem}.pdf"
        pages += text_pdf(path, source.read_text(encoding="utf-8").splitlines(), header="页眉")
        started = time.perf_counter()
        read_document(path, {}, Settings())
        seconds += time.perf_counter() - started
    return {"pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 1)}


def ocr(folder: Path, count: int = 5) -> dict[str, float]:
    lines = [
        line
        for line in (BUNDLED / "004_99a6b245d6293f07.txt").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    pages = [[line[:30] for line in lines[i * 25 : (i + 1) * 25]] for i in range(count)]
    path = folder / "scan.pdf"
    scanned_pdf(path, pages)
    read_document(path, {}, Settings())  # loads the models once, as a build does
    started = time.perf_counter()
    document = read_document(path, {}, Settings())
    seconds = time.perf_counter() - started
    return {
        "pages": count,
        "seconds": round(seconds, 2),
        "pages_per_s": round(count / seconds, 2),
        "characters": len(document.text),
    }


def index_long_pdf(folder: Path, pages: int = 200) -> dict[str, float]:
    """Index a ``pages``-page PDF (the bundled texts, repeated) and the same text as a .txt,
    each by ``planqa index`` in a child process of its own: seconds and peak RSS of each."""
    text = "\n".join(
        source.read_text(encoding="utf-8") for source in sorted(BUNDLED.glob("*.txt"))
    ).splitlines()
    probe = folder / "probe.pdf"
    repeated = text * 3
    share = pages / text_pdf(probe, repeated, header="页眉")
    lines = repeated[: int(len(repeated) * share)]
    results: dict[str, float] = {}
    for kind in ("pdf", "txt"):
        corpus = folder / f"long-{kind}"
        corpus.mkdir()
        if kind == "pdf":
            results["pages"] = text_pdf(corpus / "long.pdf", lines, header="页眉")
        else:
            (corpus / "long.txt").write_text("\n".join(lines), encoding="utf-8")
        results.update(_index(folder, corpus, kind))
    return results


def _index(folder: Path, corpus: Path, kind: str) -> dict[str, float]:
    code = (
        "import resource, sys; from planqa.ui.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    env = {**os.environ, "PLANQA_CACHE_DIR": str(folder / f"cache-{kind}")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, "index", str(corpus), "--index", str(folder / f"i-{kind}")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"planqa index failed: {done.stderr[-2000:]}")
    peak = int(done.stderr.strip().splitlines()[-1]) / 1024
    return {f"{kind}_index_seconds": round(seconds, 1), f"{kind}_peak_rss_mib": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-index", action="store_true", help="skip the 200-page index build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="planqa-bench-") as name:
        folder = Path(name)
        results = {"cpus": os.cpu_count(), "text_pdf": text_pdfs(folder), "ocr": ocr(folder)}
        if not args.no_index:
            results["index_200_page_pdf"] = index_long_pdf(folder)
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
