// The OPTIX demo app: what the mobile app's screens will be, over grpc-web through Envoy.
// A new screen (Portfolio, say) is one module implementing Screen, added to the list below.
import { App } from "./app.js";
import { resolveEdge } from "./config.js";
import type { Screen } from "./screen.js";
import { AccountScreen } from "./screens/account.js";
import { AlertsScreen } from "./screens/alerts.js";
import { ChainScreen } from "./screens/chain.js";
import { QuotesScreen } from "./screens/quotes.js";
import { WatchlistScreen } from "./screens/watchlists.js";

/** The screens, in navigation order; the first is the home screen. */
function screens(): Screen[] {
  return [
    new WatchlistScreen(),
    new QuotesScreen(),
    new ChainScreen(),
    new AlertsScreen(),
    new AccountScreen(),
  ];
}

async function main(): Promise<void> {
  const edge = await resolveEdge();
  new App(edge, screens());
}

void main();
