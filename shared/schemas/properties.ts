import { z } from "zod";

// Event properties, a JSON object whose keys are the partner's. z.record rebuilds the object and silently
// drops an own "__proto__" key (assigning it to a plain object would set the prototype instead); this
// schema keeps the object JSON.parse made, so "__proto__", "constructor" and every other key is stored
// and relayed like any other name. Readers must use own-property access (Object.hasOwn), never `p[key]`
// alone: "toString" and friends are inherited by every plain object.

export const propertiesSchema = z.custom<Record<string, unknown>>(
  (value) => typeof value === "object" && value !== null && !Array.isArray(value),
  "expected an object",
);
