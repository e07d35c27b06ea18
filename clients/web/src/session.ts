// Token handling for browsers and Node: attach the bearer token, refresh it before it expires,
// and never run two refreshes at once (concurrent calls share the same in-flight promise).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Interceptor } from "@connectrpc/connect";
import type { TokenPair } from "./gen/optix/user/v1/user_pb.js";

/** RPCs that never carry a token (sign-in, key discovery and health checks). */
export const PUBLIC_METHODS: ReadonlySet<string> = new Set([
  "optix.user.v1.UserService/Register",
  "optix.user.v1.UserService/Login",
  "optix.user.v1.UserService/CompleteMfaLogin",
  "optix.user.v1.UserService/RefreshToken",
  "optix.user.v1.UserService/GetJwks",
  "grpc.health.v1.Health/Check",
  "grpc.health.v1.Health/Watch",
  "grpc.health.v1.Health/List",
]);

/** What a session remembers between calls. */
export interface StoredTokens {
  accessToken: string;
  accessExpiresAt: number; // epoch ms
  refreshToken: string;
  refreshExpiresAt: number; // epoch ms
}

/** Exchanges a refresh token for a new pair (the UserService.RefreshToken call). */
export type Refresher = (refreshToken: string) => Promise<TokenPair>;

/** Converts the wire TokenPair into what the session stores. */
export function toStored(tokens: TokenPair): StoredTokens {
  return {
    accessToken: tokens.accessToken,
    accessExpiresAt: tokens.accessTokenExpireTime
      ? timestampDate(tokens.accessTokenExpireTime).getTime()
      : Number.POSITIVE_INFINITY,
    refreshToken: tokens.refreshToken,
    refreshExpiresAt: tokens.refreshTokenExpireTime
      ? timestampDate(tokens.refreshTokenExpireTime).getTime()
      : Number.POSITIVE_INFINITY,
  };
}

/** The signed-in state of one client. */
export class Session {
  private tokens: StoredTokens | undefined;
  private refreshing: Promise<void> | undefined;
  refresher: Refresher | undefined;

  constructor(
    private readonly marginMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Keep a new token pair (after Register, Login, CompleteMfaLogin or RefreshToken). */
  set(tokens: TokenPair): void {
    this.tokens = toStored(tokens);
  }

  /** Forget the tokens (sign-out). */
  clear(): void {
    this.tokens = undefined;
  }

  get signedIn(): boolean {
    return this.tokens !== undefined;
  }

  get current(): StoredTokens | undefined {
    return this.tokens;
  }

  /** A usable access token, refreshed first when it is close to expiry. */
  async accessToken(): Promise<string | undefined> {
    const tokens = this.tokens;
    if (tokens === undefined) return undefined;
    if (this.now() < tokens.accessExpiresAt - this.marginMs) return tokens.accessToken;
    if (this.refresher === undefined || this.now() >= tokens.refreshExpiresAt) {
      return tokens.accessToken;
    }
    this.refreshing ??= this.refresh(this.refresher, tokens.refreshToken).finally(() => {
      this.refreshing = undefined;
    });
    await this.refreshing;
    return this.tokens?.accessToken;
  }

  private async refresh(refresher: Refresher, refreshToken: string): Promise<void> {
    try {
      this.set(await refresher(refreshToken));
    } catch (error) {
      this.clear(); // retired or revoked: the user signs in again
      throw error;
    }
  }

  /** A connect interceptor adding `authorization: Bearer ...` to non-public calls. */
  interceptor(): Interceptor {
    return (next) => async (req) => {
      if (!PUBLIC_METHODS.has(`${req.service.typeName}/${req.method.name}`)) {
        const token = await this.accessToken();
        if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
      }
      return next(req);
    };
  }
}
