// soranb's on-screen click: a click on one of the view's named buttons is caught before the button sees
// it and sent to the kernel in one message with what the page shows at that moment (the named fields'
// values and the named texts), so the kernel spends on the text on screen, not on a text still queued
// behind ipywidgets' sync throttle. Nothing here writes to the page.

function read(root, selectors, pick) {
  const out = {};
  for (const [name, selector] of Object.entries(selectors || {})) {
    const node = root.querySelector(selector);
    if (node) out[name] = pick(node);
  }
  return out;
}

function render({ model, el }) {
  el.classList.add("soranb-onscreen");

  function onClick(event) {
    const scopeClass = model.get("scope");
    const root = el.closest(`.${scopeClass}`);
    const target = event.target instanceof Element ? event.target : null;
    if (!root || !target || target.closest(`.${scopeClass}`) !== root) return;
    const button = (model.get("buttons") || []).find((name) => {
      const hit = target.closest(`button.${name}`);
      return hit && root.contains(hit);
    });
    if (!button) return;
    event.stopImmediatePropagation(); // this message is the click: the Button's own would carry old text
    event.preventDefault();
    // A click on the icon inside a disabled button still reaches the Button's listener: a disabled one does nothing.
    if (target.closest(`button.${button}`).disabled) return;
    model.send({
      event: "click",
      button,
      fields: read(root, model.get("fields"), (node) => String(node.value ?? "")),
      shown: read(root, model.get("shown"), (node) => node.textContent || ""),
    });
  }

  // On the document, in the capture phase: before the button's own listener, wherever the view is attached.
  document.addEventListener("click", onClick, true);
  return () => document.removeEventListener("click", onClick, true);
}

export default { render };
