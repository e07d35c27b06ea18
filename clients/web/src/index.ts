// Public entry point of the OPTIX web client package.
export { createOptixClients, type OptixClients } from "./client.js";
export { PUBLIC_METHODS, Session, type StoredTokens } from "./session.js";
export { createBrowserClients } from "./browser.js";
export { fieldViolations, type FieldViolation } from "./errors.js";
