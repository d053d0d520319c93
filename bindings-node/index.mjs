// ESM entry: the same module as index.js (CommonJS), re-exported by name.
import natsbridge from './index.js'

export const {
  smartsend, smartreceive, connect, close, exportSpans, Connection, Subscription, LinkStream, Consumer, Delivery, ERROR_CODES, PAYLOAD_TYPES,
  MSG_PURPOSES, OPTION_NAMES, SEND_OPTION_NAMES, STREAM_OPTION_NAMES, CONSUME_OPTION_NAMES, DEFAULT_SIZE_THRESHOLD,
  TEXT, DICTIONARY, ARROWTABLE, JSONTABLE, IMAGE, AUDIO, VIDEO, BINARY, ACK, NACK, UPDATE_STATUS, SHUTDOWN, CHAT,
  COMMAND, EVENT,
} = natsbridge
export default natsbridge
