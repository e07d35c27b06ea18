// Unit tests of the token session (node:test): refresh before expiry, one refresh at a time.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type TokenPair, TokenPairSchema } from "../gen/optix/user/v1/user_pb.js";
import { Session } from "../session.js";

function pair(n: number, accessExpiresAtMs: number): TokenPair {
  return create(TokenPairSchema, {
    accessToken: `access-${n}`,
    accessTokenExpireTime: timestampFromMs(accessExpiresAtMs),
    refreshToken: `refresh-${n}`,
    refreshTokenExpireTime: timestampFromMs(accessExpiresAtMs + 86_400_000),
  });
}

test("a fresh token is used as is", async () => {
  let now = 1_000_000;
  const session = new Session(30_000, () => now);
  session.set(pair(1, now + 900_000));
  session.refresher = async () => assert.fail("no refresh expected");
  assert.equal(await session.accessToken(), "access-1");
  now += 60_000;
  assert.equal(await session.accessToken(), "access-1");
});

test("concurrent callers near expiry share one refresh", async () => {
  let now = 1_000_000;
  const session = new Session(30_000, () => now);
  session.set(pair(1, now + 900_000));
  let refreshes = 0;
  session.refresher = async (token) => {
    refreshes += 1;
    assert.equal(token, "refresh-1");
    await new Promise((resolve) => setImmediate(resolve));
    return pair(2, now + 900_000);
  };
  now += 900_000 - 10_000; // inside the 30 s margin
  const tokens = await Promise.all(Array.from({ length: 10 }, () => session.accessToken()));
  assert.equal(refreshes, 1);
  assert.deepEqual(new Set(tokens), new Set(["access-2"]));
});

test("a failed refresh signs the session out", async () => {
  let now = 1_000_000;
  const session = new Session(30_000, () => now);
  session.set(pair(1, now + 1_000));
  session.refresher = async () => {
    throw new Error("UNAUTHENTICATED");
  };
  await assert.rejects(session.accessToken(), /UNAUTHENTICATED/);
  assert.equal(session.signedIn, false);
});
