export type { RetryOptions, Scheduler } from "./backoff.js";
export type { FetchInit, FetchLike, FetchResponse, Layers, LayersOptions } from "./client.js";
export { createLayers } from "./client.js";
export { LIMITS } from "./limits.js";
export type { LayersStorage } from "./storage.js";
export { indexedDbStorage, localStorageAdapter, memoryStorage } from "./storage.js";
export type {
  Consent,
  DeliveryError,
  DeviceInfo,
  IdentifyTraits,
  JsonValue,
  LayersEvent,
  Properties,
  Rejection,
} from "./types.js";
