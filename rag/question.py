"""Understanding a question before searching: which regions it names, what kind of answer it wants,
and which words carry its content.

Question words (哪个/多少/是否…) are structure, not content: an answer sentence never contains them,
so they are removed before measuring how much of the question a sentence covers.

The text check and the region finding are search's own (:class:`~index.query.QueryAnalyzer`):
the analysis starts from the :class:`~index.query.SearchQuery` search will read and hands it back
as :attr:`QuestionAnalysis.query`, so a question is checked and scanned for regions once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from planqa.index.query import SearchQuery
from planqa.index.search import HybridSearcher
from planqa.rag.constraints import Constraints, CorpusNames, question_constraints

#: "Which region/zone/where" questions want a region as the answer.
_ASKS_REGION = re.compile(
    r"哪(个|些|一个|两个|几个)?(区|地区|地方|开发区|高新区|园区|县|市|城市|省|省份|自治区|边|里)"
    r"|哪儿|何地|谁"
)
_ASKS_NUMBER = re.compile(r"多少|(?<!哪)几|比重|比例|占比|增速|增长率|目标值|达到.*?[？?]$|规模")
_ASKS_LIST = re.compile(r"哪些|有哪|包括什么|分别")
_COMPARES = re.compile(
    r"相比|比较|更高|更多|更大|更低|更少|哪边|谁|都提出|两个地区|共同|差距|相差|之差"
)
#: "几位/多少家/多少亿元/多少万人/几个百分点…": the unit the answer's number carries (a
#: magnitude 万/亿 before it is part of the number, as in 13.88亿元).
_COUNTED = re.compile(
    r"(?<!哪)(?:几|多少)\s*(?:个\s*)?(百分点)"
    r"|(?<!哪)(?:几|多少)\s*[万亿千百]?\s*(美元|元|人次|人|吨|公里|千米|千瓦时|千瓦|平方公里|平方米|公顷|亩"
    r"|辆|户|座|所|家|个|项|条|处|件|台|套|批|次|倍|位|名|微克|标准箱|张)"
)
#: Words for which one unit stands: a person is counted as 人, 位 or 名 alike.
_SAME_COUNT = ("人", "位", "名")
_ASKS_AMOUNT = re.compile(r"多少|多大|几")
#: "哪一年/何时…实现": the answer is a year (「到2050年，乡村全面振兴」), not an amount.
_ASKS_YEAR = re.compile(r"哪一?年|何年|何时|什么时候|什么时间|哪个年份")
_ASKS_SHARE = re.compile(r"比例|比重|占比|百分之|百分点|率")
_ASKS_AREA = re.compile(r"面积|平方公里|平方米|亩|公顷")
SHARE_UNITS = ("%", "％", "百分点")
YEAR_UNITS = ("年",)
AREA_UNITS = ("平方公里", "平方米", "万亩", "亩", "公顷")
#: Tokens that shape a question but never appear in its answer.
QUESTION_WORDS = frozenset(
    """哪个 哪些 哪里 哪边 哪 个 些 什么 多少 几 是否 如何 怎样 怎么 谁
    吗 呢 么 请问 提出 计划 规划 地区 地方 要 的 了 是 在 有 和 与
    及 都 到 中 里 为 对 把 被 将 会 能 该 其 它 那 这 哪一类 一类
    类 相比 比较 更 更高 更多 分别 共同 两个 两 出现 材料 提法 期间 哪一年 哪年 一年
    何时 什么时候 时间节点
    是多少 多少家 多少个 开发区 开发 高新区 全区 今年 多大 多 大""".split()
)
#: A follow-up leans on the previous turn: pronouns, or a bare "…呢？".
_FOLLOW_UP = re.compile(r"^(那|那么|还有|另外|它|其|该区|该地|这个区|他们)|[它其]的|呢[？?]?$")


@dataclass(frozen=True)
class QuestionAnalysis:
    """What answering needs to know about a question; ``text`` and ``regions`` are search's."""

    text: str
    regions: tuple[str, ...]
    asks_region: bool
    asks_number: bool
    asks_list: bool
    compares: bool
    keywords: tuple[str, ...]
    #: Units the answer's number must carry ("几位" → 人/位/名, "多大比例" → %); empty when the
    #: question does not say (a money amount may be written 700亿 or 700亿元).
    answer_units: tuple[str, ...] = ()
    #: The years and places an answer must keep to (see rag.constraints).
    constraints: Constraints = field(default_factory=Constraints)

    @property
    def asks_year(self) -> bool:
        """The answer is a year: its sentence states one, and no indicator figure is sought."""
        return self.answer_units == YEAR_UNITS

    @property
    def query(self) -> SearchQuery:
        """The question as search reads it, so search need not check it or find its regions."""
        return SearchQuery(self.text, self.regions)


