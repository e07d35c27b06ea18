// Unit tests of the demo app's money formatting (node:test): exact BigInt arithmetic, rounding
// half away from zero on integers, signs, grouping; nothing through a float.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { DecimalSchema, MoneySchema } from "../gen/optix/common/v1/money_pb.js";
import {
  direction,
  formatChange,
  formatMoney,
  formatPercent,
  formatPrice,
  formatQuantity,
  moneyNanos,
} from "../demo/money.js";

const usd = (units: bigint, nanos: number) =>
  create(MoneySchema, { currencyCode: "USD", units, nanos });

test("nanos are exact, even past 2^53", () => {
  assert.equal(moneyNanos(usd(9_007_199_254_740_993n, 1)), 9_007_199_254_740_993_000_000_001n);
  assert.equal(moneyNanos(usd(-3n, -100_000_000)), -3_100_000_000n);
  assert.equal(moneyNanos(undefined), 0n);
  // 0.1 + 0.2 in nanos is 0.3, not 0.30000000000000004.
  const sum = moneyNanos(usd(0n, 100_000_000)) + moneyNanos(usd(0n, 200_000_000));
  assert.equal(sum, 300_000_000n);
});

test("amounts to the cent, rounded half away from zero, grouped", () => {
  assert.equal(formatMoney(usd(1234567n, 890_000_000)), "$1,234,567.89");
  assert.equal(formatMoney(usd(0n, 5_000_000)), "$0.01");
  assert.equal(formatMoney(usd(0n, 4_999_999)), "$0.00");
  assert.equal(formatMoney(usd(0n, -5_000_000)), "-$0.01");
  assert.equal(formatMoney(usd(0n, -4_999_999)), "$0.00"); // no "-$0.00"
  assert.equal(formatMoney(usd(-382n, 0)), "-$382.00");
  assert.equal(formatMoney(usd(9_007_199_254_740_993n, 0)), "$9,007,199,254,740,993.00");
  assert.equal(formatMoney(create(MoneySchema, { currencyCode: "EUR", units: 5n })), "5.00 EUR");
});

test("changes are signed and coloured", () => {
  assert.equal(formatChange(usd(12n, 0)), "+$12.00");
  assert.equal(formatChange(usd(-3n, -100_000_000)), "-$3.10");
  assert.equal(formatChange(usd(0n, 0)), "$0.00");
  assert.equal(formatChange(usd(0n, 1_000_000)), "$0.00");
  assert.equal(direction(usd(0n, 5_000_000)), "up");
  assert.equal(direction(usd(0n, -5_000_000)), "down");
  assert.equal(direction(usd(0n, 4_000_000)), "");
});

test("prices keep sub-cent digits up to 4 places", () => {
  assert.equal(formatPrice(usd(190n, 0)), "$190.00");
  assert.equal(formatPrice(usd(165n, 35_000_000)), "$165.035");
  assert.equal(formatPrice(usd(0n, 12_500_000)), "$0.0125");
  assert.equal(formatPrice(usd(0n, 12_345_678)), "$0.0123");
  assert.equal(formatPrice(usd(0n, 12_355_000)), "$0.0124");
});

test("quantities are shown as written, grouped", () => {
  const q = (value: string) => create(DecimalSchema, { value });
  assert.equal(formatQuantity(q("1250")), "1,250");
  assert.equal(formatQuantity(q("-3")), "-3");
  assert.equal(formatQuantity(q("27.5")), "27.5");
  assert.equal(formatQuantity(q("0.0003")), "0.0003");
  assert.equal(formatQuantity(undefined), "0");
});

test("percentages are display-only doubles", () => {
  assert.equal(formatPercent(5.254), "+5.25%");
  assert.equal(formatPercent(-0.001), "0.00%");
  assert.equal(formatPercent(-79.28), "-79.28%");
  assert.equal(formatPercent(Number.NaN), "");
});
