import {
  createLayers,
  type DeliveryError,
  type LayersEvent,
  type LayersOptions,
  memoryStorage,
  type Rejection,
} from "../../../sdk/src";
import { type Answer, ENDPOINT, ingestDouble, KEY, manualClock, type Sent } from "./harness";

type Script = (request: Sent, index: number) => Answer | "network" | "hang";

/** An SDK instance on a manual clock, an ingest double and (unless given) its own memory storage. */
export function setup(options: Partial<LayersOptions> & { answer?: Script } = {}) {
  const { answer, ...rest } = options;
  const clock = manualClock();
  const ingest = ingestDouble(answer);
  const storage = rest.storage ?? memoryStorage();
  const rejected: { event: LayersEvent; rejection: Rejection }[] = [];
  const errors: DeliveryError[] = [];
  const layers = createLayers({
    key: KEY,
    endpoint: ENDPOINT,
    fetch: ingest.fetch,
    scheduler: clock,
    random: () => 0.5,
    onRejected: (event, rejection) => rejected.push({ event, rejection }),
    onError: (error) => errors.push(error),
    ...rest,
    storage,
  });
  return { layers, clock, ingest, storage, rejected, errors };
}
