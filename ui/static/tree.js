// The chapter tree (js_on_load of #pq-tree; gradio provides `element` and `watch`).
// A click scrolls the viewer to the heading (no server round trip); a newly shown tree scrolls
// itself (not the page) to the chapter of the focused passage.
const showCurrent = () => {
  const nav = element.querySelector('.pq-tree');
  const current = element.querySelector('.pq-current');
  if (nav && current) nav.scrollTop = Math.max(0, current.offsetTop - nav.clientHeight / 3);
};
const showSoon = () => {
  showCurrent();
  setTimeout(showCurrent, 150);
  setTimeout(showCurrent, 500);
};
showSoon();
watch('value', showSoon);
element.addEventListener('click', (event) => {
  const link = event.target instanceof Element ? event.target.closest('a[data-pos]') : null;
  if (!link) return;
  event.preventDefault();
  const target = document.getElementById('pq-pos-' + link.dataset.pos);
  if (target) target.scrollIntoView({block: 'start', behavior: 'smooth'});
});
