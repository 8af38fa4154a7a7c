export type { RetryOptions, Scheduler } from "./backoff";
export type { FetchInit, FetchLike, FetchResponse, Layers, LayersOptions } from "./client";
export { createLayers } from "./client";
export { LIMITS } from "./limits";
export type { LayersStorage } from "./storage";
export { indexedDbStorage, localStorageAdapter, memoryStorage } from "./storage";
export type {
  Consent,
  DeliveryError,
  DeviceInfo,
  IdentifyTraits,
  JsonValue,
  LayersEvent,
  Properties,
  Rejection,
} from "./types";
