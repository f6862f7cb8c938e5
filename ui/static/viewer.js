// The document viewer (js_on_load of #pq-viewer; gradio provides `element` and `watch`).
// Brings the focused passage into view whenever a new one is shown. Retried briefly, because
// the 文档 tab may become visible in the same update that fills the viewer.
const reveal = () => {
  const target = element.querySelector('#pq-focus-anchor');
  if (target) target.scrollIntoView({block: 'center'});
};
const revealSoon = () => { reveal(); setTimeout(reveal, 150); setTimeout(reveal, 500); };
revealSoon();
watch('value', revealSoon);
