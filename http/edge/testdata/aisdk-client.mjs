// A client of POST /v1/ui/chat built from the AI SDK itself: the
// DefaultChatTransport useChat uses by default sends the request and
// parses the answer, checking every chunk against the SDK's own
// uiMessageChunkSchema (it throws on the first that fails); in "message"
// mode readUIMessageStream then assembles the chunks into the UIMessage
// useChat would show. Prints {"chunks": [...], "message": {...}} or, when
// the resume answer is 204, {"idle": true}.
//
// usage: node aisdk-client.mjs BASE_URL API_KEY CHAT_ID MODE [TEXT] [TRIGGER] [MESSAGE_ID]
//   MODE: message | chunks | resume, or "replay" with TEXT the path of a
//   captured response body, parsed by the same transport code.
import { readFileSync } from 'node:fs';
import { DefaultChatTransport, readUIMessageStream, uiMessageChunkSchema } from 'ai';
import { validateTypes } from '@ai-sdk/provider-utils';

const [base, key, chatId, mode, text, trigger = 'submit-message', messageId] = process.argv.slice(2);
const transport = new DefaultChatTransport({ api: base + '/v1/ui/chat', headers: { Authorization: 'Bearer ' + key } });

let stream;
if (mode === 'replay') {
  stream = transport.processResponseStream(new Response(readFileSync(text)).body);
} else if (mode === 'resume') {
  stream = await transport.reconnectToStream({ chatId });
  if (stream === null) {
    console.log(JSON.stringify({ idle: true }));
    process.exit(0);
  }
} else {
  const messages = [
    { id: 'm-system', role: 'system', parts: [{ type: 'text', text: 'ignored: the session is the context' }] },
    { id: 'm-user', role: 'user', parts: [{ type: 'step-start' }, { type: 'text', text }] },
  ];
  stream = await transport.sendMessages({ chatId, messages, trigger, messageId, abortSignal: undefined });
}
const [forChunks, forMessage] = stream.tee();
const chunks = [];
for await (const chunk of forChunks) {
  // The transport has validated the chunk; validate it once more, alone,
  // so that a failure names the chunk.
  await validateTypes({ value: chunk, schema: uiMessageChunkSchema });
  chunks.push(chunk);
}
let message = null;
if (mode !== 'chunks') {
  for await (const m of readUIMessageStream({ stream: forMessage, terminateOnError: true })) {
    message = m;
  }
}
console.log(JSON.stringify({ chunks, message }));
