// Counts the page's calls of one streaming method (StreamQuotes unless told) from the browser's
// own network events, so a test can see that a refused symbol list made no call (or one that
// ended at once) and that sign-out ended every stream.
import type { Page, Request } from "playwright-core";

/** Open and total requests of one streaming method of one page. */
export class StreamWatch {
  total = 0;
  open = 0;
  private waiters: (() => void)[] = [];

  constructor(page: Page, method = "StreamQuotes") {
    const isStream = (request: Request): boolean => request.url().endsWith(`/${method}`);
    page.on("request", (request) => {
      if (!isStream(request)) return;
      this.total += 1;
      this.open += 1;
    });
    const ended = (request: Request) => {
      if (!isStream(request)) return;
      this.open -= 1;
      if (this.open === 0) for (const wake of this.waiters.splice(0)) wake();
    };
    page.on("requestfinished", ended);
    page.on("requestfailed", ended);
  }

  /** Resolves once no stream is open; rejects after `timeoutMs`. */
  async allClosed(timeoutMs: number): Promise<void> {
    if (this.open === 0) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push(resolve)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${this.open} stream(s) still open`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
