// The OPTIX grpc-web client: one typed connect client per service over a shared transport.
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { Health } from "./gen/grpc_health/v1/health_pb.js";
import { AlertService } from "./gen/optix/alert/v1/alert_service_pb.js";
import { BrokerageService } from "./gen/optix/brokerage/v1/brokerage_service_pb.js";
import { MarketDataService } from "./gen/optix/marketdata/v1/marketdata_service_pb.js";
import { UserService } from "./gen/optix/user/v1/user_service_pb.js";
import { WatchlistService } from "./gen/optix/watchlist/v1/watchlist_service_pb.js";
import { Session } from "./session.js";

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
  /** Sign in with email and password; throws when the account needs MFA. */
  signIn(email: string, password: string): Promise<void>;
  /** Create an account and sign in with it. */
  register(email: string, password: string, displayName?: string): Promise<void>;
  /** Revoke the session on the server and forget it here. */
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
  return {
    session,
    user,
    marketdata: createClient(MarketDataService, transport),
    watchlist: createClient(WatchlistService, transport),
    brokerage: createClient(BrokerageService, transport),
    alert: createClient(AlertService, transport),
    health: createClient(Health, transport),
    async signIn(email, password) {
      const response = await user.login({ email, password });
      if (response.result.case !== "tokens") {
        throw new Error("this account needs a second factor (CompleteMfaLogin)");
      }
      session.set(response.result.value);
    },
    async register(email, password, displayName = "") {
      const response = await user.register({ email, password, displayName });
      if (response.tokens === undefined) throw new Error("Register returned no tokens");
      session.set(response.tokens);
    },
    async signOut() {
      const refreshToken = session.current?.refreshToken;
      if (refreshToken) await user.logout({ refreshToken });
      session.clear();
    },
  };
}
