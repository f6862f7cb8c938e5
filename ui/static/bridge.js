// The click bridge (js_on_load of the hidden #pq-bridge gr.HTML; gradio provides `trigger`).
// Catches clicks on "在文档中查看" links anywhere on the page (chat messages are sanitised
// Markdown, so they cannot carry their own handlers) and asks the server to open the viewer.
// Ctrl/Cmd/middle clicks are left alone: they open the same link as a deep link in a new tab.
window.__planqaOpen = (detail) => trigger('open_passage', detail);
if (!window.__planqaOpenBound) {
  window.__planqaOpenBound = true;
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('a.pq-open') : null;
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const url = new URL(link.getAttribute('href') || '', window.location.href);
    if (!url.searchParams.has('planqa_doc')) return;
    event.preventDefault();
    event.stopPropagation();
    const detail = {};
    for (const key of ['planqa_doc', 'planqa_start', 'planqa_end', 'planqa_qs', 'planqa_qe']) {
      detail[key] = url.searchParams.get(key) || '';
    }
    window.__planqaOpen(detail);
  }, true);
}
