// The OPTIX demo app: what the mobile app's screens will be, over grpc-web through Envoy.
// A new screen is one module implementing Screen, added to the list below.
import { App } from "./app.js";
import {
  type BrokerReturn,
  clearHandoff,
  takeBrokerReturn,
  takeHandoff,
} from "./broker-return.js";
import { type EdgeChoice, resolveEdge } from "./config.js";
import type { Screen } from "./screen.js";
import { AccountScreen } from "./screens/account.js";
import { AlertsScreen } from "./screens/alerts.js";
import { ChainScreen } from "./screens/chain.js";
import { PortfolioScreen } from "./screens/portfolio.js";
import { QuotesScreen } from "./screens/quotes.js";
import { WatchlistScreen } from "./screens/watchlists.js";

/** The screens, in navigation order; the first is the home screen. `returned` is a broker's
 * OAuth redirect this load came from, for the Portfolio screen to complete. */
function screens(returned: BrokerReturn | undefined): Screen[] {
  return [
    new WatchlistScreen(),
    new QuotesScreen(),
    new ChainScreen(),
    new AlertsScreen(),
    new PortfolioScreen(returned),
    new AccountScreen(),
  ];
}

async function main(): Promise<void> {
  // Back from the broker's page through the back/forward cache: the app never unloaded, so the
  // session it handed over is not needed.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) clearHandoff();
  });
  const returned = takeBrokerReturn();
  const handoff = takeHandoff(returned?.state);
  const edge: EdgeChoice =
    handoff === undefined ? await resolveEdge() : { url: handoff.edge, source: "resumed" };
  new App(edge, screens(returned), handoff);
}

void main();
