// Requests one screen makes of another without knowing it: a watchlist row's "Set alert" asks
// for an alert on its symbol, and the Alerts screen (if the app has one) opens pre-filled.
// Screens stay independent modules; the request travels as a DOM event on the window.

/** "Set an alert on this symbol", with the price the requesting screen last saw, if any. */
export interface AlertRequest {
  symbol: string;
  last?: number;
  /** Where `last` came from when it is not real market data ("simulated", "replay"). */
  source?: string;
}

const ALERT_REQUEST = "optix:alert-request";

/** Ask for an alert on `request.symbol`. */
export function requestAlert(request: AlertRequest): void {
  window.dispatchEvent(new CustomEvent<AlertRequest>(ALERT_REQUEST, { detail: request }));
}

/** Handle alert requests (the Alerts screen). */
export function onAlertRequest(handler: (request: AlertRequest) => void): void {
  window.addEventListener(ALERT_REQUEST, (event) => {
    handler((event as CustomEvent<AlertRequest>).detail);
  });
}
