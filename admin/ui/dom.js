// A tiny DOM builder. Strings always become text nodes, never HTML: flag keys, route names,
// audit entries and error messages are user data.

// h('button', {class: 'primary', 'data-action': 'pause', onclick: fn}, 'Pause')
// Attributes that are null, undefined or false are left out; true gives an empty attribute;
// `value` and `checked` are set as properties; on<event> functions become listeners.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// A <select> with `options` (strings or [value, label]) and `selected` chosen.
export function select(attrs, options, selected) {
  const el = h('select', attrs, options.map((o) => {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    return h('option', { value }, label);
  }));
  if (selected !== undefined && selected !== null) el.value = selected;
  return el;
}

// The message of an API error, with the field path it names.
export function errorText(err) {
  return err.field ? `${err.message} (${err.field})` : err.message;
}

// Replaces the children of `el` (arrays flattened, null/false left out, strings as text).
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}
