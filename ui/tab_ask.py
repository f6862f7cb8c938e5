"""The 问答 tab (chat with cited answers) and the public ``/ask`` API endpoint.

Every answer comes from :meth:`Pipeline.stream` (drafts while an LLM writes, then the verified
answer) or :meth:`Pipeline.ask` for ``/ask``; this module only renders them
(:mod:`ui.render`, which escapes everything). A turn that fails shows its error in the chat
instead of a toast, so the question and the reason stay together in the conversation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from planqa.corpus.errors import InputError, PlanqaError
from planqa.corpus.text_edges import valid_text
from planqa.rag.answer import Answer
from planqa.rag.pipeline import Conversation
from planqa.ui import render
from planqa.ui.messages import scrub_paths, user_message
from planqa.ui.shared import (
    BUSY,
    INTERNAL_ERROR,
    LiveHandlers,
    check_query_length,
    clean_text,
    log,
    private,
)

EXAMPLE_QUESTIONS = [
    "哪个区规划了集成电路测试产业园？",
    "海州区2020年人均地区生产总值是多少？",
    "港闸经济开发区2022年计划引进多少个重大项目？",
    "海门区未来五年的发展目标是什么？",
    "江阴高新区“十三五”期间重点发展哪些产业集群？",
]
ANSWER_MODE_CHOICES = [("抽取式（离线）", "extractive"), ("LLM 生成", "llm")]
CHAT_PLACEHOLDER = (
    "**请用中文提问**，例如“哪个区规划了集成电路测试产业园？”"
    "<br>回答中的 [1]、[2] 是引用编号，展开下方的引用即可核对原文。"
    "<br>可以连续追问（如“那它的GDP目标呢？”），"
    "点“清空对话”重新开始。"
)

Messages = list[dict[str, str]]


@dataclass
class ChatSession:
    """Per-browser-session chat state: the pipeline's Conversation and the rendered messages."""

    conversation: Conversation = field(default_factory=Conversation)
    messages: Messages = field(default_factory=list)


class AskHandlers(LiveHandlers):
    """The 问答 tab's handlers and ``/ask``; separate from the layout so tests can call them."""

    def chat(
        self, question: str, mode: str, region: str, session: ChatSession | None
    ) -> Iterator[tuple[Messages, ChatSession, str]]:
        """One chat turn; yields (messages, session, textbox) as the answer takes shape.

        In LLM mode the model's words are shown while they arrive, then replaced by the
        verified answer; in extractive mode there is one step.
        """
        session = session or ChatSession()
        pipeline = self.live.current()
        question, region = (clean_text(question) or "").strip(), clean_text(region)
        if not question:
            gr.Warning("请输入问题。", title="提示")
            yield list(session.messages), session, ""
            return
        too_long = check_query_length(question, pipeline.searcher.settings.max_query_chars)
        if too_long:
            # The question stays in the textbox, so the user can shorten it instead of retyping.
            gr.Warning(too_long, title="提示")
            yield list(session.messages), session, question
            return
        session.messages.append({"role": "user", "content": render.question_html(question)})
        session.messages.append({"role": "assistant", "content": render.pending_html()})
        yield list(session.messages), session, ""
        try:
            stages = pipeline.stream(
                question,
                mode=mode or "extractive",
                region=region or None,
                conversation=session.conversation,
            )
            for stage in stages:
                if isinstance(stage, Answer):
                    content = render.answer_html(stage)
                else:
                    content = render.draft_html(stage)
                session.messages[-1] = {"role": "assistant", "content": content}
                yield list(session.messages), session, ""
        except PlanqaError as exc:
            log.info("%s while answering: %s", type(exc).__name__, exc)
            message = render.error_html(user_message(exc))
            session.messages[-1] = {"role": "assistant", "content": message}
            yield list(session.messages), session, ""
        except Exception:
            log.exception("unexpected error while answering %r", question)
            session.messages[-1] = {
                "role": "assistant",
                "content": render.error_html(INTERNAL_ERROR),
            }
            yield list(session.messages), session, ""

    def clear_chat(self, session: ChatSession | None) -> tuple[Messages, ChatSession]:
        """Forget the conversation too, not just the display: a follow-up must not resolve
        against a turn the user no longer sees."""
        session = session or ChatSession()
        session.conversation.clear()
        session.messages.clear()
        return [], session

    def api_ask(
        self, question: str, region: str = "", mode: str = "extractive"
    ) -> tuple[str, dict[str, Any]]:
        """Answer a question about the planning documents, with numbered citations.

        Args:
            question: The question in Chinese, e.g. 哪个区规划了集成电路测试产业园？
            region: Only search this region (full name or alias); "" searches all regions.
            mode: "extractive" (offline, default) or "llm" (when the server has an LLM).

        Returns:
            The answer text with [n] citation markers (or 未在现有文件中找到相关内容), and the
            full answer as JSON: citations (n, doc, region, title, chapter, start, end, text,
            quote_start, quote_end), abstained, notice, retrieved passages, mode, latency_ms.
        """
        try:
            if not isinstance(question, str) or not question.strip():
                raise InputError("the question is empty")
            question = valid_text(question)
            answer = self.live.current().ask(
                question,
                mode=(mode or "extractive"),
                region=(clean_text(region) or "").strip() or None,
            )
        except PlanqaError as exc:
            # Scrubbed but not escaped: API callers read the text, no page renders it.
            raise gr.Error(scrub_paths(str(exc)), print_exception=False) from None
        except Exception:
            log.exception("unexpected error in /ask for %r", question)
            raise gr.Error(INTERNAL_ERROR, print_exception=False) from None
        return answer.answer, answer.to_dict()


