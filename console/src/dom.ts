/** A tiny element builder: no framework, no HTML strings (text is always set as text, never parsed). */
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>
export type Child = Node | string | null | undefined | false

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value)
    else if (name === 'value' && 'value' in el) (el as HTMLInputElement).value = String(value)
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  append(el, ...children)
  return el
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) if (c !== null && c !== undefined && c !== false) parent.appendChild(typeof c === 'string' ? document.createTextNode(c) : c)
}

/** Replaces `parent`'s content. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild)
  append(parent, ...children)
}

let ids = 0
export const uid = (prefix: string) => `${prefix}-${++ids}`

/** A labelled form field: the label names the control (its accessible name). */
export function field(label: string, input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  input.id ||= uid('f')
  const hintEl = hint ? h('small', { id: uid('hint'), class: 'hint' }, hint) : null
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id)
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl)
}

/** A date for people: local date and time, or a dash. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
}

/** A status line announced to screen readers: errors as alerts, the rest politely. */
export function notice(kind: 'error' | 'ok', text: string): HTMLElement {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text)
}

/**
 * A modal confirmation (the native dialog: focus moves into it, Escape cancels, focus returns after).
 * Resolves true when `confirmLabel` was chosen.
 */
export function confirmDialog(title: string, body: Child[], confirmLabel: string, danger = false): Promise<boolean> {
  return new Promise((resolve) => {
    const opener = document.activeElement as HTMLElement | null
    const titleId = uid('dlg')
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel')
    const ok = h('button', { type: 'button', class: danger ? 'danger' : 'primary' }, confirmLabel)
    const dialog = h('dialog', { 'aria-labelledby': titleId }, h('h2', { id: titleId }, title), ...body, h('div', { class: 'actions' }, cancel, ok))
    let answer = false
    cancel.addEventListener('click', () => dialog.close())
    ok.addEventListener('click', () => { answer = true; dialog.close() })
    dialog.addEventListener('close', () => {
      dialog.remove()
      opener?.focus()
      resolve(answer)
    })
    document.body.appendChild(dialog)
    dialog.showModal()
    cancel.focus()
  })
}
