// Which name an event carries on each platform. Meta gets every event under our own namespace
// (`layers_{name}`, a custom event, so it never collides with the partner's Pixel standard events);
// TikTok gets standard events only, so an event outside this table is not sent to TikTok.

/** Meta's rule for event names: letters, digits, "_", "-" and spaces, at most 40 characters. */
const META_NAME_MAX = 40;

/** `layers_{name}` with characters Meta refuses replaced by "_"; null when the result is too long. */
export function metaEventName(name: string): string | null {
  const out = `layers_${name.trim().replace(/[^0-9A-Za-z _-]/g, "_")}`;
  return out.length <= META_NAME_MAX ? out : null;
}

/**
 * Our event names (the SDK's snake_case, case-insensitive) → TikTok Events API 2.0 standard events.
 * Documented in the README; extend here only with names from TikTok's standard-event list.
 */
export const TIKTOK_STANDARD_EVENTS: ReadonlyMap<string, string> = new Map(
  Object.entries({
    purchase: "CompletePayment",
    complete_payment: "CompletePayment",
    add_to_cart: "AddToCart",
    add_payment_info: "AddPaymentInfo",
    add_to_wishlist: "AddToWishlist",
    begin_checkout: "InitiateCheckout",
    initiate_checkout: "InitiateCheckout",
    place_order: "PlaceAnOrder",
    sign_up: "CompleteRegistration",
    complete_registration: "CompleteRegistration",
    view_item: "ViewContent",
    view_content: "ViewContent",
    search: "Search",
    subscribe: "Subscribe",
    contact: "Contact",
    download: "Download",
    submit_form: "SubmitForm",
    lead: "SubmitForm",
    click_button: "ClickButton",
  }),
);

/** A Map, so an event named "constructor" or "__proto__" is an unknown name like any other. */
export function tiktokEventName(name: string): string | null {
  return TIKTOK_STANDARD_EVENTS.get(name.trim().toLowerCase()) ?? null;
}
