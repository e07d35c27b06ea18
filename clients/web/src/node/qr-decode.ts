// Reads the QR code an SVG on the page shows, as a phone's camera would: the SVG is drawn on a
// canvas in the page, its pixels decoded here with jsQR.
import jsQRModule from "jsqr";
import type { Page } from "playwright-core";

// jsqr is a CommonJS bundle whose module.exports carries the function as `default`.
type Decode = (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
const jsQR: Decode =
  (jsQRModule as unknown as { default?: Decode }).default ?? (jsQRModule as unknown as Decode);

const PIXELS = 360;

/** The text of the QR code drawn by the SVG at `selector`, or null when none can be read. */
export async function decodeQr(page: Page, selector: string): Promise<string | null> {
  const base64 = await page.evaluate(
    async ([sel, px]) => {
      const source = document.querySelector(sel);
      if (source === null) throw new Error(`no ${sel}`);
      const svg = source.cloneNode(true) as SVGSVGElement;
      svg.setAttribute("width", String(px));
      svg.setAttribute("height", String(px));
      const image = new Image();
      image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(new XMLSerializer().serializeToString(svg))}`;
      await image.decode();
      const canvas = document.createElement("canvas");
      canvas.width = px;
      canvas.height = px;
      const context = canvas.getContext("2d");
      if (context === null) throw new Error("no 2d canvas");
      context.drawImage(image, 0, 0, px, px);
      const data = context.getImageData(0, 0, px, px).data;
      let binary = "";
      for (let i = 0; i < data.length; i += 0x8000) {
        binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
      }
      return btoa(binary);
    },
    [selector, PIXELS] as const,
  );
  const pixels = new Uint8ClampedArray(Buffer.from(base64, "base64"));
  return jsQR(pixels, PIXELS, PIXELS)?.data ?? null;
}
