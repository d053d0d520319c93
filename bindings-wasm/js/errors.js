// The one error class of the browser binding. The WASM core builds its errors with it too
// (setErrorClass), so `err instanceof NATSBridgeError` and `err.code` hold for every failure.

/** The stable error codes (core/src/error.rs); the tests check this list against the core's. */
export const ERROR_CODES = Object.freeze([
  "INVALID_PAYLOAD_TYPE",
  "UPLOAD_FAILED",
  "DOWNLOAD_FAILED",
  "INVALID_TRANSPORT",
  "NATS_CONNECTION_FAILED",
  "DESERIALIZATION_ERROR",
  "INVALID_ENVELOPE",
  "CHECKSUM_MISMATCH",
  "PAYLOAD_TOO_LARGE",
  "URL_NOT_ALLOWED",
  "TIMEOUT",
  "INVALID_ARGUMENT",
]);

export class NATSBridgeError extends Error {
  /**
   * @param {string} code one of ERROR_CODES
   * @param {string} message
   * @param {string | null} [correlationId]
   */
  constructor(code, message, correlationId = null) {
    super(correlationId ? `${code}: ${message} (correlation_id ${correlationId})` : `${code}: ${message}`);
    this.name = "NATSBridgeError";
    this.code = code;
    /** The message without the code and correlation id. */
    this.reason = message;
    this.correlation_id = correlationId || null;
  }
}
