/** src/api/http: the HTTP/JSON front end, metrics and the admin page. Other layers import only this file. */
export { HttpServer, defaultMaxValueBytes, type HttpServerOptions, type LocalNodeStats, type ClusterNodeJson } from './server.ts';
export { NodeMetrics, flattenStats, maxCommandLabels, type GaugeSample, type Protocol } from './metrics.ts';
export { HttpError, errorReply, type HttpErrorBody, type HttpErrorCode } from './errors.ts';
export { renderGet, siblingToJson, encodeContext, type RequestDefaults, type SiblingJson, type SiblingsJson } from './kv-routes.ts';
export { adminPageHtml, adminRefreshMs } from './admin-page.ts';
export { contextHeader, maxKeyBytes } from './request.ts';
