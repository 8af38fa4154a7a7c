// @aws-sdk/xml-builder maps its XML parser to a DOMParser-based one in browser builds, and wrangler
// bundles Workers as browser builds, but workerd has no DOMParser (aws/aws-sdk-js-v3#7375,
// cloudflare/workers-sdk#10755): every XML response (ListObjectsV2, any S3 error) would throw. The Cron
// Worker's wrangler.toml (and the test bundler) alias the package to this module, which re-exports the
// package's own pure-JavaScript parser (the one Node uses) and its XML builders. The paths are relative
// because the package specifier itself is what is aliased.
import type * as XmlBuilder from "@aws-sdk/xml-builder";
// @ts-expect-error: dist-es ships no declarations; the exported types below are the package's own.
import { XmlNode as Node } from "../../node_modules/@aws-sdk/xml-builder/dist-es/XmlNode.js";
// @ts-expect-error: as above.
import { XmlText as Text } from "../../node_modules/@aws-sdk/xml-builder/dist-es/XmlText.js";
// @ts-expect-error: as above.
import { parseXML as parse } from "../../node_modules/@aws-sdk/xml-builder/dist-es/xml-parser.js";

export const XmlNode: typeof XmlBuilder.XmlNode = Node;
export const XmlText: typeof XmlBuilder.XmlText = Text;
export const parseXML: typeof XmlBuilder.parseXML = parse;
