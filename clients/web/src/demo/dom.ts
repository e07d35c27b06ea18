// Small DOM helpers shared by the demo app's modules.
import { Code, ConnectError } from "@connectrpc/connect";

/** The element with this id; throws when the markup lacks it (a bug, not a user error). */
export function el<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`missing #${id}`);
  return element as T;
}

/** A new element with properties and data-* attributes. */
export function make<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  data: Record<string, string> = {},
): HTMLElementTagNameMap[K] {
  const element = Object.assign(document.createElement(tag), props);
  const dataset: DOMStringMap = element.dataset;
  for (const [key, value] of Object.entries(data)) dataset[key] = value;
  return element;
}

/** A screen's root section, hidden, added to the page's #screens; its markup (static, never
 * user data) is parsed from `html`, so the module can look its elements up by id at once. */
export function section(id: string, testid: string, html: string): HTMLElement {
  const root = make("section", { id, className: "panel screen", hidden: true }, { testid });
  root.innerHTML = html;
  el("screens").append(root);
  return root;
}

/** "InvalidArgument: the request has invalid fields" — the fallback text of a failed call. */
export function describe(error: unknown): string {
  const e = ConnectError.from(error);
  return `${Code[e.code]}: ${e.rawMessage}`;
}

/** Formats a price-like number, "" when it is not finite. */
export const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : "");