@dataclass(frozen=True)
class AskTab:
    """The 问答 components the page wires beyond the tab (the index line refreshes regions)."""

    region: gr.Dropdown


def build_ask_tab(
    handlers: AskHandlers, region_choices: list[tuple[str, str]], llm_configured: bool
) -> AskTab:
    """The 问答 tab's layout and events; call inside ``gr.Tabs``."""
    with gr.Tab("问答", id="chat"):
        session = gr.State(None)  # a ChatSession, created by the first turn
        with gr.Row():
            with gr.Column(scale=4, min_width=480):
                chatbot = gr.Chatbot(
                    label="问答",
                    height=600,
                    sanitize_html=True,
                    latex_delimiters=[],
                    buttons=[],
                    feedback_options=None,
                    placeholder=CHAT_PLACEHOLDER,
                    elem_id="pq-chatbot",
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        placeholder="输入问题，按回车发送",
                        label="问题",  # hidden, but gradio's default "Textbox" reaches the page
                        show_label=False,
                        scale=6,
                        max_lines=4,
                        elem_id="pq-question",
                    )
                    send = gr.Button("发送", variant="primary", scale=1, min_width=90)
            with gr.Column(scale=1, min_width=260):
                region = gr.Dropdown(
                    region_choices, value="", label="地区范围", elem_id="pq-chat-region"
                )
                mode = gr.Radio(
                    ANSWER_MODE_CHOICES,
                    value="extractive",
                    label="回答方式",
                    visible=llm_configured,
                    elem_id="pq-chat-mode",
                )
                clear = gr.Button("清空对话", variant="secondary", size="md", elem_id="pq-clear")
                gr.Examples(
                    [[q] for q in EXAMPLE_QUESTIONS],
                    inputs=[question],
                    label="示例问题（点击填入）",
                    api_visibility="private",
                )
        turn = {
            "fn": handlers.chat,
            "inputs": [question, mode, region, session],
            "outputs": [chatbot, session, question],
        }
        question.submit(**turn, **private(**BUSY))
        send.click(**turn, **private(**BUSY))
        clear.click(handlers.clear_chat, [session], [chatbot, session], **private())
        # The chatbot's own trash icon must forget the context too, not just the display.
        chatbot.clear(handlers.clear_chat, [session], [chatbot, session], **private())
    return AskTab(region=region)
