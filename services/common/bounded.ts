// Untrusted text in a message or a log line, cut short: an object can hold
// megabytes, and a message that quotes it whole is unreadable and expensive.

/** The first `max` UTF-16 units of `text`, one fewer when that would split a surrogate pair. */
function head(text: string, max: number): string {
  const end = (text.charCodeAt(max - 1) & 0xfc00) === 0xd800 ? max - 1 : max;
  return text.slice(0, end);
}

/** `text`, or its first `max` characters and an ellipsis. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${head(text, max)}…`;
}

/** `text` in double quotes; past `max` characters, its start and its length. */
export function quoted(text: string, max = 64): string {
  return text.length <= max ? `"${text}"` : `"${head(text, max)}…" (${text.length} characters)`;
}
