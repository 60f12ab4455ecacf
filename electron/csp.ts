/**
 * The Content-Security-Policy of the app's page: sent as a header by main and repeated in index.html's meta tag
 * (file:// pages get no headers); a test keeps the two equal. Inline styles are allowed because Plotly sets
 * them; scripts only from the app itself; sockets only to the loopback engine (web mode) and Vite's dev server.
 */
export const contentSecurityPolicy = [
  "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
  "font-src 'self' data:", "connect-src 'self' ws://127.0.0.1:* ws://localhost:*", "object-src 'none'", "base-uri 'none'",
  "form-action 'none'",
].join('; ');
