// What the layout tests measure in the page: sideways overflow of the document, controls a
// finger cannot hit (another element on top at their centre) and controls smaller than 44 px.
import type { Page } from "playwright-core";

/** One screen's layout, as the Python test asserts on it. */
export interface LayoutReport {
  screen: string;
  viewportWidth: number;
  scrollWidth: number;
  clientWidth: number;
  /** Visible controls measured (buttons, inputs, selects, links, summaries). */
  controls: number;
  /** Controls whose centre, scrolled into view, hits another element. */
  blocked: string[];
  /** Controls less than `minTarget` px tall or wide. */
  small: string[];
  /** The header's email fits in the header and the viewport. */
  whoFits: boolean;
}

/** Measure the page as it is now; `minTarget` is 44 on a phone (0: not checked). */
export async function measureLayout(page: Page, screen: string, minTarget: number): Promise<LayoutReport> {
  const report = await page.evaluate((min) => {
    const name = (el: Element): string => {
      const h = el as HTMLElement;
      const id = h.dataset.testid ?? h.id ?? "";
      const text = (h.textContent ?? "").trim().slice(0, 24);
      return `${el.tagName.toLowerCase()}${id ? `[${id}]` : ""}${text ? ` "${text}"` : ""}`;
    };
    const visible = (el: Element): boolean => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.height > 0 && el.checkVisibility({ visibilityProperty: true });
    };
    const controls = [
      ...document.querySelectorAll("button, input:not([type=hidden]), select, textarea, a[href], summary"),
    ].filter(visible);
    const blocked: string[] = [];
    const small: string[] = [];
    for (const control of controls) {
      control.scrollIntoView({ block: "center", inline: "center" });
      const r = control.getBoundingClientRect();
      const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      if (hit === null || !(hit === control || control.contains(hit))) {
        blocked.push(`${name(control)} under ${hit ? name(hit) : "nothing"}`);
      }
      if (min > 0 && (r.height < min || r.width < min)) {
        small.push(`${name(control)} ${r.width.toFixed(0)}x${r.height.toFixed(0)}`);
      }
    }
    window.scrollTo(0, 0);
    const doc = document.documentElement;
    const header = document.querySelector("header");
    const who = document.querySelector("[data-testid=who]")?.getBoundingClientRect();
    const whoFits =
      header !== null &&
      header.scrollWidth <= header.clientWidth &&
      (who === undefined || (who.left >= 0 && who.right <= window.innerWidth));
    return {
      viewportWidth: window.innerWidth,
      scrollWidth: doc.scrollWidth,
      clientWidth: doc.clientWidth,
      controls: controls.length,
      blocked,
      small,
      whoFits,
    };
  }, minTarget);
  return { screen, ...report };
}
