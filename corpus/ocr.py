"""Text of scanned PDF pages, recognised offline with RapidOCR.

A scanned page has no text layer, so the PDF reader found nothing on it and the whole file was
refused ("no extractable text"). Such pages are rendered with pypdfium2 and read by RapidOCR
(``rapidocr-onnxruntime``, whose wheel carries the PP-OCRv4 Chinese detection and recognition
models as ONNX files: nothing is downloaded). The recognised lines become :class:`Line` objects
in page pixels, so the same paragraph rejoining as for text pages applies.

Recognition is slow (seconds a page on two cores), so each page has its own time limit
(``ocr_page_seconds``, checked between text lines: the lines read by then are kept and the page
is marked incomplete in the log), the file's ``max_parse_seconds`` still bounds the whole file,
and a progress bar counts pages when the loader runs in a terminal.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import cache
from statistics import fmean
from typing import Any

from planqa.corpus.errors import DocumentError
from planqa.corpus.guards import Deadline
from planqa.corpus.pdf_layout import Line

log = logging.getLogger(__name__)

#: Rendered pages are this many pixels on their longer side: ~170 dpi for A4, enough for 10.5 pt
#: text, and the size RapidOCR's detector reads without shrinking the image again.
RENDER_LONG_SIDE = 2000
#: Detected text lines are recognised with this much margin around them (pixels).
_PAD = 4
_lock = threading.Lock()


@dataclass(frozen=True)
class OcrPage:
    """One page read by OCR: its lines (pixel boxes), page size in pixels, mean confidence."""

    lines: list[Line]
    width: float
    height: float
    confidence: float
    complete: bool = True


def ocr_available() -> str | None:
    """None when OCR can run here, else why not (a message naming what to install)."""
    try:
        import pypdfium2  # noqa: F401
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"OCR needs rapidocr-onnxruntime and pypdfium2 ({exc}); pip install them"
    return None


@cache
def _engine() -> Any:
    """The recogniser, built once per process (loading its three models takes about a second)."""
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def render_page(document: Any, index: int) -> Any:
    """Page ``index`` of a pypdfium2 document as an RGB numpy array."""
    import numpy as np

    page = document[index]
    try:
        width, height = page.get_size()
        scale = RENDER_LONG_SIDE / max(width, height, 1)
        image = page.render(scale=scale).to_pil().convert("RGB")
    finally:
        page.close()
    return np.asarray(image)


def ocr_image(image: Any, source: str, page_seconds: float, deadline: Deadline) -> OcrPage:
    """The text lines on ``image`` (an RGB array), recognised within ``page_seconds``.

    Detection finds the text lines; each is then recognised on its own crop, so the page's
    clock and the file's deadline are checked between lines and a page stuck in a huge image
    stops at its limit with what it has read.
    """
    engine = _engine()
    started = time.monotonic()
    height, width = image.shape[:2]
    with _lock:  # one recogniser per process; onnxruntime already uses every core
        boxes, _ = engine(image, use_cls=False, use_rec=False)
        lines: list[Line] = []
        scores: list[float] = []
        complete = True
        for box in sorted(boxes or [], key=lambda b: (min(p[1] for p in b), min(p[0] for p in b))):
            deadline.check()
            if time.monotonic() - started > page_seconds:
                complete = False
                log.warning(
                    "%s: OCR of a page stopped after %.0f s (ocr_page_seconds); "
                    "the rest of the page is not read",
                    source,
                    page_seconds,
                )
                break
            x0, x1 = min(p[0] for p in box), max(p[0] for p in box)
            top, bottom = min(p[1] for p in box), max(p[1] for p in box)
            crop = image[
                max(0, int(top) - _PAD) : int(bottom) + _PAD,
                max(0, int(x0) - _PAD) : int(x1) + _PAD,
            ]
            if crop.size == 0:
                continue
            result, _ = engine(crop, use_det=False, use_cls=False)
            if not result:
                continue
            text, score = result[0][0], float(result[0][1])
            if not text.strip() or score < 0.5:
                continue
            size = bottom - top
            lines.append(Line(text.strip(), x0, x1, top, bottom, size))
            scores.append(score)
    return OcrPage(lines, float(width), float(height), fmean(scores) if scores else 0.0, complete)


def ocr_pages(
    data: bytes, indexes: list[int], source: str, page_seconds: float, deadline: Deadline
) -> dict[int, OcrPage]:
    """OCR of the pages ``indexes`` (0-based) of the PDF ``data``, with a progress bar."""
    missing = ocr_available()
    if missing:
        raise DocumentError(f"{source}: {len(indexes)} scanned page(s) without text; {missing}")
    import pypdfium2
    from tqdm import tqdm

    try:
        document = pypdfium2.PdfDocument(data)
    except Exception as exc:  # pdfium raises its own error types for damaged files
        raise DocumentError(f"{source}: cannot render the scanned pages ({exc})") from exc
    pages: dict[int, OcrPage] = {}
    try:
        bar = tqdm(indexes, desc=f"OCR {source[-40:]}", unit="页", disable=None, leave=False)
        for index in bar:
            deadline.check()
            pages[index] = ocr_image(render_page(document, index), source, page_seconds, deadline)
    finally:
        document.close()
    return pages
