// Field violations shown next to the field they name: a form binds each request field path
// ("email", "totp_code", "symbols") to its input and an error box beside it; a failed call's
// google.rpc.BadRequest violations ("symbols[1]: ticker must ...") land in those boxes, and
// whatever names no bound field goes to the form's general box.
import { Code } from "@connectrpc/connect";
import { type FieldViolation, optixError } from "../errors.js";

interface Bound {
  input: HTMLElement;
  box: HTMLElement;
}

/** Names element `index` of a repeated field for the user, e.g. the symbol typed at that place. */
export type ItemLabel = (index: number) => string | undefined;

/** One line a person can act on, for a failed call that has no field to point at. */
export function explain(error: unknown): string {
  const info = optixError(error);
  if (info.code === Code.ResourceExhausted && info.retryDelayMs !== undefined) {
    return `${info.message}: try again in ${Math.ceil(info.retryDelayMs / 1000)} s`;
  }
  if (info.code === Code.Unavailable || info.code === Code.Unknown) {
    // fetch() failures surface as Unknown/Unavailable with the browser's terse text.
    return `Cannot reach the server (${info.message || info.codeName})`;
  }
  return info.message ? `${info.message} (${info.codeName})` : info.codeName;
}

/** The bound path a violation's field belongs to, and the element index it names if any. */
function candidates(field: string): { paths: string[]; index?: number } {
  const indexed = /^(.*)\[(\d+)\]$/.exec(field);
  const base = indexed ? indexed[1] : field;
  const paths = [field, base, base.split(".")[0], base.split(".").at(-1) ?? base];
  return { paths, index: indexed ? Number(indexed[2]) : undefined };
}

/** The error boxes of one form. */
export class FieldErrors {
  private readonly fields = new Map<string, Bound>();

  constructor(private readonly general?: HTMLElement) {}

  /** Show violations of request field `path` (and of its elements `path[i]`) in `box`. */
  bind(path: string, input: HTMLElement, box: HTMLElement): this {
    this.fields.set(path, { input, box });
    if (box.id) input.setAttribute("aria-describedby", box.id);
    return this;
  }

  /** Put `text` next to the field bound to `path` ("" clears it). */
  set(path: string, text: string): void {
    const bound = this.fields.get(path);
    if (bound === undefined) throw new Error(`no field bound to ${path}`);
    bound.box.textContent = text;
    if (text) bound.input.setAttribute("aria-invalid", "true");
    else bound.input.removeAttribute("aria-invalid");
  }

  /** Put `text` in the form's general box ("" clears it). */
  note(text: string): void {
    if (this.general) this.general.textContent = text;
  }

  /** Empty every box of the form. */
  clear(): void {
    for (const path of this.fields.keys()) this.set(path, "");
    this.note("");
  }

  /** Violations next to their fields (replacing what was shown); the rest in the general box.
   * Returns whether at least one was placed next to a field. */
  showViolations(violations: readonly FieldViolation[], label?: ItemLabel): boolean {
    this.clear();
    const lines = new Map<string, string[]>();
    const unplaced: string[] = [];
    for (const { field, description } of violations) {
      const { paths, index } = candidates(field);
      const path = paths.find((p) => this.fields.has(p));
      if (path === undefined) {
        unplaced.push(field ? `${field}: ${description}` : description);
        continue;
      }
      const item = index === undefined ? undefined : label?.(index) || `item ${index + 1}`;
      lines.set(path, [...(lines.get(path) ?? []), item ? `${item}: ${description}` : description]);
    }
    for (const [path, texts] of lines) this.set(path, texts.join("; "));
    this.note(unplaced.join("; "));
    return lines.size > 0;
  }

  /** A failed call: its field violations next to their fields, otherwise `explain(error)` in
   * the general box. Returns whether something was placed next to a field. */
  showError(error: unknown, label?: ItemLabel): boolean {
    const { fieldViolations } = optixError(error);
    if (fieldViolations.length > 0) return this.showViolations(fieldViolations, label);
    this.clear();
    this.note(explain(error));
    return false;
  }
}
