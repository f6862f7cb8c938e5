"""One HTML parse for the tests that prove document and question text cannot run in the UI."""

from __future__ import annotations

from html.parser import HTMLParser

#: Elements that can run code or load resources; none may come from data.
ACTIVE_TAGS = {"script", "img", "iframe", "object", "embed", "svg", "style", "link"}


class _StartTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def start_tags(markup: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag with its attributes, as a browser's parser would see them."""
    parser = _StartTags()
    parser.feed(markup)
    return parser.tags


def assert_no_active_content(markup: str) -> None:
    """No element or attribute from data can run: no script-bearing tags, handlers or URLs."""
    for tag, attrs in start_tags(markup):
        assert tag not in ACTIVE_TAGS, f"<{tag}> came from data"
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler {name}={value!r} on <{tag}>"
            assert not (value or "").strip().lower().startswith("javascript:")
