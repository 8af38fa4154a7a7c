// swagger-ui-dist's files, imported as text modules (workers/api/wrangler.toml [[rules]] type "Text").
declare module "swagger-ui-dist/swagger-ui-bundle.js" {
  const text: string;
  export default text;
}
declare module "swagger-ui-dist/swagger-ui.css" {
  const text: string;
  export default text;
}
