// Exact money for display: optix.common.v1.Money is whole units plus nanos (10^-9), and every
// figure here is computed in BigInt nanos, so 0.1 + 0.2 is 0.30 and a large balance keeps its
// cents. Rounding (to cents for amounts, 4 places for prices) is half away from zero, done on
// integers; nothing passes through a float.
import type { Decimal, Money } from "../gen/optix/common/v1/money_pb.js";

const NANOS = 1_000_000_000n;

/** The amount in nanos (units x 10^9 + nanos); 0 when unset. */
export function moneyNanos(money: Money | undefined): bigint {
  if (money === undefined) return 0n;
  return money.units * NANOS + BigInt(money.nanos);
}

/** `nanos` rounded half away from zero to `places` decimals, as a decimal string ("-12.30"). */
function decimalText(nanos: bigint, places: number): string {
  const negative = nanos < 0n;
  const magnitude = negative ? -nanos : nanos;
  const step = 10n ** BigInt(9 - places);
  const rounded = (magnitude + step / 2n) / step;
  const scale = 10n ** BigInt(places);
  const whole = (rounded / scale).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const fraction = places > 0 ? `.${(rounded % scale).toString().padStart(places, "0")}` : "";
  const zero = rounded === 0n;
  return `${negative && !zero ? "-" : ""}${whole}${fraction}`;
}

/** How many decimals a price needs: 2, or up to 4 when the sub-cent digits are not zero. */
function pricePlaces(nanos: bigint): number {
  const magnitude = nanos < 0n ? -nanos : nanos;
  if (magnitude % 10_000_000n === 0n) return 2;
  if (magnitude % 1_000_000n === 0n) return 3;
  return 4;
}

const symbolOf = (currency: string): string => (currency === "USD" || currency === "" ? "$" : "");

/** "$1,234.56", "-$0.05", or "1,234.56 EUR" for currencies without a symbol here. */
function withCurrency(text: string, currency: string): string {
  const symbol = symbolOf(currency);
  if (symbol === "") return `${text} ${currency}`;
  return text.startsWith("-") ? `-${symbol}${text.slice(1)}` : `${symbol}${text}`;
}

/** An amount to the cent: "$12,345.67", "-$3.10". */
export function formatMoney(money: Money | undefined, currency = money?.currencyCode ?? ""): string {
  return withCurrency(decimalText(moneyNanos(money), 2), currency);
}

/** A profit or loss to the cent, always signed: "+$12.00", "-$3.10", "$0.00". */
export function formatChange(money: Money | undefined, currency = money?.currencyCode ?? ""): string {
  const text = formatMoney(money, currency);
  return moneyNanos(money) > 0n && decimalText(moneyNanos(money), 2) !== "0.00" ? `+${text}` : text;
}

/** A per-share price: cents, or up to 4 places when it has sub-cent digits ("$0.0125"). */
export function formatPrice(money: Money | undefined, currency = money?.currencyCode ?? ""): string {
  const nanos = moneyNanos(money);
  return withCurrency(decimalText(nanos, pricePlaces(nanos)), currency);
}

/** "up" for a gain, "down" for a loss (of at least half a cent), "" for flat. */
export function direction(money: Money | undefined): "up" | "down" | "" {
  const text = decimalText(moneyNanos(money), 2);
  if (text === "0.00") return "";
  return text.startsWith("-") ? "down" : "up";
}

/** An exact Decimal as written, grouped: "1,250", "-3", "0.5". */
export function formatQuantity(quantity: Decimal | undefined): string {
  const value = quantity?.value ?? "0";
  const match = /^([+-]?)(\d*)(\.\d+)?$/.exec(value);
  if (match === null) return value;
  const whole = (match[2] || "0").replace(/^0+(?=\d)/, "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${match[1] === "-" ? "-" : ""}${whole}${match[3] ?? ""}`;
}

/** A percentage for display only (the proto sends it as a double): "+5.25%", "-0.10%". */
export function formatPercent(percent: number): string {
  if (!Number.isFinite(percent)) return "";
  const text = percent.toFixed(2);
  if (text === "0.00" || text === "-0.00") return "0.00%";
  return `${percent > 0 ? "+" : ""}${text}%`;
}
