// The OPTIX grpc-web client: one typed connect client per service over a shared transport.
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { Health } from "./gen/grpc_health/v1/health_pb.js";
import { AlertService } from "./gen/optix/alert/v1/alert_service_pb.js";
import { BrokerageService } from "./gen/optix/brokerage/v1/brokerage_service_pb.js";
import { MarketDataService } from "./gen/optix/marketdata/v1/marketdata_service_pb.js";
import { UserService } from "./gen/optix/user/v1/user_service_pb.js";
import { WatchlistService } from "./gen/optix/watchlist/v1/watchlist_service_pb.js";
import type { MfaChallenge } from "./gen/optix/user/v1/user_pb.js";
import { Session } from "./session.js";

/** The second factor that redeems an MFA challenge: a 6-digit TOTP code or a recovery code. */
export type SecondFactor = { totpCode: string } | { recoveryCode: string };

/** Typed clients for every OPTIX service plus the session they share. */
export interface OptixClients {
  session: Session;
  user: Client<typeof UserService>;
  marketdata: Client<typeof MarketDataService>;
  watchlist: Client<typeof WatchlistService>;
  brokerage: Client<typeof BrokerageService>;
  alert: Client<typeof AlertService>;
  /** The standard grpc.health.v1 service: `health.check({ service: "optix.user.v1.UserService" })`
   * (an empty service name asks about the server as a whole). */
  health: Client<typeof Health>;
  /** Sign in with email and password; throws when the account needs MFA (see `login`). */
  signIn(email: string, password: string): Promise<void>;
  /** Sign in with email and password: resolves to undefined once signed in, or to the MFA
   * challenge to redeem with `completeMfaLogin` when the account has MFA enabled. */
  login(email: string, password: string): Promise<MfaChallenge | undefined>;
  /** Redeem Login's MFA challenge with a TOTP or recovery code; signed in afterwards. */
  completeMfaLogin(challengeId: string, factor: SecondFactor): Promise<void>;
  /** Create an account and sign in with it. */
  register(email: string, password: string, displayName?: string): Promise<void>;
  /** Revoke the session on the server and forget it here (forgotten even if revoking fails). */
  signOut(): Promise<void>;
}

/** Builds the clients; `makeTransport` receives the session's auth interceptor. */
export function createOptixClients(
  makeTransport: (interceptors: ReturnType<Session["interceptor"]>[]) => Transport,
  session: Session = new Session(),
): OptixClients {
  const transport = makeTransport([session.interceptor()]);
  const user = createClient(UserService, transport);
  session.refresher = async (refreshToken) => {
    const response = await user.refreshToken({ refreshToken });
    if (response.tokens === undefined) throw new Error("RefreshToken returned no tokens");
    return response.tokens;
  };
  const login = async (email: string, password: string): Promise<MfaChallenge | undefined> => {
    const response = await user.login({ email, password });
    switch (response.result.case) {
      case "tokens":
        session.set(response.result.value);
        return undefined;
      case "mfaChallenge":
        return response.result.value;
      default:
        throw new Error("Login returned neither tokens nor an MFA challenge");
    }
  };
  return {
    session,
    user,
    marketdata: createClient(MarketDataService, transport),
    watchlist: createClient(WatchlistService, transport),
    brokerage: createClient(BrokerageService, transport),
    alert: createClient(AlertService, transport),
    health: createClient(Health, transport),
    async signIn(email, password) {
      if ((await login(email, password)) !== undefined) {
        throw new Error("this account needs a second factor (CompleteMfaLogin)");
      }
    },
    login,
    async completeMfaLogin(challengeId, factor) {
      const response = await user.completeMfaLogin({
        challengeId,
        factor:
          "totpCode" in factor
            ? { case: "totpCode", value: factor.totpCode }
            : { case: "recoveryCode", value: factor.recoveryCode },
      });
      if (response.tokens === undefined) throw new Error("CompleteMfaLogin returned no tokens");
      session.set(response.tokens);
    },
    async register(email, password, displayName = "") {
      const response = await user.register({ email, password, displayName });
      if (response.tokens === undefined) throw new Error("Register returned no tokens");
      session.set(response.tokens);
    },
    async signOut() {
      const refreshToken = session.current?.refreshToken;
      try {
        if (refreshToken) await user.logout({ refreshToken });
      } finally {
        session.clear(); // signed out here even when the server could not be told
      }
    },
  };
}
