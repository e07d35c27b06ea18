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

/** A fresh idempotency key (a UUID) for a create's request_id; crypto.randomUUID exists only in
 * secure contexts. */
export function newRequestId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const part = (from: number, to?: number) => hex.slice(from, to);
  return `${part(0, 8)}-${part(8, 12)}-${part(12, 16)}-${part(16, 20)}-${part(20)}`;
}
