// Untrusted text in a message or a log line, cut short: an object can hold
// megabytes, and a message that quotes it whole is unreadable and expensive.

/** `text`, or its first `max` characters and an ellipsis. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** `text` in double quotes; past `max` characters, its start and its length. */
export function quoted(text: string, max = 64): string {
  return text.length <= max ? `"${text}"` : `"${text.slice(0, max)}…" (${text.length} characters)`;
}