class QuestionAnalyzer:
    """Uses the index's own region names and tokenizer, so analysis and search agree on words."""

    def __init__(self, searcher: HybridSearcher) -> None:
        self.searcher = searcher
        self._names = CorpusNames([document.meta for document in searcher.documents.values()])

    def analyse(self, question: str) -> QuestionAnalysis:
        query = self.searcher.analyse_query(question)
        text, regions = query.text, query.regions
        units = answer_units(text)
        return QuestionAnalysis(
            text=text,
            regions=regions,
            asks_region=bool(_ASKS_REGION.search(text)) and len(regions) != 1,
            asks_number=bool(_ASKS_NUMBER.search(text)) or bool(units),
            asks_list=bool(_ASKS_LIST.search(text)),
            compares=len(regions) >= 2 or (bool(_COMPARES.search(text)) and len(regions) != 1),
            keywords=self.keywords(text),
            answer_units=units,
            constraints=question_constraints(text, regions, self._names),
        )

    def keywords(self, text: str) -> tuple[str, ...]:
        """Content tokens: the question with the regions it names and its question words removed.

        Region names are cut out of the text before tokenising, so their pieces (南通, 开发) do not
        count as content, while the same words elsewhere in the question still do.
        """
        tokens = self.searcher.tokenizer.tokenize(self.searcher.region_names.without_names(text))
        return tuple(dict.fromkeys(t for t in tokens if t not in QUESTION_WORDS))

    def resolve_follow_up(self, question: str, previous: QuestionAnalysis | None) -> str:
        """Make a follow-up self-contained using the previous turn's regions and topic.

        "那它的GDP目标呢？" after a question about 海州区 becomes
        "连云港市海州区 那它的GDP目标呢？";
        "海门区呢？" after a question about GDP targets borrows that question's content words.
        """
        if previous is None:
            return question
        text = question.strip()
        regions = self.searcher.region_names.mentioned(text)
        content = self.keywords(text)
        if not regions and previous.regions and (_FOLLOW_UP.search(text) or len(content) <= 3):
            text = " ".join(previous.regions) + " " + text
        if regions and len(content) <= 1 and previous.keywords:
            text = text + " " + "".join(previous.keywords)
        return text


def answer_units(question: str) -> tuple[str, ...]:
    """The units a numeric answer to ``question`` is written with, when the wording fixes them.

    >>> answer_units("请来了几位诺奖获得者？"), answer_units("多大比例的幼儿园由政府举办？")
    (('人', '位', '名'), ('%', '％', '百分点'))
    >>> answer_units("实际利用外资累计多少？"), answer_units("乡村全面振兴在哪一年实现？")
    ((), ('年',))
    """
    if _ASKS_YEAR.search(question):
        return YEAR_UNITS
    counted = _COUNTED.search(question)
    if counted:
        unit = counted.group(1) or counted.group(2)
        if unit == "百分点":
            return SHARE_UNITS
        return _SAME_COUNT if unit in _SAME_COUNT else (unit,)
    if not _ASKS_AMOUNT.search(question):
        return ()
    if _ASKS_SHARE.search(question):
        return SHARE_UNITS
    if _ASKS_AREA.search(question):
        return AREA_UNITS
    return ()
